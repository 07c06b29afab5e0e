package dev.condjl.topk.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Writing safetensors: our writer's files re-read identically by our reader and follow the byte layout of the
 * format. The files land in {@code target/checkpoint-export/}, where {@code gen_fixtures.py verify} loads them
 * into PyTorch (its log is {@code src/test/resources/checkpoint/roundtrip.log}).
 */
class CheckpointExportTest {

    private static final Path EXPORT = Path.of("target", "checkpoint-export");
    private static NDManager manager;

    @BeforeAll
    static void setUp() throws Exception {
        manager = NDManager.newBaseManager();
        Files.createDirectories(EXPORT);
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    @Test
    void writtenArraysFollowTheSafetensorsLayout() throws Exception {
        Map<String, NDArray> read = Checkpoints.read(Fixtures.path("dtypes.pt"), manager);
        Path file = EXPORT.resolve("dtypes_read.safetensors");
        Checkpoints.writeSafetensors(file, read);

        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLength) % 8, "data starts 8-byte aligned");
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertEquals(header.stripTrailing(), header.strip(), "padding is trailing spaces only");
        JsonObject json = JsonParser.parseString(header).getAsJsonObject();
        assertEquals("pt", json.getAsJsonObject("__metadata__").get("format").getAsString());
        List<String> names = new ArrayList<>(json.keySet());
        names.remove("__metadata__");
        assertEquals(List.copyOf(read.keySet()), names, "tensors in map order");
        long expectedBegin = 0;
        for (String name : names) {
            NDArray array = read.get(name);
            JsonObject entry = json.getAsJsonObject(name);
            assertEquals(CheckpointDType.fromDjl(array.getDataType()).safetensorsCode(),
                    entry.get("dtype").getAsString());
            JsonArray shape = entry.getAsJsonArray("shape");
            assertEquals(array.getShape(), new Shape(longs(shape)));
            long[] offsets = longs(entry.getAsJsonArray("data_offsets"));
            assertEquals(expectedBegin, offsets[0], name + " begins where the previous tensor ended");
            byte[] data = Arrays.copyOfRange(bytes, (int) (8 + headerLength + offsets[0]),
                    (int) (8 + headerLength + offsets[1]));
            ByteBuffer native_ = array.toByteBuffer();
            byte[] want = new byte[native_.remaining()];
            native_.order(ByteOrder.LITTLE_ENDIAN).get(want);
            assertArrayEquals(want, data, name + " raw little-endian bytes");
            expectedBegin = offsets[1];
        }
        assertEquals(bytes.length - 8 - headerLength, expectedBegin, "data section fully covered");

        Map<String, NDArray> again = Checkpoints.read(file, manager);
        assertEquals(List.copyOf(read.keySet()), List.copyOf(again.keySet()));
        read.forEach((key, array) -> assertTrue(array.contentEquals(again.get(key)), key));
        // bfloat16 and int16 were widened on the way in; the values are still those PyTorch saved
        Fixtures.assertStateDict("dtypes.pt", again);
    }

    @Test
    void convertKeepsDtypesAndMakesViewsContiguous() throws Exception {
        for (String name : List.of("dtypes", "views")) {
            Path out = EXPORT.resolve(name + "_convert.safetensors");
            CheckpointInfo written = Checkpoints.convertToSafetensors(Fixtures.path(name + ".pt"), out,
                    ReadOptions.defaults());
            CheckpointInfo source = Checkpoints.inspect(Fixtures.path(name + ".pt"));
            assertEquals(source.tensors(), Checkpoints.inspect(out).tensors(), name + ": keys, dtypes, shapes");
            assertEquals(source.tensors(), written.tensors());
            Fixtures.assertStateDict(name + ".pt", Checkpoints.read(out, manager));
        }
        assertEquals(CheckpointDType.BFLOAT16, Checkpoints.inspect(EXPORT.resolve("dtypes_convert.safetensors"))
                .tensors().get(2).dtype());
    }

    @Test
    void convertsTheModelOfATrainingCheckpoint() throws Exception {
        Path out = EXPORT.resolve("nested_model.safetensors");
        Checkpoints.convertToSafetensors(Fixtures.path("nested.pt"), out,
                ReadOptions.builder().optKey("model").optStripPrefix("module.").build());
        Map<String, NDArray> sd = Checkpoints.read(out, manager);
        assertEquals(List.of("proj.weight", "proj.bias", "norm.weight", "norm.bias", "head.weight"),
                List.copyOf(sd.keySet()));
        Fixtures.expectedKeys("nested.pt").forEach(key -> Fixtures.assertTensor(
                Fixtures.expected("nested.pt").getAsJsonObject(key), sd.get(key.substring(7)), key));
    }

    @Test
    void exportsABlockUnderItsStateDictNames() throws Exception {
        TorchSequential block = new TorchSequential();
        block.add(Linear.builder().setUnits(3).build()).add(Linear.builder().setUnits(2).build());
        try (NDManager model = NDManager.newBaseManager()) {
            block.initialize(model, DataType.FLOAT32, new Shape(1, 4));
            Checkpoints.loadInto(block, Fixtures.path("sequential.pt"), ReadOptions.defaults(), true);
            Path out = EXPORT.resolve("block.safetensors");
            Checkpoints.exportBlock(block, out);
            Map<String, NDArray> sd = Checkpoints.read(out, manager);
            assertEquals(List.of("0.weight", "0.bias", "1.weight", "1.bias"), List.copyOf(sd.keySet()));
            StateDicts.parameters(block).forEach((key, p) -> assertTrue(p.getArray().contentEquals(sd.get(key)), key));
        }
    }

    @Test
    void refusesArraysWithoutACheckpointType() {
        Map<String, NDArray> arrays = new LinkedHashMap<>();
        arrays.put("ok", manager.ones(new Shape(2)));
        arrays.put("c", manager.ones(new Shape(2)).toType(DataType.COMPLEX64, false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Checkpoints.writeSafetensors(EXPORT.resolve("never.safetensors"), arrays));
        assertTrue(e.getMessage().contains("array 'c'") && e.getMessage().contains("complex64"), e.getMessage());
    }

    private static long[] longs(JsonArray array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).getAsLong();
        }
        return out;
    }
}
