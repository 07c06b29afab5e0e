package dev.condjl.cuda;

import ai.djl.engine.Engine;
import ai.djl.util.Utils;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Properties;

/**
 * Finds and loads {@code libcondjl_ops.so}: from {@code -Dcondjl.ops.library=<file>} (or the environment variable
 * {@code CONDJL_OPS_LIBRARY_PATH}) when set, else from this jar's {@code native/lib/<platform>/}, extracted once to
 * {@code <DJL engine cache>/condjl_ops/<version>-<flavor>-<content hash>/} (temp dir + atomic move, like DJL's own
 * natives). DJL's PyTorch engine is loaded first so that the library binds to DJL's libtorch.
 */
final class NativeLibrary {

    private static final Logger LOG = LogManager.getLogger(NativeLibrary.class);
    static final String FILE_NAME = "libcondjl_ops.so";

    private NativeLibrary() {}

    /**
     * Loads the library.
     *
     * @return null when loaded, else why not
     */
    static String load() {
        try {
            Engine.getEngine("PyTorch");
        } catch (RuntimeException | LinkageError e) {
            // Without libtorch only the raw-buffer entry points work (e.g. on the GPU test machine).
            LOG.debug("DJL's PyTorch engine is not available; CondjlOps binds to libtorch on first tensor use", e);
        }
        try {
            String override = System.getProperty("condjl.ops.library", System.getenv("CONDJL_OPS_LIBRARY_PATH"));
            Path file = override != null ? Paths.get(override) : extract();
            System.load(file.toAbsolutePath().toString());
            LOG.debug("loaded {}", file);
            return null;
        } catch (IOException | RuntimeException | LinkageError e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }

    private static Path extract() throws IOException {
        String platform = platform();
        String resource = "native/lib/" + platform + "/" + FILE_NAME;
        byte[] bytes;
        try (InputStream in = NativeLibrary.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("no " + resource + " on the class path (not built for " + platform + ")");
            }
            bytes = in.readAllBytes();
        }
        Properties props = new Properties();
        try (InputStream in = NativeLibrary.class.getClassLoader()
                .getResourceAsStream("native/lib/condjl_ops.properties")) {
            if (in != null) {
                props.load(in);
            }
        }
        String name = props.getProperty("version", "unknown") + '-' + props.getProperty("flavor", "unknown") + '-'
                + sha256(bytes).substring(0, 16);
        Path root = Utils.getEngineCacheDir("condjl_ops");
        Path dir = root.resolve(name);
        Path file = dir.resolve(FILE_NAME);
        if (Files.isRegularFile(file)) {
            return file;
        }
        Files.createDirectories(root);
        Path tmp = Files.createTempDirectory(root, "tmp");
        try {
            Files.write(tmp.resolve(FILE_NAME), bytes);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException e) {
            LOG.debug("{} was extracted concurrently", dir);
        } catch (IOException e) {
            if (!Files.isRegularFile(file)) {
                throw e;
            }
        } finally {
            Files.deleteIfExists(tmp.resolve(FILE_NAME));
            Files.deleteIfExists(tmp);
        }
        return file;
    }

    private static String platform() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux") && (arch.equals("amd64") || arch.equals("x86_64"))) {
            return "linux-x86_64";
        }
        return os.replace(' ', '_') + '-' + arch;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
