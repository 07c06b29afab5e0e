package dev.condjl.topk.checkpoint;

import static dev.condjl.topk.checkpoint.HostileFiles.floats;
import static dev.condjl.topk.checkpoint.HostileFiles.le;
import static dev.condjl.topk.checkpoint.HostileFiles.oneTensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.condjl.topk.checkpoint.HostileFiles.Pickle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged and hostile checkpoints: each named case and each random mutation must end in a {@link
 * CheckpointException} (or, for a mutation that misses every checked byte, in the original content) within one
 * second, with the JVM still running afterwards.
 */
class HostileCheckpointTest {

    private static final Logger LOG = LogManager.getLogger(HostileCheckpointTest.class);
    private static final Duration BUDGET = Duration.ofSeconds(1);
    private static final int MUTATIONS_PER_FILE = 240;
    private static final AtomicInteger NAMED_CASES = new AtomicInteger();

    @TempDir static Path dir;
    private static NDManager manager;

    @FunctionalInterface
    private interface FileMaker {
        Path make(Path file) throws Exception;
    }

    @BeforeAll
    static void setUp() throws Exception {
        manager = NDManager.newBaseManager();
        // load the engine outside the timed cases
        Checkpoints.read(Fixtures.path("sequential.pt"), manager);
    }

    @AfterAll
    static void tearDown() throws Exception {
        // the JVM and the engine still work after every hostile file
        Fixtures.assertStateDict("dtypes.pt", Checkpoints.read(Fixtures.path("dtypes.pt"), manager));
        manager.close();
        LOG.info("hostile named cases refused: {}", NAMED_CASES.get());
    }

    @TestFactory
    Stream<DynamicTest> forbiddenGlobalsAndOpcodes() {
        return Stream.of(
                refused("os.system via GLOBAL (fixture)", f -> Fixtures.path("hostile_os_system.pt"),
                        "global 'os.system' is not allowed"),
                refused("builtins.eval via STACK_GLOBAL (fixture)", f -> Fixtures.path("hostile_builtins_eval.pt"),
                        "global 'builtins.eval' is not allowed"),
                refused("subprocess.Popen inside a state dict (fixture)",
                        f -> Fixtures.path("hostile_subprocess_popen.pt"), "global 'subprocess.Popen' is not allowed"),
                refused("posix.system", pt(Pickle.proto(2).global("posix", "system").str("id").op(0x85, 'R').stop()),
                        "'posix.system'"),
                refused("builtins.exec via STACK_GLOBAL", pt(Pickle.proto(4).shortStr("builtins").shortStr("exec")
                        .op(0x93).shortStr("print(1)").op(0x85, 'R').stop()), "'builtins.exec'"),
                refused("builtins.getattr", pt(Pickle.proto(2).global("builtins", "getattr").stop()),
                        "'builtins.getattr'"),
                refused("torch.load", pt(Pickle.proto(2).global("torch", "load").stop()), "'torch.load'"),
                refused("torch.storage._load_from_bytes", pt(Pickle.proto(2)
                        .global("torch.storage", "_load_from_bytes").stop()), "'torch.storage._load_from_bytes'"),
                refused("numpy scalar reconstruction", pt(Pickle.proto(2)
                        .global("numpy.core.multiarray", "scalar").stop()), "'numpy.core.multiarray.scalar'"),
                refused("unsupported storage class", pt(Pickle.proto(2).op('}', '(').str("w")
                        .tensor("ComplexFloatStorage", "0", 2, 0, new long[] {2}, new long[] {1}).op('u').stop()),
                        "'torch.ComplexFloatStorage'"),
                refused("GLOBAL with terminal escapes is quoted safely",
                        pt(Pickle.proto(2).global("os\u001b[2J", "system").stop()), "'os?[2J.system'"),
                refused("GLOBAL name over 256 bytes", pt(Pickle.proto(2).global("a".repeat(300), "b").stop()),
                        "longer than 256"),
                refused("INST opcode", pt(Pickle.proto(2).op('(').str("id").op('i')
                        .bytes("os\nsystem\n".getBytes(StandardCharsets.US_ASCII)).stop()), "opcode 0x69"),
                refused("OBJ opcode", pt(Pickle.proto(2).op('(').global("collections", "OrderedDict").op('o').stop()),
                        "opcode 0x6f"),
                refused("PERSID text opcode", pt(Pickle.proto(2).op('P').bytes("0\n".getBytes(StandardCharsets.US_ASCII))
                        .stop()), "opcode 0x50"),
                refused("EXT1 opcode", pt(Pickle.proto(2).op(0x82, 1).stop()), "opcode 0x82"),
                refused("LONG text opcode with 100,000 digits", pt(Pickle.proto(2).op('L')
                        .bytes(("1".repeat(100_000) + "L\n").getBytes(StandardCharsets.US_ASCII)).stop()),
                        "opcode 0x4c"),
                refused("BUILD on a list", pt(Pickle.proto(2).op(']', '}', 'b').stop()), "BUILD is only allowed"));
    }

