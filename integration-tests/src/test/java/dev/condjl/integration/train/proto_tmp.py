import torch, torch.nn as nn, torch.nn.functional as F, time, math, sys, argparse
p = argparse.ArgumentParser()
p.add_argument('--n', type=int, default=512); p.add_argument('--pairs', type=int, default=2)
p.add_argument('--keys', type=int, default=16); p.add_argument('--vals', type=int, default=16); p.add_argument('--noise', type=int, default=16)
p.add_argument('--dim', type=int, default=64); p.add_argument('--depth', type=int, default=2)
p.add_argument('--kq', type=int, default=32); p.add_argument('--kkv', type=int, default=32); p.add_argument('--kff', type=int, default=32)
p.add_argument('--win', type=int, default=32); p.add_argument('--heads', type=int, default=2); p.add_argument('--dh', type=int, default=32)
p.add_argument('--batch', type=int, default=16); p.add_argument('--steps', type=int, default=600); p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--pos', type=int, default=1); p.add_argument('--threads', type=int, default=1); p.add_argument('--cos', type=int, default=0)
p.add_argument('--budget', type=float, default=1e9)
p.add_argument('--every', type=int, default=50); p.add_argument('--eps', type=float, default=0.03); p.add_argument('--noisevocab', type=int, default=0); p.add_argument('--seed', type=int, default=0); p.add_argument('--tag', default='')
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
M = -torch.finfo(torch.float32).max
def coor_descent(s, n_iters, k, eps=None, eps_init=4., eps_decay=0.7):
    eps = a.eps if eps is None else eps
    logk = math.log(max(k, 1e-20)); a_ = 0; b = -s; e = max(eps_init, eps)
    for _ in range(n_iters):
        z = (s + b) / e
        a_ = e * (logk - torch.logsumexp(z, -1, keepdim=True))
        b = -F.relu(s + a_)
        e = max(e * eps_decay, eps)
    return torch.exp((s + a_ + b) / e)
class Router(nn.Module):
    def __init__(s, d): super().__init__(); s.routing_token = nn.Parameter(torch.randn(d))
    def forward(s, x, K):
        b, n, d = x.shape
        if n <= K: return None, torch.ones(b, n, device=x.device), x
        u = s.routing_token
        if a.cos: sim = 8 * F.normalize(x, dim=-1) @ F.normalize(u, dim=-1)
        else: sim = x @ u
        sc = coor_descent(sim, 20, min(K * 9 / 8, n))
        v, i = sc.topk(K, -1)
        v = v + (1 - v).detach()
        return i, v, x.gather(1, i[..., None].expand(-1, -1, d))
class RMSNorm(nn.Module):
    def __init__(s, d): super().__init__(); s.g = nn.Parameter(torch.ones(d)); s.scale = d ** 0.5
    def forward(s, x): return F.normalize(x, dim=-1) * s.scale * s.g
def FF(d, mult): return nn.Sequential(RMSNorm(d), nn.Linear(d, int(d * mult)), nn.GELU(), nn.Linear(int(d * mult), d))
class Local(nn.Module):
    def __init__(s, d, h, dh, w):
        super().__init__(); s.norm = nn.LayerNorm(d); s.qkv = nn.Linear(d, 3 * h * dh, bias=False); s.out = nn.Linear(h * dh, d, bias=False); s.h = h; s.w = w // 2
    def forward(s, x):
        b, n, d = x.shape; x = s.norm(x)
        q, k, v = s.qkv(x).chunk(3, -1)
        q, k, v = [t.view(b, n, s.h, -1).transpose(1, 2) for t in (q, k, v)]
        sim = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        i = torch.arange(n, device=x.device); band = (i[:, None] - i[None, :]).abs() <= s.w
        sim = sim.masked_fill(~band, M)
        o = sim.softmax(-1) @ v
        return s.out(o.transpose(1, 2).reshape(b, n, -1))
class Heavy(nn.Module):
    def __init__(s, d, h, dh):
        super().__init__(); s.norm = RMSNorm(d); s.null_kv = nn.Parameter(torch.randn(2, h, dh)); s.to_q = nn.Linear(d, h * dh, bias=False)
        s.to_kv = nn.Linear(d, 2 * h * dh, bias=False); s.to_out = nn.Linear(h * dh, d, bias=False); s.h = h
    def forward(s, x, ctx, skv):
        b = x.shape[0]; x = s.norm(x); ctx = s.norm(ctx)
        q = s.to_q(x).view(b, x.shape[1], s.h, -1).transpose(1, 2)
        k, v = s.to_kv(ctx).chunk(2, -1)
        k, v = [t.view(b, ctx.shape[1], s.h, -1).transpose(1, 2) for t in (k, v)]
        v = v * skv[:, None, :, None]
        nk, nv = s.null_kv[0][None, :, None].expand(b, -1, -1, -1), s.null_kv[1][None, :, None].expand(b, -1, -1, -1)
        k = torch.cat([nk, k], 2); v = torch.cat([nv, v], 2)
        o = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1) @ v
        return s.to_out(o.transpose(1, 2).reshape(b, x.shape[1], -1))
