package dev.condjl.integration.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import dev.condjl.topk.checkpoint.Checkpoints;
import dev.condjl.integration.cases.CaseArgs;
import dev.condjl.integration.cases.ReferenceCases;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/**
 * {@code condjl run}: runs one reference function or module ({@link ReferenceCases}) on named tensors.
 *
 * <p>The case file is {@code {"module": NAME, "config": {reference kwargs}, "forward": {non-tensor forward
 * kwargs}}}; input and output tensors are named as the reference's arguments and return fields. Every error (unknown
 * module, missing tensor, bad shape, unreadable file) ends the command with exit code 1 and one line on stderr.
 *
 * <p>Tensor files go through {@link Checkpoints} and its checks: inputs are safetensors (or {@code torch.save})
 * files, {@code BF16} inputs arrive as float32; outputs are written as safetensors in the order the case returns
 * them. {@code --key} and {@code --strip-prefix} select the state dict inside {@code --weights}.
 */
@Command(
        name = "run",
        mixinStandardHelpOptions = true,
        description = {
            "Runs one reference function or module on named tensors and prints what it computed.",
            "CASE.json: {\"module\": NAME, \"config\": {...}, \"forward\": {...}}."
        })
public final class Run implements Callable<Integer> {

    private static final Logger LOGGER = LogManager.getLogger(Run.class);
    private static final int SHOWN_VALUES = 6;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--spec", paramLabel = "CASE.json", description = "The case file.")
    Path caseFile;

    @Option(names = "--input", paramLabel = "IN.safetensors", description = "Input tensors.")
    Path input;

    @Option(names = "--output", paramLabel = "OUT.safetensors", description = "Where to write the output tensors.")
    Path output;

    @Option(names = "--weights", paramLabel = "W",
            description = "Checkpoint (safetensors or torch.save) for modules with parameters.")
    Path weights;

    @Mixin CheckpointOptions weightOptions;

    @Option(names = "--example", paramLabel = "MODULE",
            description = "Run the example case shipped in the jar instead of --spec/--input.")
    String example;

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        if (example == null && (caseFile == null || input == null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "give --spec and --input, or --example");
        }
        if (weights == null && weightOptions.isSet()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--key, --strip-prefix and --exclude need --weights");
        }
        PrintWriter err = spec.commandLine().getErr();
        try (NDManager manager = NDManager.newBaseManager()) {
            JsonObject caseJson;
            Map<String, NDArray> inputs;
            if (example == null) {
                caseJson = readCase(caseFile);
                inputs = Checkpoints.read(input, manager);
            } else {
                try (InputStream json = exampleResource(".json")) {
                    caseJson = parseCase(new InputStreamReader(json, StandardCharsets.UTF_8), "example " + example);
                }
                inputs = readExampleInputs(manager);
            }
            CaseArgs top = new CaseArgs("case file", caseJson);
            String module = top.getString("module", null);
            if (module == null) {
                throw new IllegalArgumentException("case file: \"module\" is required (known: "
                        + String.join(", ", ReferenceCases.names()) + ")");
            }
            JsonObject config = top.getObject("config");
            JsonObject forward = top.getObject("forward");
            top.rejectUnknown();
            Map<String, NDArray> outputs = ReferenceCases.get(module)
                    .run(manager, config, forward, inputs, Optional.ofNullable(weights),
                            weightOptions.toReadOptions());
            if (output != null) {
                Checkpoints.writeSafetensors(output, outputs);
            }
            print(module, outputs, spec.commandLine().getOut());
            return 0;
        } catch (IOException | RuntimeException e) {
            LOGGER.debug("condjl run failed", e);
            err.println("condjl run: " + oneLine(e));
            err.flush();
            return 1;
        }
    }

    private InputStream exampleResource(String suffix) throws IOException {
        InputStream in = Run.class.getResourceAsStream("/examples/" + example + suffix);
        if (in == null) {
            throw new IOException("no example '" + example + "' (examples: " + String.join(", ",
                    ReferenceCases.names().stream().filter(n -> Run.class.getResource("/examples/" + n + ".json")
                            != null).collect(Collectors.toList())) + ")");
        }
        return in;
    }

    /** The example's tensors sit inside the jar, and {@link Checkpoints} reads files only. */
    private Map<String, NDArray> readExampleInputs(NDManager manager) throws IOException {
        Path tmp = Files.createTempFile("condjl-example-", ".safetensors");
        try (InputStream tensors = exampleResource(".safetensors")) {
            Files.copy(tensors, tmp, StandardCopyOption.REPLACE_EXISTING);
            return Checkpoints.read(tmp, manager);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static JsonObject readCase(Path file) throws IOException {
        Reader reader;
        try {
            reader = Files.newBufferedReader(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IOException("cannot read case file " + file + ": " + reason(e), e);
        }
        return parseCase(reader, "case file " + file);
    }

    private static JsonObject parseCase(Reader reader, String source) throws IOException {
        try (reader) {
            JsonElement json = JsonParser.parseReader(reader);
            if (!json.isJsonObject()) {
                throw new IOException(source + " is not a JSON object");
            }
            return json.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new IOException(source + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    /** Prints one line per output: name, dtype, shape and the first values. */
    private static void print(String module, Map<String, NDArray> outputs, PrintWriter out) {
        out.println(module + ": " + outputs.size() + " output tensor(s)");
        for (Map.Entry<String, NDArray> entry : outputs.entrySet()) {
            NDArray array = entry.getValue();
            boolean floating = array.getDataType().isFloating();
            NDArray shown = array.flatten().get("0:" + SHOWN_VALUES);
            String values = floating
                    ? Arrays.stream(shown.toType(DataType.FLOAT64, false).toDoubleArray())
                            .mapToObj(v -> String.format(Locale.ROOT, "%.6g", v)).collect(Collectors.joining(", "))
                    : Arrays.stream(shown.toType(DataType.INT64, false).toLongArray())
                            .mapToObj(Long::toString).collect(Collectors.joining(", "));
            String more = array.size() > SHOWN_VALUES ? ", ...]" : "]";
            out.println("  " + entry.getKey() + " " + array.getDataType() + " " + array.getShape() + " [" + values + more);
        }
        out.flush();
    }

    /** A readable cause: file-system exceptions carry only the path as their message. */
    private static String reason(IOException e) {
        if (e instanceof NoSuchFileException) {
            return "no such file";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static String oneLine(Exception e) {
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int newline = message.indexOf('\n');
        return newline < 0 ? message : message.substring(0, newline);
    }
}
