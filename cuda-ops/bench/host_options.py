# Two host-side switches on the GPU machine's eager PyTorch: the host time per cuBLAS call with cuBLAS and with
# cuBLASLt as the preferred BLAS library, and the host time of 16 linear layers' forward+backward with the gradients
# zeroed in place against set to None (PyTorch's set_to_none), plus whether the libtorch symbols a native switch would
# bind exist. Run there: python3 cuda-ops/bench/host_options.py; the H200's output is host_options_h200.txt.
import os, time, torch
def host_us(fn, reps=400):
    for _ in range(20): fn()
    torch.cuda.synchronize(); t0 = time.perf_counter()
    for _ in range(reps): fn()
    t = (time.perf_counter() - t0) / reps * 1e6; torch.cuda.synchronize(); return t
a = torch.randn(4096, 256, device='cuda'); w = torch.randn(768, 256, device='cuda'); b = torch.randn(768, device='cuda')
for lib in ('cublas', 'cublaslt'):
    torch.backends.cuda.preferred_blas_library(lib)
    print(lib, 'mm', round(host_us(lambda: a.mm(w.t())), 1), 'addmm', round(host_us(lambda: torch.addmm(b, a, w.t())), 1),
          'linear3d', round(host_us(lambda: torch.nn.functional.linear(a.view(1, 4096, 256), w, b)), 1),
          'add', round(host_us(lambda: a.add(a)), 1))
torch.backends.cuda.preferred_blas_library('cublas')
# a stack of linear layers: backward with grads zeroed in place vs set to None
layers = [torch.nn.Linear(256, 256).cuda() for _ in range(16)]
x = torch.randn(1, 512, 256, device='cuda')
def step(none):
    h = x
    for l in layers: h = l(h)
    h.sum().backward()
    for l in layers:
        for p in l.parameters():
            if none: p.grad = None
            else: p.grad.zero_()
for none in (False, True, False, True):
    print('grads', 'None' if none else 'zeroed', round(host_us(lambda: step(none), 100), 1), 'us per step')
import ctypes, glob
d = os.path.dirname(torch.__file__) + '/lib/'
for lib, sym in (('libc10.so', '_ZN3c1010TensorImpl12mutable_gradEv'), ('libc10.so', '_ZN3c1019UndefinedTensorImpl10_singletonE'),
                 ('libtorch_cpu.so', '_ZN2at7Context23setBlasPreferredBackendENS_11BlasBackendE')):
    try: getattr(ctypes.CDLL(d + lib), sym); print(lib, sym, 'present')
    except AttributeError: print(lib, sym, 'ABSENT')
