package dev.condjl.topk.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.zip.ZipEntry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Reading PyTorch-written fixtures: every dtype, views and shared storages, nested checkpoints, options. */
class CheckpointsReadTest {

    private static NDManager manager;

    @TempDir Path dir;

    @BeforeAll
    static void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /**
     * Every dtype (torch.save and safetensors), views and shared storages (transposed, sliced with offset 8,
     * stepped, a column, a stride-0 expand, tied weights, bf16 transposed), and parameters saved with keep_vars.
     */
    @ParameterizedTest
    @ValueSource(strings = {"dtypes.pt", "dtypes.safetensors", "views.pt", "parameters.pt"})
    void readsWhatPyTorchSaved(String fixture) throws Exception {
        Map<String, NDArray> sd = Checkpoints.read(Fixtures.path(fixture), manager);
        Fixtures.assertStateDict(fixture, sd);
        NDArray first = sd.values().iterator().next();
        assertSame(manager, first.getManager(), "arrays belong to the caller's manager");
        assertEquals(sd.keySet().iterator().next(), first.getName());
    }

    @Test
    void readsSafetensorsWhoseHeaderLengthStartsWithTheLegacyPickleByte() throws Exception {
        // the legacy torch.save magic is byte 0x80 at offset 0; so is one safetensors header length in 256
        NDArray w = manager.create(new float[] {1f, 2f, 3f});
        for (int nameLength = 1; nameLength < 400; nameLength++) {
            Path file = dir.resolve("h" + nameLength + ".safetensors");
            Checkpoints.writeSafetensors(file, Map.of("w".repeat(nameLength), w));
            if ((java.nio.file.Files.readAllBytes(file)[0] & 0xff) == 0x80) {
                Map<String, NDArray> sd = Checkpoints.read(file, manager);
                assertEquals(w, sd.get("w".repeat(nameLength)));
                return;
            }
        }
        throw new AssertionError("no key length gave a header length with low byte 0x80");
    }

    @Test
    void unwrapsTheOnlyStateDictOfATrainingCheckpoint() throws Exception {
        Fixtures.assertStateDict("nested.pt", Checkpoints.read(Fixtures.path("nested.pt"), manager));
        assertEquals("model", Checkpoints.inspect(Fixtures.path("nested.pt")).selectedKey());
    }

    @Test
    void picksTheKeyAndStripsThePrefix() throws Exception {
        ReadOptions options = ReadOptions.builder().optKey("model").optStripPrefix("module.").build();
        Map<String, NDArray> sd = Checkpoints.read(Fixtures.path("nested.pt"), manager, options);
        List<String> stripped = Fixtures.expectedKeys("nested.pt").stream()
                .map(k -> k.substring("module.".length()))
                .collect(Collectors.toList());
        assertEquals(List.of("proj.weight", "proj.bias", "norm.weight", "norm.bias", "head.weight"), stripped);
        assertEquals(stripped, List.copyOf(sd.keySet()));
        for (String key : Fixtures.expectedKeys("nested.pt")) {
            Fixtures.assertTensor(Fixtures.expected("nested.pt").getAsJsonObject(key),
                    sd.get(key.substring("module.".length())), key);
        }
    }

    @Test
    void renamesAndExcludesKeysAfterStrippingThePrefix() throws Exception {
        ReadOptions options = ReadOptions.builder()
                .optKey("model")
                .optStripPrefix("module.")
                .optRename(key -> key.replaceFirst("^proj\\.", "input."))
                .optExclude(Pattern.compile("norm\\..*").asMatchPredicate())
                .optExclude(Set.of("head.weight")::contains)
                .build();
        Map<String, NDArray> sd = Checkpoints.read(Fixtures.path("nested.pt"), manager, options);
        assertEquals(List.of("input.weight", "input.bias"), List.copyOf(sd.keySet()));
        Fixtures.assertTensor(Fixtures.expected("nested.pt").getAsJsonObject("module.proj.weight"),
                sd.get("input.weight"), "module.proj.weight");
        CheckpointInfo info = Checkpoints.inspect(Fixtures.path("nested.pt"), options);
        assertEquals(List.of("input.weight", "input.bias"), info.tensors().stream().map(TensorEntry::key).toList());
    }

