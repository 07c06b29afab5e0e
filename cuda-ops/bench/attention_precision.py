# What 16-bit attention buys on the GPU machine, in eager PyTorch: forward+backward of one scaled-dot-product
# attention in float32 and from float16 / bfloat16 copies of q, k, v (the result converted back to float32), at the
# routed block's shapes for n = 65,536 (heavy: 8,192 routed queries over 8,193 keys; light: 512 windows of 128
# queries over 384 look-around keys) and a short heavy one. Median of 10 after 3 warm-ups, each ended by a device
# synchronisation. Run there: python3 cuda-ops/bench/attention_precision.py; the H200's output is
# attention_precision_h200.txt.
import time
import torch
import torch.nn.functional as F

SHAPES = {  # name: (batch, heads, queries, keys, head width)
    "heavy n=65536": (1, 8, 8192, 8193, 32),
    "heavy n=8192": (1, 8, 1024, 1025, 32),
    "light n=65536": (512, 8, 128, 384, 32),
}


def median_ms(step, reps=10):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[reps // 2] * 1e3


for name, (b, h, i, j, d) in SHAPES.items():
    q = torch.randn(b, h, i, d, device="cuda", requires_grad=True)
    k = torch.randn(b, h, j, d, device="cuda", requires_grad=True)
    v = torch.randn(b, h, j, d, device="cuda", requires_grad=True)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        def step():
            out = F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype)).float()
            out.sum().backward()
        print(f"{name:14s} {str(dtype):15s} {median_ms(step):7.3f} ms")