class Block(nn.Module):
    def __init__(s, d):
        super().__init__(); s.light = Local(d, a.heads, a.dh, a.win); s.qr = Router(d); s.kvr = Router(d); s.heavy = Heavy(d, a.heads, a.dh)
        s.null_q = nn.Parameter(torch.randn(d)); s.lff = FF(d, 0.5); s.hff = FF(d, 4); s.ffr = Router(d)
    def forward(s, x, rec):
        b, n, d = x.shape
        light = s.light(x)
        iq, sq, xq = s.qr(x, a.kq); ikv, skv, xkv = s.kvr(x, a.kkv)
        o = s.heavy(xq, xkv, skv) * sq[..., None]
        heavy = s.null_q.expand(b, n, d).scatter(1, iq[..., None].expand(-1, -1, d), o)
        x = x + light + heavy
        i, sc, xr = s.ffr(x, a.kff)
        hr = s.hff(xr) * sc[..., None]
        x = x + s.lff(x) + torch.zeros_like(x).scatter(1, i[..., None].expand(-1, -1, d), hr)
        rec.append((iq, ikv, i)); return x
V = a.noise + a.keys + a.vals
class Model(nn.Module):
    def __init__(s, d):
        super().__init__(); s.emb = nn.Embedding(V, d); s.pos = nn.Parameter(torch.randn(a.n, d) * 0.02)
        s.blocks = nn.ModuleList([Block(d) for _ in range(a.depth)]); s.norm = nn.LayerNorm(d); s.head = nn.Linear(d, a.vals)
    def forward(s, t, rec):
        x = s.emb(t) + (s.pos if a.pos else 0)
        for blk in s.blocks: x = blk(x, rec)
        return s.head(s.norm(x[:, -1]))
def batch(bs, g):
    n = a.n; t = torch.randint(0, a.noise, (bs, n), generator=g); y = torch.zeros(bs, dtype=torch.long); imp = []
    for r in range(bs):
        ks = torch.randperm(a.keys, generator=g)[:a.pairs]; vs = torch.randint(0, a.vals, (a.pairs,), generator=g)
        # pair slots: disjoint positions in [0, n - win - 2)
        slots = torch.randperm((n - a.win - 2) // 2, generator=g)[:a.pairs] * 2
        for j in range(a.pairs):
            t[r, slots[j]] = a.noise + ks[j]; t[r, slots[j] + 1] = a.noise + a.keys + vs[j]
        q = torch.randint(0, a.pairs, (1,), generator=g).item()
        t[r, n - 1] = a.noise + ks[q]; y[r] = vs[q]; imp.append((slots[q].item(), n - 1))
    return t, y, imp
m = Model(a.dim).to(dev); opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=0.01)
gv = torch.Generator().manual_seed(123); val = batch(256, gv); val = (val[0].to(dev), val[1].to(dev), val[2])
g = torch.Generator().manual_seed(1)
t0 = time.time(); sm = None
def evaluate():
    m.eval(); rec = []
    with torch.no_grad(): out = m(val[0], rec)
    acc = (out.argmax(-1) == val[1]).float().mean().item()
    # hit: last pos routed as query in some layer, key pos routed as kv
    hitq = sum(((iq == a.n - 1).any(-1)).float().mean().item() for iq, _, _ in rec) / len(rec)
    slots = torch.tensor([s for s, _ in val[2]], device=dev)
    hitkv = sum(((ikv == slots[:, None]) | (ikv == slots[:, None] + 1)).any(-1).float().mean().item() for _, ikv, _ in rec) / len(rec)
    m.train(); return acc, hitq, hitkv
for step in range(a.steps):
    lr = a.lr * min(1, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / a.steps))
    for gr in opt.param_groups: gr['lr'] = lr
    t, y, _ = batch(a.batch, g); t, y = t.to(dev), y.to(dev)
    loss = F.cross_entropy(m(t, []), y)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    sm = loss.item() if sm is None else 0.95 * sm + 0.05 * loss.item()
    if step % a.every == 0 or step == a.steps - 1:
        acc, hq, hkv = evaluate()
        print(f"{a.tag} step {step} loss {sm:.3f} acc {acc:.3f} hitq {hq:.2f} hitkv {hkv:.2f} t {time.time()-t0:.0f}s", flush=True)
    if time.time() - t0 > a.budget: break