    @TestFactory
    Stream<DynamicTest> malformedPickles() {
        byte[] valid = oneTensor(4, 0, new long[] {2, 2}, new long[] {2, 1});
        return Stream.of(
                refused("empty data.pkl", pt(new byte[0]), "pickle refused"),
                refused("truncated pickle (no STOP)", pt(Arrays.copyOf(valid, valid.length - 1)), "pickle refused"),
                refused("bytes after STOP", pt(concat(valid, "junk".getBytes(StandardCharsets.US_ASCII))),
                        "4 bytes follow the STOP opcode"),
                refused("BINUNICODE of 2 GiB", pt(Pickle.proto(2).op('X').bytes(le(4, Integer.MAX_VALUE)).stop()),
                        "string of 2147483647 bytes declared"),
                refused("BINUNICODE of negative length", pt(Pickle.proto(2).op('X').bytes(le(4, -1)).stop()),
                        "string of -1 bytes declared"),
                refused("BINUNICODE8 of 2^62 bytes", pt(Pickle.proto(4).op(0x8d).bytes(le(8, 1L << 62)).stop()),
                        "string of 4611686018427387904 bytes declared"),
                refused("BINGET of an unknown memo slot", pt(Pickle.proto(2).op('h', 5).stop()), "pickle refused"),
                refused("stack underflow", pt(Pickle.proto(2).op('R').stop()), "pickle refused"),
                refused("SETITEM on a list", pt(Pickle.proto(2).op(']').str("k").str("v").op('s').stop()),
                        "SETITEM on a list"),
                refused("APPENDS on a dict", pt(Pickle.proto(2).op('}', '(').integer(1).op('e').stop()),
                        "APPENDS on a dict"),
                refused("REDUCE on a string", pt(Pickle.proto(2).str("x").op(')', 'R').stop()), "pickle refused"),
                refused("self-containing list as a dict key", pt(Pickle.proto(2).op('}', ']', 'q', 0, 'h', 0, 'a')
                        .integer(1).op('s').stop()), "dict key of type list"),
                refused("200,000 nested lists", pt(Pickle.proto(2).bytes(repeat(']', 200_000))
                        .bytes(repeat('a', 199_999)).stop()), "value of type list is not a dict of tensors"),
                refused("pickle larger than maxPickleBytes", pt(valid),
                        ReadOptions.builder().optMaxPickleBytes(64).build(), "larger than maxPickleBytes (64)"),
                refused("key with terminal escapes", pt(Pickle.proto(2).op('}', '(').str("w\u001b[2J")
                        .floatTensor("0", 4, 0, new long[] {4}, new long[] {1}).op('u').stop()),
                        "key 'w?[2J': key contains control characters"),
                refused("top level is a list", pt(Pickle.proto(2).op(']').stop()), "value of type list"),
                refused("state dict key is an int", pt(Pickle.proto(2).op('}', '(').integer(0)
                        .floatTensor("0", 4, 0, new long[] {4}, new long[] {1}).op('u').stop()),
                        "keys must be strings"),
                refused("two dicts of tensors: no single state dict", pt(Pickle.proto(2).op('}', '(')
                        .str("a").op('}', '(').str("w").floatTensor("0", 4, 0, new long[] {4}, new long[] {1}).op('u')
                        .str("b").op('}', '(').str("w").floatTensor("0", 4, 0, new long[] {4}, new long[] {1}).op('u')
                        .op('u').stop()), "no single state dict"));
    }

