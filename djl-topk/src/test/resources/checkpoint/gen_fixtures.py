#!/usr/bin/env python3
"""Checkpoint fixtures for dev.condjl.topk.checkpoint, and the PyTorch side of the round trip.

Run with Debian's torch (1.13; its torch.save writes the zip format of torch >= 1.6):

    /usr/bin/python3 gen_fixtures.py generate            # writes the fixtures beside this script
    mvn -B -o -pl djl-topk -am test -Dtest='Checkpoint*' -Dsurefire.failIfNoSpecifiedTests=false  # from the root; writes djl-topk/target/checkpoint-export/
    /usr/bin/python3 gen_fixtures.py verify ../../../../target/checkpoint-export

`generate` writes torch.save files of several dtypes (incl. bfloat16), shared storages, non-contiguous views,
nested training checkpoints, a legacy (non-zip) file, a TorchScript archive, a safetensors file (the shared
writer tools/safetensors_file.py; the safetensors package is not installed), three hostile pickles crafted from opcodes (never executed;
checked with pickletools), and expected.json: every tensor's dtype, shape and values as plain JSON numbers.

Copies of nested.pt and hostile_os_system.pt go to integration-tests/src/test/resources/checkpoint/ for the
tests of `condjl convert` and `condjl inspect`.

`verify` loads the safetensors files the Java tests wrote back into PyTorch (load_state_dict, strict) and
compares them with the tensors this script saved. Its log is committed as roundtrip.log.
"""
import collections
import io
import json
import os
import pickletools
import shutil
import struct
import sys
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = HERE
while not os.path.isfile(os.path.join(ROOT, "tools", "safetensors_file.py")):
    ROOT = os.path.dirname(ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from safetensors_file import read_safetensors, write_safetensors  # noqa: E402


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.head = torch.nn.Linear(3, 2, bias=False)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.proj(x))))


def tiny_net():
    torch.manual_seed(7)
    net = TinyNet()
    with torch.no_grad():
        net.norm.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
        net.norm.bias.copy_(torch.tensor([0.25, 0.0, -0.125]))
    return net


def sequential():
    torch.manual_seed(11)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))


def dtype_tensors():
    sd = collections.OrderedDict()
    sd["f32"] = torch.tensor([[1.5, -2.25, 3.0], [1e-8, -0.0, 1e-45]], dtype=torch.float32)
    sd["f16"] = torch.tensor([0.5, -1.0, 65504.0, 6.103515625e-05, 5.960464477539063e-08], dtype=torch.float16)
    sd["bf16"] = torch.tensor([[1.0, -3.140625], [1e30, -1e-30]], dtype=torch.bfloat16)
    sd["f64"] = torch.tensor([1e-300, -2.5, 3.141592653589793], dtype=torch.float64)
    sd["i64"] = torch.tensor([2 ** 62, -(2 ** 62), 0, 7], dtype=torch.int64)
    sd["i32"] = torch.tensor([2 ** 31 - 1, -(2 ** 31), 5], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767, 1], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(4.25)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def view_tensors():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tied = torch.linspace(-1, 1, 12).reshape(3, 4)
    longs = torch.arange(10, dtype=torch.int64) * 1000000007
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["transposed"] = base.t()                     # stride (1, 6)
    sd["sliced"] = base[1:3, 2:5]                   # storage offset 8, stride (6, 1)
    sd["every_other"] = base[:, ::2]                # stride (6, 2)
    sd["column"] = base[:, 5]                       # offset 5, stride (6,)
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)  # stride (0, 1)
    sd["tied_a"] = tied                             # the same tensor twice: one storage
    sd["tied_b"] = tied
    sd["bf16_t"] = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3).t()
    sd["longs_mid"] = longs[3:7]                    # offset 3
    return sd


def nested_checkpoint():
    net = tiny_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.ones(2, 4)).sum().backward()
    opt.step()
    model = collections.OrderedDict(("module." + k, v) for k, v in net.state_dict().items())
    return {"model": model, "optimizer": opt.state_dict(), "epoch": 3}, net


def describe(t):
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        values = [float(v) for v in t.double().reshape(-1).tolist()]
    elif t.dtype == torch.bool:
        values = [int(v) for v in t.reshape(-1).tolist()]
    else:
        values = [int(v) for v in t.reshape(-1).tolist()]
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": values}


