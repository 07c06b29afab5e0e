# Forward+backward time of candidate op sequences on the GPU machine's torch (CUDA), with the autograd nodes each
# leaves: what FusedNorm (libtorch's fused rms_norm against normalize and a multiply) and the choice of gather and
# scatter ops were decided on. Run there: python3 cuda-ops/bench/op_costs.py; the H200's output is op_costs_h200.txt.
import time, torch, torch.nn.functional as F
torch.manual_seed(0)
dev = 'cuda'
print(torch.__version__, hasattr(torch.ops.aten, '_fused_rms_norm'))
def nodes(y):
    seen, st, out = set(), [y.grad_fn], []
    while st:
        n = st.pop()
        if n is None or n in seen: continue
        seen.add(n); out.append(type(n).__name__); st += [f for f, _ in n.next_functions]
    return out
def bench(name, f, params, reps=300):
    y = f(); gy = torch.randn_like(y)
    print(f"{name:28s} nodes {sorted(nodes(y))}")
    for _ in range(20):
        f().backward(gy)
    torch.cuda.synchronize()
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            f().backward(gy)
        torch.cuda.synchronize(); best = min(best, (time.perf_counter() - t) / reps * 1e6)
    tf = time.perf_counter()
    for _ in range(reps): f()
    torch.cuda.synchronize(); fwd = (time.perf_counter() - tf) / reps * 1e6
    print(f"{name:28s} fwd+bwd {best:7.1f} us   fwd only {fwd:7.1f} us")
d = 256
x = torch.randn(16, 512, d, device=dev, requires_grad=True)
g = torch.randn(d, device=dev, requires_grad=True)
sd = d ** 0.5
chain = lambda: F.normalize(x, dim=-1) * (g * sd)
rms = lambda: torch.rms_norm(x, [d], g, 1e-24 / d)
bench('normalize*gamma', chain, [x, g]); bench('rms_norm', rms, [x, g])
print('max |rms - chain|', (rms() - chain()).abs().max().item())
z = torch.zeros(2, d, device=dev); print('zero row', torch.rms_norm(z, [d], g, 1e-24 / d).abs().max().item())
inv = torch.full((d,), 1 / sd, device=dev)
bench('normalize', lambda: F.normalize(x, dim=-1), [x]); bench('rms_norm(w=1/sqrt d)', lambda: torch.rms_norm(x, [d], inv, 1e-24 / d), [x])
lnw = lambda: F.layer_norm(torch.cat([x, -x], -1), [2 * d], eps=0.0)[..., :d] * g
bench('layer_norm trick', lnw, [x, g])
# row gathers: (b, n, d) at (b, k)
b, n, k = 16, 512, 64
idx = torch.stack([torch.randperm(n, device=dev)[:k] for _ in range(b)])
off = (torch.arange(b, device=dev) * n)[:, None]
bench('unsqueeze/expand/gather', lambda: x.gather(1, idx[..., None].expand(b, k, d)), [x])
bench('index_select flat', lambda: x.reshape(b * n, d).index_select(0, (idx + off).reshape(-1)).reshape(b, k, d), [x])
flat = (idx + off).reshape(-1)
bench('index_select flat (pre off)', lambda: x.reshape(b * n, d).index_select(0, flat).reshape(b, k, d), [x])
bar = torch.arange(b, device=dev)[:, None]
bench('advanced index', lambda: x[bar, idx], [x])
bench('embedding flat', lambda: F.embedding(flat, x.reshape(b * n, d)).reshape(b, k, d), [x])
W = torch.randn(3 * d, d, device=dev, requires_grad=True)
bench('matmul x W^T', lambda: x.matmul(W.t()), [x, W]); bench('linear', lambda: F.linear(x, W), [x, W])
y0 = torch.randn(b, k, d, device=dev, requires_grad=True)
bench('scatter back (index_add)', lambda: x.reshape(b*n, d).index_add(0, flat, y0.reshape(b*k, d)).reshape(b, n, d), [x, y0])
bench('scatter_add', lambda: x.scatter_add(1, idx[..., None].expand(b, k, d), y0), [x, y0])
bench('index_put acc', lambda: x.index_put((bar, idx), y0, accumulate=True), [x, y0])
bench('single mul', lambda: x * g, [x, g])