    @TestFactory
    Stream<DynamicTest> brokenStoragesAndTensors() {
        long[] one = {1};
        return Stream.of(
                refused("persistent id of 4 fields", pt(Pickle.proto(2).op('(').str("storage")
                        .global("torch", "FloatStorage").str("0").str("cpu").op('t', 'Q').stop()),
                        "persistent id is not"),
                refused("storage key with a path", pt(Pickle.proto(2)
                        .storage("FloatStorage", "../../etc/passwd", 4).stop()), "storage key must be"),
                refused("storage declared twice with two dtypes", pt(Pickle.proto(2).op('}', '(')
                        .str("a").floatTensor("0", 4, 0, one, one)
                        .str("b").tensor("DoubleStorage", "0", 4, 0, one, one).op('u').stop()),
                        "declared twice with different types"),
                refused("storage size beyond 64 bits", pt(Pickle.proto(2).op('(').str("storage")
                        .global("torch", "FloatStorage").str("0").str("cpu").op(0x8a, 9).bytes(le(8, 0)).op(1)
                        .op('t', 'Q').stop()), "does not fit in 64 bits"),
                refused("negative storage size", pt(oneTensor(-1, 0, one, one)), "negative size -1"),
                refused("storage entry missing", f -> HostileFiles.torchZip(f, oneTensor(4, 0, one, one), Map.of()),
                        "entry 'archive/data/0', key 'w': storage entry is missing"),
                refused("storage shorter than its tensor", pt(oneTensor(4, 0, new long[] {10}, one)),
                        "needs storage elements up to 9, but the storage holds 4"),
                refused("entry shorter than the declared storage", pt(oneTensor(5, 0, one, one)),
                        "entry holds 16 bytes but the pickle declares 5 float32 elements"),
                refused("10 GB declared shape in a 1 KB file", f -> underOneKb(HostileFiles.torchZip(f, oneTensor(
                        2_500_000_000L, 0, new long[] {50_000, 50_000}, new long[] {50_000, 1}),
                        Map.of("0", floats(1, 2, 3, 4)))), "the pickle declares 2500000000 float32 elements"),
                refused("10 GB broadcast (stride 0) of 4 floats", f -> underOneKb(HostileFiles.torchZip(f, oneTensor(4, 0,
                        new long[] {2_500_000_000L}, new long[] {0}), Map.of("0", floats(1, 2, 3, 4)))),
                        "exceeds the 2 GiB per-array limit"),
                refused("negative size", pt(oneTensor(4, 0, new long[] {-1, 2}, new long[] {2, 1})),
                        "negative size in shape [-1, 2]"),
                refused("shape product overflows", pt(oneTensor(4, 0, new long[] {1L << 40, 1L << 40},
                        new long[] {0, 0})), "overflows a 64-bit element count"),
                refused("stride overflows the index", pt(oneTensor(4, 0, new long[] {3}, new long[] {Long.MAX_VALUE})),
                        "overflow a 64-bit storage index"),
                refused("negative stride", pt(oneTensor(4, 3, new long[] {2}, new long[] {-1})), "negative stride"),
                refused("negative storage offset", pt(oneTensor(4, -1, one, one)), "negative storage offset"),
                refused("storage offset past the end", pt(oneTensor(4, 100, one, one)),
                        "needs storage elements up to 100"),
                refused("empty tensor past the end", pt(oneTensor(4, 100, new long[] {0}, one)), "past the end"),
                refused("65 dimensions", pt(oneTensor(4, 0, new long[65], new long[65])), "at most 64"),
                refused("stride rank differs from shape", pt(oneTensor(4, 0, new long[] {2, 2}, one)),
                        "does not match shape"),
                refused("size is a string", pt(Pickle.proto(2).op('}', '(').str("w")
                        .global("torch._utils", "_rebuild_tensor_v2").op('(').storage("FloatStorage", "0", 4)
                        .integer(0).op('(').str("4").op('t').tuple(1).op(0x89).op('}', 't', 'R', 'u').stop()),
                        "size is of type str"),
                refused("tensor rebuild with two arguments", pt(Pickle.proto(2).op('}', '(').str("w")
                        .global("torch._utils", "_rebuild_tensor_v2").op('(').storage("FloatStorage", "0", 4)
                        .integer(0).op('t', 'R', 'u').stop()), "tensor rebuild needs"));
    }