def torch_like_zip(path, pickle_bytes, storages=None):
    """A zip laid out like torch.save: <name>/data.pkl, <name>/data/<key>, <name>/version."""
    folder = os.path.splitext(os.path.basename(path))[0]
    entries = [("data.pkl", pickle_bytes)] + [("data/" + k, v) for k, v in (storages or {}).items()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries + [("version", b"3\n")]:
            z.writestr(zipfile.ZipInfo(folder + "/" + name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def u(s):
    """BINUNICODE."""
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def su(s):
    """SHORT_BINUNICODE (protocol 4)."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def hostile_pickles():
    """Pickles that would run commands if unpickled by Python's pickle. Built from opcodes; never loaded."""
    os_system = b"\x80\x02" + b"cos\nsystem\n" + u("echo pwned > /tmp/condjl-pwned") + b"\x85R."
    builtins_eval = (b"\x80\x04" + su("builtins") + su("eval") + b"\x93"
                     + su("__import__('os').system('echo pwned')") + b"\x85R.")
    # A real state dict whose second value is subprocess.Popen(['echo', 'pwned']).
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + b"(" + u("storage") + b"ctorch\nFloatStorage\n"
              + u("0") + u("cpu") + b"K\x02tQ" + b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt" + b"R")
    popen = (b"csubprocess\nPopen\n" + b"(" + b"]" + b"(" + u("echo") + u("pwned") + b"e" + b"tR")
    subprocess_popen = b"\x80\x02}(" + u("weight") + tensor + u("evil") + popen + b"u."
    return {
        "hostile_os_system.pt": (os_system, {}),
        "hostile_builtins_eval.pt": (builtins_eval, {}),
        "hostile_subprocess_popen.pt": (subprocess_popen, {"0": struct.pack("<2f", 1.0, 2.0)}),
    }


def generate():
    log = []
    expected = {}

    dtypes = dtype_tensors()
    torch.save(dtypes, os.path.join(HERE, "dtypes.pt"))
    expected["dtypes.pt"] = {k: describe(v) for k, v in dtypes.items()}
    write_safetensors(os.path.join(HERE, "dtypes.safetensors"), dtypes, metadata={"format": "pt"})
    expected["dtypes.safetensors"] = expected["dtypes.pt"]

    views = view_tensors()
    torch.save(views, os.path.join(HERE, "views.pt"))
    expected["views.pt"] = {k: describe(v) for k, v in views.items()}
    reread = torch.load(os.path.join(HERE, "views.pt"))
    assert reread["tied_a"].data_ptr() == reread["tied_b"].data_ptr(), "tied tensors must share a storage"
    assert reread["sliced"].storage_offset() == 8 and reread["transposed"].stride() == (1, 6)
    log.append("views.pt: sliced offset %d stride %s, transposed stride %s, expanded stride %s, tied share storage"
               % (reread["sliced"].storage_offset(), reread["sliced"].stride(), reread["transposed"].stride(),
                  reread["expanded"].stride()))

    checkpoint, net = nested_checkpoint()
    torch.save(checkpoint, os.path.join(HERE, "nested.pt"))
    expected["nested.pt"] = {k: describe(v) for k, v in checkpoint["model"].items()}
    log.append("nested.pt: top-level keys %s, optimizer state for %d parameters"
               % (list(checkpoint), len(checkpoint["optimizer"]["state"])))

    torch.save(net.state_dict(keep_vars=True), os.path.join(HERE, "parameters.pt"))
    expected["parameters.pt"] = {k: describe(v) for k, v in net.state_dict().items()}

    seq = sequential()
    torch.save(seq.state_dict(), os.path.join(HERE, "sequential.pt"))
    expected["sequential.pt"] = {k: describe(v) for k, v in seq.state_dict().items()}

    torch.save(dtypes, os.path.join(HERE, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.jit.script(tiny_net()).save(os.path.join(HERE, "torchscript.pt"))

    for name, (pickle_bytes, storages) in hostile_pickles().items():
        torch_like_zip(os.path.join(HERE, name), pickle_bytes, storages)
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(pickle_bytes)]
        globals_ = [arg for name_, arg in ops if name_ == "GLOBAL"]
        if any(name_ == "STACK_GLOBAL" for name_, _ in ops):
            strings = [arg for name_, arg in ops if name_ == "SHORT_BINUNICODE"]
            globals_.append(" ".join(strings[:2]) + " (STACK_GLOBAL)")
        log.append("%s: well-formed pickle (pickletools, %d opcodes), calls %s" % (name, len(ops), globals_))

    # the CLI tests of integration-tests use two of these files
    cli_fixtures = os.path.join(HERE, "..", "..", "..", "..", "..", "integration-tests", "src", "test", "resources",
                                "checkpoint")
    os.makedirs(cli_fixtures, exist_ok=True)
    for name in ("nested.pt", "hostile_os_system.pt"):
        shutil.copyfile(os.path.join(HERE, name), os.path.join(cli_fixtures, name))

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=False)
        f.write("\n")
    sizes = {n: os.path.getsize(os.path.join(HERE, n)) for n in sorted(os.listdir(HERE)) if n != "gen_fixtures.py"}
    log.append("sizes: %s, total %d bytes" % (sizes, sum(sizes.values())))
    log.insert(0, "torch %s" % torch.__version__)
    with open(os.path.join(HERE, "fixtures.log"), "w") as f:
        f.write("\n".join(log) + "\n")
    print("\n".join(log))


def check(log, ok, what):
    log.append(("OK   " if ok else "FAIL ") + what)
    return ok


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def verify(directory):
    log, ok = ["torch %s, files from %s" % (torch.__version__, directory)], True
    dtypes, views = dtype_tensors(), view_tensors()
    checkpoint, net = nested_checkpoint()

    # convertToSafetensors keeps dtypes: every tensor must come back bit-identical.
    for name, source in (("dtypes_convert", dtypes), ("views_convert", views)):
        loaded, meta, n = read_safetensors(os.path.join(directory, name + ".safetensors"))
        ok &= check(log, list(loaded) == list(source), "%s: keys in file order %s" % (name, list(loaded)))
        ok &= check(log, n % 8 == 0 and meta == {"format": "pt"}, "%s: header %d bytes, metadata %s" % (name, n, meta))
        for key, t in source.items():
            ok &= check(log, same(loaded[key], t.contiguous()), "%s[%s]: %s %s identical" % (name, key, t.dtype,
                                                                                              list(t.shape)))

    # read() goes through DJL: bfloat16 -> float32, int16 -> int32, values unchanged.
    loaded, _, _ = read_safetensors(os.path.join(directory, "dtypes_read.safetensors"))
    widened = {torch.bfloat16: torch.float32, torch.int16: torch.int32}
    for key, t in dtypes.items():
        want = t.to(widened.get(t.dtype, t.dtype))
        ok &= check(log, same(loaded[key], want), "dtypes_read[%s]: %s -> %s equal" % (key, t.dtype, want.dtype))

    # The nested checkpoint's model, converted with --key model --strip-prefix module., into a fresh module.
    fresh = TinyNet()
    state, _, _ = read_safetensors(os.path.join(directory, "nested_model.safetensors"))
    result = fresh.load_state_dict(state, strict=True)
    ok &= check(log, not result.missing_keys and not result.unexpected_keys,
                "nested_model: load_state_dict(strict=True) took keys %s" % list(state))
    x = torch.linspace(-2, 2, 8).reshape(2, 4)
    ok &= check(log, torch.equal(fresh(x), net(x)), "nested_model: forward output identical to the trained net")

    # A DJL block (a position-named SequentialBlock of two Linear) loaded from sequential.pt and exported by exportBlock.
    seq, fresh_seq = sequential(), torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    state, _, _ = read_safetensors(os.path.join(directory, "block.safetensors"))
    result = fresh_seq.load_state_dict(state, strict=True)
    ok &= check(log, not result.missing_keys and not result.unexpected_keys,
                "block: load_state_dict(strict=True) took keys %s" % list(state))
    for key, t in seq.state_dict().items():
        ok &= check(log, same(fresh_seq.state_dict()[key], t), "block[%s]: identical to the PyTorch original" % key)

    log.append("ALL OK" if ok else "SOME CHECKS FAILED")
    with open(os.path.join(HERE, "roundtrip.log"), "w") as f:
        f.write("\n".join(log) + "\n")
    print("\n".join(log))
    return ok


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "generate":
        generate()
    elif len(sys.argv) == 3 and sys.argv[1] == "verify":
        sys.exit(0 if verify(sys.argv[2]) else 1)
    else:
        sys.exit(__doc__)