    @Test
    void excludedKeysAreNotCountedAgainstTheLimits() throws Exception {
        Path file = dir.resolve("big_and_small.safetensors");
        Map<String, NDArray> arrays = new LinkedHashMap<>();
        arrays.put("big", manager.zeros(new Shape(1000)));
        arrays.put("small", manager.ones(new Shape(2)));
        Checkpoints.writeSafetensors(file, arrays);
        ReadOptions.Builder tight = ReadOptions.builder().optMaxTotalBytes(8);
        CheckpointException e =
                assertThrows(CheckpointException.class, () -> Checkpoints.read(file, manager, tight.build()));
        assertTrue(e.getMessage().contains("maxTotalBytes"), e.getMessage());
        Map<String, NDArray> sd = Checkpoints.read(file, manager, tight.optExclude("big"::equals).build());
        assertEquals(List.of("small"), List.copyOf(sd.keySet()));
        assertArrayEquals(new float[] {1f, 1f}, sd.get("small").toFloatArray());
    }

    @Test
    void renamingThatMergesKeysOrEmptiesOneIsRefusedByName() {
        CheckpointException merged = assertThrows(CheckpointException.class, () -> Checkpoints.read(
                Fixtures.path("nested.pt"), manager,
                ReadOptions.builder().optRename(key -> key.replaceAll("\\.(weight|bias)$", ".param")).build()));
        assertTrue(merged.getMessage().contains("'module.proj.weight'")
                && merged.getMessage().contains("'module.proj.bias'")
                && merged.getMessage().contains("'module.proj.param'"), merged.getMessage());
        CheckpointException empty = assertThrows(CheckpointException.class, () -> Checkpoints.read(
                Fixtures.path("nested.pt"), manager, ReadOptions.builder().optRename(key -> "").build()));
        assertTrue(empty.getMessage().contains("rename returned an empty key"), empty.getMessage());
    }

    @Test
    void refusesKeysThatAreNotStateDicts() {
        CheckpointException optimizer = assertThrows(CheckpointException.class, () -> Checkpoints.read(
                Fixtures.path("nested.pt"), manager, ReadOptions.builder().optKey("optimizer").build()));
        assertTrue(optimizer.getMessage().contains("key 'state': value of type dict is not a tensor"), optimizer.getMessage());
        CheckpointException epoch = assertThrows(CheckpointException.class, () -> Checkpoints.read(
                Fixtures.path("nested.pt"), manager, ReadOptions.builder().optKey("epoch").build()));
        assertTrue(epoch.getMessage().contains("value of type int is not a dict; top-level keys: ['model', 'optimizer',"
                + " 'epoch']"), epoch.getMessage());
        CheckpointException missing = assertThrows(CheckpointException.class, () -> Checkpoints.read(
                Fixtures.path("nested.pt"), manager, ReadOptions.builder().optKey("state_dict").build()));
        assertTrue(missing.getMessage().contains("key 'state_dict': no such top-level key"), missing.getMessage());
        assertEquals("state_dict", missing.getKey());
        assertTrue(missing.getEntry().endsWith("/data.pkl"), missing.getEntry());
    }

