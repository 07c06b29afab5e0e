# The host's floor for eager PyTorch on the GPU machine: host time per call (the loop's time before the final
# synchronisation) of an elementwise op, matrix products and a linear layer, and the time of one op's and one linear
# layer's forward+backward, the routed block's unit costs. Run there: python3 cuda-ops/bench/host_floor.py; the H200's
# output is host_floor_h200.txt.
import time
import torch
import torch.nn.functional as F

dev = torch.device('cuda')
torch.manual_seed(0)
x = torch.randn(1, 4096, 256, device=dev, requires_grad=True)
w = torch.randn(768, 256, device=dev, requires_grad=True)
b = torch.randn(768, device=dev, requires_grad=True)
x2 = torch.randn(4096, 256, device=dev)
e = torch.randn(4096, 256, device=dev)
upstream = torch.randn(1, 4096, 768, device=dev)


def timed(name, f, reps=1000):
    for _ in range(50):
        f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    print(f"{name:34s} host {1e6 * (t1 - t0) / reps:7.1f} us/call, to the synchronisation {1e6 * (t2 - t0) / reps:7.1f}")


def linear_step():
    F.linear(x, w, b).backward(upstream)


def mul_step():
    y = x * 2.0
    y.backward(torch.ones_like(y))


print(torch.__version__, torch.cuda.get_device_name())
with torch.no_grad():
    timed("add (4096, 256)", lambda: x2 + e)
    timed("mm (4096, 256) x (256, 768)", lambda: torch.mm(x2, w.t()))
    timed("addmm, same", lambda: torch.addmm(b, x2, w.t()))
    timed("linear (1, 4096, 256) -> 768", lambda: F.linear(x, w, b))
timed("linear forward+backward", linear_step, 300)
timed("mul forward+backward", mul_step, 300)