    @TestFactory
    Stream<DynamicTest> brokenArchives() {
        byte[] pickle = oneTensor(4, 0, new long[] {4}, new long[] {1});
        Stream<DynamicTest> named = Stream.of(
                refused("random bytes", f -> Files.write(f, random(1024, 1)), "neither a PyTorch zip"),
                refused("empty file", f -> Files.write(f, new byte[0]), "too short"),
                refused("legacy torch.save (fixture)", f -> Fixtures.path("legacy.pt"), "re-save it with torch >= 1.6"),
                refused("TorchScript archive (fixture)", f -> Fixtures.path("torchscript.pt"), "TorchScript archive"),
                refused("zip bomb: 64 MiB of zeros deflated", f -> (HostileFiles.zip(f, entries(
                        "archive/data.pkl", oneTensor(16L << 20, 0, new long[] {16L << 20}, new long[] {1}),
                        "archive/data/0", new byte[64 << 20]), ZipEntry.DEFLATED)), "zip bomb"),
                refused("more entries than maxEntries", pt(pickle), ReadOptions.builder().optMaxEntries(2).build(),
                        "3 entries, more than maxEntries (2)"),
                refused("more bytes than maxTotalBytes", pt(pickle), ReadOptions.builder().optMaxTotalBytes(64).build(),
                        "more than maxTotalBytes (64)"),
                refused("entry name with ..", zip("archive/../../etc/passwd", pickle), "unsafe entry name"),
                refused("absolute entry name", zip("/archive/data.pkl", pickle), "unsafe entry name"),
                refused("backslash in an entry name", zip("archive\\data.pkl", pickle), "unsafe entry name"),
                refused("control character in an entry name", zip("archive/data\u001b.pkl", pickle),
                        "entry 'archive/data?.pkl': unsafe entry name"),
                refused("entries under two folders", f -> HostileFiles.zip(f, entries("archive/data.pkl", pickle,
                        "other/data/0", floats(1, 2, 3, 4)), ZipEntry.STORED), "outside the archive folder 'archive'"),
                refused("duplicate entry names", f -> duplicateEntry(f, pickle), "entry appears twice"),
                refused("central directory claims a 3.75 GB storage in a 1 KB file", f -> underOneKb(
                        claimHugeEntry(f)), "entry 'archive/data/0': declared sizes 4026531840/4026531840 do not fit"),
                refused("no data.pkl", zip("archive/version", "3\n".getBytes(StandardCharsets.US_ASCII)),
                        "no archive/data.pkl"),
                refused("CRC mismatch in a storage", f -> corruptStorage(f, pickle), "CRC-32 mismatch"),
                refused("byte order neither little nor big", f -> HostileFiles.zip(f, entries("archive/data.pkl",
                        pickle, "archive/byteorder", "middle".getBytes(StandardCharsets.US_ASCII), "archive/data/0",
                        floats(1, 2, 3, 4)), ZipEntry.STORED), "byte order must be"));
        Stream<DynamicTest> truncated = IntStream.range(1, 11).mapToObj(i -> refused(
                "dtypes.pt truncated to " + i + "/11", f -> truncate(f, "dtypes.pt", i, 11), "zip"));
        return Stream.concat(named, truncated);
    }