    @Test
    void inspectDescribesWithoutReading() throws Exception {
        CheckpointInfo info = Checkpoints.inspect(Fixtures.path("dtypes.pt"));
        assertEquals(CheckpointFormat.PYTORCH_ZIP, info.format());
        assertNull(info.selectedKey());
        assertEquals(Fixtures.expectedKeys("dtypes.pt"),
                info.tensors().stream().map(TensorEntry::key).collect(Collectors.toList()));
        TensorEntry bf16 = info.tensors().get(2);
        assertEquals(new TensorEntry("bf16", CheckpointDType.BFLOAT16, new Shape(2, 2), 8), bf16);
        // f32 6x4 + f16 5x2 + bf16 4x2 + f64 3x8 + i64 4x8 + i32 3x4 + i16 3x2 + i8 3 + u8 3 + bool 3 + scalar 4
        assertEquals(24 + 10 + 8 + 24 + 32 + 12 + 6 + 3 + 3 + 3 + 4, info.totalBytes());
        CheckpointInfo st = Checkpoints.inspect(Fixtures.path("dtypes.safetensors"));
        assertEquals(CheckpointFormat.SAFETENSORS, st.format());
        assertEquals(info.tensors(), st.tensors());
    }

    @Test
    void refusesLegacyAndTorchScriptFilesWithAHint() {
        CheckpointException legacy = assertThrows(CheckpointException.class,
                () -> Checkpoints.read(Fixtures.path("legacy.pt"), manager));
        assertTrue(legacy.getMessage().contains("re-save it with torch >= 1.6"), legacy.getMessage());
        CheckpointException script = assertThrows(CheckpointException.class,
                () -> Checkpoints.read(Fixtures.path("torchscript.pt"), manager));
        assertTrue(script.getMessage().contains("TorchScript archive"), script.getMessage());
    }

    @Test
    void readsBigEndianArchives() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putFloat(1.5f).putFloat(-2f)
                .putFloat(7.25f);
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", HostileFiles.oneTensor(3, 1, new long[] {2}, new long[] {1}));
        entries.put("archive/byteorder", "big".getBytes(StandardCharsets.US_ASCII));
        entries.put("archive/data/0", data.array());
        Path file = HostileFiles.zip(dir.resolve("be.pt"), entries, ZipEntry.STORED);
        assertArrayEquals(new float[] {-2f, 7.25f}, Checkpoints.read(file, manager).get("w").toFloatArray());
    }

    @Test
    void loadsIntoABlockByStateDictName() throws Exception {
        TorchSequential block = new TorchSequential();
        block.add(Linear.builder().setUnits(3).build()).add(Linear.builder().setUnits(2).build());
        try (NDManager model = NDManager.newBaseManager()) {
            block.initialize(model, DataType.FLOAT32, new Shape(1, 4));
            StateDicts.LoadReport report = Checkpoints.loadInto(block, Fixtures.path("sequential.pt"));
            assertTrue(report.isComplete(), report.toString());
            assertEquals(4, report.loaded());
            StateDicts.parameters(block).forEach((key, p) -> Fixtures.assertTensor(
                    Fixtures.expected("sequential.pt").getAsJsonObject(key), p.getArray(), key));
            try (NDManager batch = model.newSubManager()) {
                NDArray y = block.forward(new ParameterStore(batch, false), new NDList(
                        batch.ones(new Shape(1, 4))), false).singletonOrThrow();
                assertEquals(new Shape(1, 2), y.getShape());
            }
        }
    }

    @Test
    void loadIntoIsStrictByDefault() throws Exception {
        TorchSequential block = new TorchSequential();
        block.add(Linear.builder().setUnits(3).build()).add(Linear.builder().setUnits(5).build());
        try (NDManager model = NDManager.newBaseManager()) {
            block.initialize(model, DataType.FLOAT32, new Shape(1, 4));
            float[] before = block.getChildren().get(0).getValue().getParameters().get("weight").getArray()
                    .toFloatArray();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Checkpoints.loadInto(block, Fixtures.path("sequential.pt")));
            assertTrue(e.getMessage().contains("1.weight=block (5, 3) vs state dict (2, 3)"), e.getMessage());
            assertArrayEquals(before, block.getChildren().get(0).getValue().getParameters().get("weight")
                    .getArray().toFloatArray(), "nothing is copied");
        }
    }
}
