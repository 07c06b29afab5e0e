# Float32 attention at the routed block's shapes for n = 65,536 (heavy: 8,192 routed queries over 8,192 keys and the
# null key; light: 512 windows of 128 queries over 384 keys; and the heavy one at n = 16,384), forward+backward:
# libtorch's memory-efficient kernel (what SDPA picks for float32 on the H200) against the same attention composed
# of cuBLAS products and a softmax.
# Run on the GPU machine: python3 cuda-ops/bench/float32_attention.py; the H200's output is
# float32_attention_h200.txt.
import time, torch
from torch.nn.attention import sdpa_kernel, SDPBackend
def t(fn, reps=5):
    for _ in range(2): fn()
    torch.cuda.synchronize(); t0 = time.perf_counter()
    for _ in range(reps): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t0) / reps * 1e3
def case(bq, nq, nk, h=8, d=32):
    q = torch.randn(bq, h, nq, d, device='cuda', requires_grad=True)
    k = torch.randn(bq, h, nk, d, device='cuda', requires_grad=True)
    v = torch.randn(bq, h, nk, d, device='cuda', requires_grad=True)
    g = torch.randn(bq, h, nq, d, device='cuda')
    def eff():
        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
            torch.nn.functional.scaled_dot_product_attention(q, k, v).backward(g)
    def comp():
        s = q.matmul(k.transpose(-1, -2)); s.mul_(d ** -0.5)
        s.softmax(-1).matmul(v).backward(g)
    torch.cuda.reset_peak_memory_stats()
    te = t(eff); me = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    tc = t(comp); mc = torch.cuda.max_memory_allocated() / 2**20
    with torch.no_grad():
        ref = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double()).float()
        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
            e1 = (torch.nn.functional.scaled_dot_product_attention(q, k, v) - ref).abs().max().item()
        s = q.matmul(k.transpose(-1, -2)) * d ** -0.5
        e2 = (s.softmax(-1).matmul(v) - ref).abs().max().item()
    print(f"q ({bq},{h},{nq},{d}) k {nk}: efficient {te:.2f} ms ({me:.0f} MiB, err {e1:.1e}), composed {tc:.2f} ms ({mc:.0f} MiB, err {e2:.1e})")
case(1, 8192, 8193)
case(1, 2048, 2049)
case(512, 128, 384)
