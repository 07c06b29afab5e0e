package dev.condjl.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import dev.condjl.topk.checkpoint.Checkpoints;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The example project in {@code integration-tests/example}: it runs, and the README shows its code verbatim. */
class PaddedRoutedExampleTest {

    private static final String EXAMPLE = "integration-tests/example/";
    private static final String SOURCE = EXAMPLE + "src/main/java/dev/condjl/example/PaddedRoutedExample.java";
    /** Weights of a reference ConditionalRoutedTransformerBlock saved by PyTorch (the colt5 parity fixtures). */
    private static final Path REFERENCE =
            Path.of("../djl-colt5/src/test/resources/colt5/block_mask_odd.weights.safetensors");

    @Test
    void trainsOnPaddedBatchesSavesLoadsAndStartsFromReferenceWeights(@TempDir Path dir) throws Exception {
        Engine.getInstance().setRandomSeed(6);
        PaddedRoutedExample.Result result = PaddedRoutedExample.run(dir, REFERENCE, 6);
        assertTrue(result.lossAfter() < 0.9 * result.lossBefore(), result.toString());
        assertEquals(0f, result.reloadedMaxDiff(), 1e-6f, "Model.load must give the trained model back");
        assertEquals(Checkpoints.inspect(REFERENCE).tensors().size(), result.referenceKeys());
        assertTrue(Files.exists(dir.resolve("routed-0000.params")));
    }

    @Test
    void theReadmeShowsTheExampleVerbatim() throws Exception {
        String source = repositoryFile(SOURCE);
        Matcher region = Pattern.compile("\\n    // README:begin\\n(.*?)\\n    // README:end\\n", Pattern.DOTALL)
                .matcher(source);
        assertTrue(region.find(), "README:begin/end markers in " + SOURCE);
        String code = region.group(1).replaceAll("(?m)^    ", "");
        String readme = repositoryFile("README.md");
        assertTrue(readme.contains("```java\n" + code + "\n```\n"),
                "README.md must show the code between README:begin and README:end of " + SOURCE
                        + " (dedented by 4) in a java block");
    }

    @Test
    void theExamplePomDependsOnThisVersionOfCondjl() throws Exception {
        String version = firstGroup("<artifactId>condjl-parent</artifactId>\\s*<version>([^<]+)</version>",
                repositoryFile("pom.xml"));
        String log4j = firstGroup("<log4j.version>([^<]+)</log4j.version>", repositoryFile("pom.xml"));
        String pom = repositoryFile(EXAMPLE + "pom.xml");
        assertEquals(version, firstGroup("<condjl.version>([^<]+)</condjl.version>", pom));
        assertTrue(pom.contains("<artifactId>log4j-to-slf4j</artifactId>\n      <version>" + log4j + "</version>"),
                "the example's log4j-to-slf4j must match the Log4j API version " + log4j);
    }

    /** A file of the repository, as the build copied it next to the test classes (integration-tests' pom). */
    private static String repositoryFile(String path) throws IOException {
        try (InputStream in = PaddedRoutedExampleTest.class.getResourceAsStream("/repository/" + path)) {
            assertNotNull(in, "no copy of " + path + " among the test resources");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static String firstGroup(String regex, String text) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), regex);
        return m.group(1);
    }
}