    @TestFactory
    Stream<DynamicTest> brokenSafetensors() {
        byte[] eight = floats(1, 2);
        String ok = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        Stream<DynamicTest> named = Stream.of(
                refused("header length beyond the file", f -> safetensorsWithLength(f, 1000), "header length 1000"),
                refused("header length of 2^64 - 1", f -> safetensorsWithLength(f, -1),
                        "header length 18446744073709551615"),
                refused("header length over 100 MB", f -> safetensorsWithLength(f, 200_000_000),
                        "header length 200000000"),
                refused("header not JSON", st("{not json}", eight), "malformed JSON header: syntax error at line 1 column 3"),
                refused("header not UTF-8", f -> HostileFiles.safetensors(f, new byte[] {'{', (byte) 0xff, '}'},
                        eight), "not valid UTF-8"),
                refused("JSON nested 10,000 deep", st("{\"a\":" + "[".repeat(10_000) + "]".repeat(10_000) + "}",
                        eight), "malformed JSON header"),
                refused("duplicate tensor names", st("{" + ok + "," + ok + "}", eight), "key 'w': tensor name appears"),
                refused("unknown field", st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
                        + "\"x\":1}}", eight), "unexpected or repeated field 'x'"),
                refused("unsupported dtype", st("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}",
                        eight), "dtype 'F8_E4M3' is not supported"),
                refused("negative shape", st("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
                        eight), "negative size"),
                refused("shape product overflows", st("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                        + "\"data_offsets\":[0,8]}}", eight), "overflows"),
                refused("10 GB declared shape in a 1 KB file", f -> underOneKb(HostileFiles.safetensors(f,
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[50000,50000],\"data_offsets\":[0,10000000000]}}", eight)),
                        "2 GiB"),
                refused("offsets past the end of the file", st("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000],"
                        + "\"data_offsets\":[0,4000]}}", eight), "tensors cover 4000 bytes but the data section holds 8"),
                refused("offsets reversed", st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
                        eight), "do not hold"),
                refused("overlapping tensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", floats(1, 2, 3)),
                        "gap or overlap"),
                refused("gap between tensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", floats(1, 2, 3)),
                        "gap or overlap"),
                refused("bytes no tensor covers", st("{" + ok + "}", floats(1, 2, 3, 4)),
                        "tensors cover 8 bytes but the data section holds 16"),
                refused("metadata value not a string", st("{\"__metadata__\":{\"a\":1}," + ok + "}", eight),
                        "malformed JSON header"),
                refused("text after the header object", st("{" + ok + "}x", eight), "malformed JSON header"),
                refused("shape is not an array", st("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}",
                        eight), "malformed JSON header"),
                refused("three data_offsets", st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}",
                        eight), "two \"data_offsets\""),
                refused("key option on a safetensors file", st("{" + ok + "}", eight),
                        ReadOptions.builder().optKey("model").build(), "key option"),
                refused("more tensors than maxEntries", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":"
                        + "[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", eight),
                        ReadOptions.builder().optMaxEntries(1).build(), "more than maxEntries (1)"));
        Stream<DynamicTest> truncated = IntStream.range(1, 11).mapToObj(i -> refused(
                "dtypes.safetensors truncated to " + i + "/11", f -> truncate(f, "dtypes.safetensors", i, 11),
                "entry 'header'"));
        return Stream.concat(named, truncated);
    }

    /**
     * Property: for 1,200 seeded random mutations (bit flips, overwrites, interesting integers, insertions,
     * deletions, truncations, copied chunks) of five valid files, reading ends within one second in a {@link
     * CheckpointException} or in a state dict; for torch.save files that state dict equals the original (every
     * byte that matters is covered by a CRC-32 or a structural check).
     */
    @Test
    void randomMutationsEndInCheckpointExceptionOrTheOriginal() throws Exception {
        Random random = new Random(20_240_501L);
        int refused = 0;
        int accepted = 0;
        long slowestNanos = 0;
        for (String name : List.of("dtypes.pt", "views.pt", "nested.pt", "sequential.pt", "dtypes.safetensors")) {
            int acceptedBefore = accepted;
            byte[] original = Files.readAllBytes(Fixtures.path(name));
            Map<String, float[]> want = snapshot(Checkpoints.read(Fixtures.path(name), manager));
            for (int i = 0; i < MUTATIONS_PER_FILE; i++) {
                Path file = Files.write(dir.resolve("mutant-" + i + "-" + name), mutate(original, random));
                String what = name + " mutation " + i;
                long start = System.nanoTime();
                Map<String, float[]> got = assertTimeoutPreemptively(BUDGET, () -> {
                    try (NDManager scratch = manager.newSubManager()) {
                        return snapshot(Checkpoints.read(file, scratch));
                    } catch (CheckpointException e) {
                        assertTrue(e.getMessage().startsWith(file.toString()), what + ": " + e.getMessage());
                        return null;
                    }
                }, what);
                slowestNanos = Math.max(slowestNanos, System.nanoTime() - start);
                if (got == null) {
                    refused++;
                } else {
                    accepted++;
                    if (name.endsWith(".pt")) {
                        assertEquals(want.keySet(), got.keySet(), what);
                        want.forEach((k, v) -> assertTrue(Arrays.equals(v, got.get(k)), what + " changed " + k));
                    }
                }
                Files.delete(file);
            }
            LOG.info("{}: {} of {} mutations read back", name, accepted - acceptedBefore, MUTATIONS_PER_FILE);
        }
        LOG.info("mutations: {} refused with CheckpointException, {} read back (torch.save ones unchanged);"
                + " slowest case {} ms", refused, accepted, slowestNanos / 1_000_000);
        assertEquals(5 * MUTATIONS_PER_FILE, refused + accepted);
        assertTrue(refused > accepted, "most mutations hit a checked byte: " + refused + " vs " + accepted);
    }

    private static DynamicTest refused(String name, FileMaker maker, String fragment) {
        return refused(name, maker, ReadOptions.defaults(), fragment);
    }

    private static DynamicTest refused(String name, FileMaker maker, ReadOptions options, String fragment) {
        return DynamicTest.dynamicTest(name, () -> {
            Path file = maker.make(dir.resolve(name.replaceAll("[^A-Za-z0-9]+", "_")));
            CheckpointException e = assertTimeoutPreemptively(BUDGET,
                    () -> assertThrows(CheckpointException.class, () -> Checkpoints.read(file, manager, options)));
            assertTrue(e.getMessage().startsWith(file.toString()), "message names the file: " + e.getMessage());
            assertTrue(e.getMessage().contains(fragment), "expected '" + fragment + "' in: " + e.getMessage());
            assertTrue(e.getMessage().chars().allMatch(c -> c >= 0x20 && c < 0x7f || c > 0x9f),
                    "no control characters in: " + e.getMessage());
            NAMED_CASES.incrementAndGet();
        });
    }

    /** A torch-like zip holding {@code pickle} and a 4-float storage "0". */
    private static FileMaker pt(byte[] pickle) {
        return f -> HostileFiles.torchZip(f, pickle, Map.of("0", floats(1, 2, 3, 4)));
    }

    private static FileMaker zip(String entryName, byte[] data) {
        return f -> HostileFiles.zip(f, entries(entryName, data), ZipEntry.STORED);
    }

    private static FileMaker st(String header, byte[] data) {
        return f -> HostileFiles.safetensors(f, header, data);
    }

    private static Path safetensorsWithLength(Path f, long length) throws Exception {
        return Files.write(f, concat(le(8, length), "{}".getBytes(StandardCharsets.US_ASCII), floats(1)));
    }

    private static Map<String, byte[]> entries(Object... nameThenData) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (int i = 0; i < nameThenData.length; i += 2) {
            out.put((String) nameThenData[i], (byte[]) nameThenData[i + 1]);
        }
        return out;
    }

    /** Two entries renamed to the same name in both local and central headers. */
    private static Path duplicateEntry(Path f, byte[] pickle) throws Exception {
        HostileFiles.zip(f, entries("archive/data.pkl", pickle, "archive/data/0", floats(1, 2, 3, 4),
                "archive/data/1", floats(5, 6, 7, 8)), ZipEntry.STORED);
        return Files.write(f, replaceAll(Files.readAllBytes(f), "archive/data/1", "archive/data/0"));
    }

    /** A valid archive whose central directory then declares 0xF0000000 bytes for storage "0", as the pickle does. */
    private static Path claimHugeEntry(Path f) throws Exception {
        long numel = 0xF0000000L / 4;
        HostileFiles.torchZip(f, oneTensor(numel, 0, new long[] {numel}, new long[] {1}),
                Map.of("0", floats(1, 2, 3, 4)));
        byte[] bytes = Files.readAllBytes(f);
        byte[] name = "archive/data/0".getBytes(StandardCharsets.US_ASCII);
        int cen = indexOf(bytes, concat(new byte[] {'P', 'K', 1, 2}));
        while (!Arrays.equals(bytes, cen + 46, cen + 46 + name.length, name, 0, name.length)) {
            cen = cen + 1 + indexOf(Arrays.copyOfRange(bytes, cen + 1, bytes.length), new byte[] {'P', 'K', 1, 2});
        }
        System.arraycopy(le(4, 0xF0000000L), 0, bytes, cen + 20, 4);
        System.arraycopy(le(4, 0xF0000000L), 0, bytes, cen + 24, 4);
        return Files.write(f, bytes);
    }

    /** A valid archive whose storage bytes (1, 2, 3, 4 as float32) have one bit flipped. */
    private static Path corruptStorage(Path f, byte[] pickle) throws Exception {
        HostileFiles.torchZip(f, pickle, Map.of("0", floats(1, 2, 3, 4)));
        byte[] bytes = Files.readAllBytes(f);
        int at = indexOf(bytes, floats(1, 2, 3, 4));
        bytes[at + 5] ^= 1;
        return Files.write(f, bytes);
    }

    private static Path truncate(Path f, String fixture, int part, int parts) throws Exception {
        byte[] bytes = Files.readAllBytes(Fixtures.path(fixture));
        return Files.write(f, Arrays.copyOf(bytes, bytes.length * part / parts));
    }

    /** Checks that a file claiming gigabytes is itself under 1 KB. */
    private static Path underOneKb(Path file) throws Exception {
        assertTrue(Files.size(file) < 1024, file + " has " + Files.size(file) + " bytes");
        return file;
    }

    private static Map<String, float[]> snapshot(Map<String, NDArray> sd) {
        Map<String, float[]> out = new LinkedHashMap<>();
        sd.forEach((k, v) -> out.put(k, v.toType(DataType.FLOAT32, false).toFloatArray()));
        return out;
    }

    /** One seeded random mutation of {@code original}. */
    static byte[] mutate(byte[] original, Random random) {
        byte[] b = original.clone();
        int at = random.nextInt(b.length);
        switch (random.nextInt(7)) {
            case 0:
                b[at] ^= (byte) (1 << random.nextInt(8));
                return b;
            case 1:
                for (int i = at; i < Math.min(b.length, at + 1 + random.nextInt(16)); i++) {
                    b[i] = (byte) random.nextInt(256);
                }
                return b;
            case 2:
                int[] interesting = {0, -1, 0x7fffffff, 0x80000000, 0xffff, 1 << 20, 0x7f};
                byte[] v = le(4, interesting[random.nextInt(interesting.length)]);
                System.arraycopy(v, 0, b, Math.min(at, b.length - 4), 4);
                return b;
            case 3:
                return Arrays.copyOf(b, at);
            case 4:
                return concat(Arrays.copyOf(b, at), random(1 + random.nextInt(8), random.nextLong()),
                        Arrays.copyOfRange(b, at, b.length));
            case 5:
                return concat(Arrays.copyOf(b, at), Arrays.copyOfRange(b, Math.min(b.length,
                        at + 1 + random.nextInt(16)), b.length));
            default:
                int from = random.nextInt(b.length);
                int len = Math.min(1 + random.nextInt(64), Math.min(b.length - from, b.length - at));
                System.arraycopy(original, from, b, at, len);
                return b;
        }
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        b[0] = 'R';
        return b;
    }

    private static byte[] repeat(int opcode, int n) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) opcode);
        return b;
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new IllegalArgumentException("pattern not found");
    }

    private static byte[] replaceAll(byte[] bytes, String from, String to) {
        byte[] f = from.getBytes(StandardCharsets.US_ASCII);
        byte[] t = to.getBytes(StandardCharsets.US_ASCII);
        byte[] out = bytes.clone();
        for (int i = 0; i + f.length <= out.length; i++) {
            if (Arrays.equals(out, i, i + f.length, f, 0, f.length)) {
                System.arraycopy(t, 0, out, i, t.length);
            }
        }
        return out;
    }
}
