#!/usr/bin/env python3
"""Golden fixtures for issue 8 (djl-colt5): routed autoregressive / image attention, the routed ViT and the
coordinate-descent-attention family.

Run with Debian's torch:  /usr/bin/python3 gen_fixtures.py | tee fixtures.log   (writes the *.safetensors files
beside this script)

This is a plain-PyTorch re-implementation written from ../../../../../shared/specs/colt5.md (§2, §7), not the
reference packages (they need einops / Triton).  Where the reference is wrong it implements the fix the Java port
makes, and says so:
  * several kv routes gather from their own row and use their own mask (spec §2.5 step 10, §2.9 step 6);
  * the image attention sends every token of a window through the heavy branch when Kq >= window tokens (§2.10);
  * coordinate-descent attention broadcasts a learned kappa per row (b, h, n, 1) (§7.5.2/3);
  * the coordinate-descent feed-forward uses its own eps decay (§7.5.1, the `eslf` NameError).
Every router call checks that the top-k cut has no (near) ties, so the Java selection must be the same set.
Debian's torch is python3-torch 1.13; fixtures.log names the version that made the committed files.

File layout: state_dict entries under their reference names, inputs/outputs under names starting with '@'.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = HERE
while not os.path.isfile(os.path.join(ROOT, 'tools', 'safetensors_file.py')):
    ROOT = os.path.dirname(ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tools'))
from safetensors_file import write_safetensors  # noqa: E402
from coor_descent_ref import coor_descent  # noqa: E402

M = -torch.finfo(torch.float32).max
CUT_GAP = 1e-4
TINY_CUTS = []


def write_fixture_file(name, tensors):
    size = write_safetensors(os.path.join(HERE, name), tensors)
    print(f'{name}: {len(tensors)} tensors, {size} bytes')


CASES = []


def case(fixture_name, module, config, inputs, output, weights_prefix=''):
    """Records how `condjl run` reproduces a fixture: reference class name, kwargs, input renames, output name, and
    the prefix the module's state_dict puts before the fixture's keys."""
    CASES.append({'fixture': fixture_name, 'module': module, 'config': config, 'inputs': inputs, 'output': output,
                  'weights_prefix': weights_prefix})


def fixture(name, module, inputs, outputs):
    tensors = dict(module.state_dict())
    tensors.update({'@' + k: v for k, v in inputs.items()})
    tensors.update({'@' + k: v for k, v in outputs.items()})
    write_fixture_file(name, tensors)


# ---------------------------------------------------------------------------------------------------------------
# coordinate descent (spec §2.2), colt5 0.11.1 semantics

def check_cut(scores, k, mask):
    """Fails unless every row's top-k selection is determined: the k-th and (k+1)-th valid scores differ by a
    log-ratio of at least CUT_GAP (so distinct tiny or subnormal scores are fine, exact ties at 1.0 or 0.0 are not),
    and a row with at most k valid tokens has none at exactly 0 (torch.topk could take a masked 0 instead). Masked
    picks are masked again downstream, so ties among them do not matter. Records each cut between two distinct
    scores below 1e-30 in TINY_CUTS."""
    for row in range(scores.shape[0]):
        vals = scores[row] if mask is None else scores[row][mask[row]]
        top = vals.sort(descending=True).values
        if top.numel() <= k:
            if mask is not None and top.numel() and top[-1] == 0 and not mask[row].all():
                raise AssertionError(f'a valid score of 0 ties with masked ones (k={k}, {top.numel()} valid)')
            continue
        hi, lo = top[k - 1].item(), top[k].item()
        if hi == 0. or (lo > 0. and math.log(hi) - math.log(lo) < CUT_GAP):
            raise AssertionError(f'tie at the top-k cut (k={k}): {hi} vs {lo}')
        if hi < 1e-30:
            TINY_CUTS.append((hi, lo))


def with_salient_tokens(x, routers, positions, strength):
    """x (b, n, d) with strength * (sum of the routers' unit routing tokens) added at the given positions of every
    row: those tokens take the routers' weight, so the top-k cuts fall among the tiny scores of the others."""
    u = sum(r.routing_token.detach().sum(0) / r.routing_token.detach().sum(0).norm() for r in routers)
    x = x.clone()
    x[:, positions] += strength * u
    return x


# ---------------------------------------------------------------------------------------------------------------
# colt5 building blocks (spec §1.12, §2.3–§2.6)

class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.normalize(x, dim=-1) * self.scale * self.gamma


def colt5_feed_forward(dim, mult):
    hidden = int(dim * mult)
    return nn.Sequential(RMSNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


def attend(q, k, v, mask=None):
    sim = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
    if mask is not None:
        sim = sim.masked_fill(~mask, M)
    return sim.softmax(dim=-1) @ v


def split_heads(t, h):
    b, n, _ = t.shape
    return t.reshape(b, n, h, -1).transpose(1, 2)


def merge_heads(t):
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class SelfAttention(nn.Module):
    """Light branch of the image attention: RMSNorm prenorm, full attention."""

    def __init__(self, dim, dim_head, heads):
        super().__init__()
        self.heads = heads
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x):
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        return self.to_out(merge_heads(attend(q, k, v)))


class CausalLocalMHA(nn.Module):
    """LocalMHA(causal=True, look_backward=1, exact_windowsize=False): key j visible to query i iff
    j <= i and window(j) >= window(i) - 1 (spec §2.4a), written as one masked full attention."""

    def __init__(self, dim, dim_head, heads, window):
        super().__init__()
        self.heads, self.window = heads, window
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x):
        n = x.shape[1]
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        i = torch.arange(n)[:, None]
        j = torch.arange(n)[None, :]
        allowed = (j <= i) & (j // self.window >= i // self.window - 1)
        return self.to_out(merge_heads(attend(q, k, v, allowed)))


class RotaryEmbedding(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.register_buffer('inv_freq', 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, n):
        freqs = torch.arange(n).float()[:, None] * self.inv_freq[None, :]
        return torch.cat((freqs, freqs), dim=-1)


def rotate(t, pos):
    t1, t2 = t.chunk(2, dim=-1)
    return t * pos.cos() + torch.cat((-t2, t1), dim=-1) * pos.sin()


class HeavyAttention(nn.Module):
    """Spec §2.3."""

    def __init__(self, dim, dim_head, heads, multiply_keys_by_score=False):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.multiply_keys_by_score = multiply_keys_by_score
        self.norm = RMSNorm(dim)
        self.null_kv = nn.Parameter(torch.randn(2, heads, dim_head))
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x, context, mask=None, scores_kv=None, scores_q=None, rotary=None):
        b, h, dh = x.shape[0], self.heads, self.dim_head
        x = self.norm(x)
        context = self.norm(context)
        if context.ndim == 3:
            context = context[:, None]
        r = context.shape[1]
        hpr = h // r
        q = split_heads(self.to_q(x), h)
        if scores_q is not None:
            q = q * scores_q[:, None, :, None]
        w = self.to_kv.weight.reshape(r, hpr, 2 * dh, -1)
        kv = torch.einsum('rhei,brni->brhne', w, context)
        k, v = kv.chunk(2, dim=-1)
        if scores_kv is not None:
            sk = scores_kv if scores_kv.ndim == 3 else scores_kv[:, None]
            sk = sk[:, :, None, :, None]
            v = v * sk
            if self.multiply_keys_by_score:
                k = k * sk
        if rotary is not None:
            q_pos, k_pos = rotary
            q = rotate(q, q_pos)
            if k_pos.ndim == 4:
                k_pos = k_pos[:, None]
            k = rotate(k, k_pos)
        nk = k.shape[-2]
        k = k.reshape(b, h, nk, dh)
        v = v.reshape(b, h, nk, dh)
        k = torch.cat((self.null_kv[0][None, :, None, :].expand(b, h, 1, dh), k), dim=-2)
        v = torch.cat((self.null_kv[1][None, :, None, :].expand(b, h, 1, dh), v), dim=-2)
        if mask is not None:
            mask = mask.repeat_interleave(hpr, dim=1)[:, :, None, :] if mask.ndim == 3 else mask[:, None, None, :]
            mask = F.pad(mask, (1, 0), value=True)
        return self.to_out(merge_heads(attend(q, k, v, mask)))


class Router(nn.Module):
    """CoordinateDescentRouter (spec §2.5) with the own-row gather fix for several routes."""

    def __init__(self, dim, num_routing_tokens=1, n_iters=20, fetch_k_ratio=9 / 8, eps=0.03, eps_init=4.0,
                 eps_decay=0.7):
        super().__init__()
        self.r = num_routing_tokens
        self.n_iters, self.ratio, self.eps, self.eps_init, self.eps_decay = n_iters, fetch_k_ratio, eps, eps_init, eps_decay
        self.routing_token = nn.Parameter(torch.randn(num_routing_tokens, dim))

    def forward(self, x, num_tokens, mask=None):
        b, n, d = x.shape
        r = self.r
        route_dim = r != 1
        if n <= num_tokens:
            if route_dim:
                x = x[:, None].expand(b, r, n, d)
                mask = None if mask is None else mask[:, None].expand(b, r, n)
            return None, torch.ones((b, r, n) if route_dim else (b, n)), x, mask
        s = torch.einsum('bnd,rd->brn', x, self.routing_token).reshape(b * r, n)
        m = None if mask is None else mask.repeat_interleave(r, dim=0)
        scores = coor_descent(s, n_iters=self.n_iters, k=min(num_tokens * self.ratio, n), eps=self.eps,
                              eps_init=self.eps_init, eps_decay=self.eps_decay, mask=m)
        check_cut(scores, num_tokens, m)
        sel, idx = scores.topk(num_tokens, dim=-1)
        sel = sel + (1. - sel).detach()
        if m is not None:
            sel = sel.masked_fill(~m.gather(-1, idx), 0.)
        if route_dim:
            sel, idx = sel.reshape(b, r, -1), idx.reshape(b, r, -1)
            rows = torch.arange(b)[:, None, None]
        else:
            rows = torch.arange(b)[:, None]
        return idx, sel, x[rows, idx], (None if mask is None else mask[rows, idx])


def scatter_rows(fill, values, idx):
    out = fill.clone()
    out[torch.arange(out.shape[0])[:, None], idx] = values
    return out


class ConditionalRoutedFeedForward(nn.Module):
    def __init__(self, dim, num_heavy_tokens, light_ff_mult=0.5, heavy_ff_mult=4, router_kwargs=None):
        super().__init__()
        self.k = num_heavy_tokens
        self.router = Router(dim, **(router_kwargs or {}))
        self.light_ff = colt5_feed_forward(dim, light_ff_mult)
        self.heavy_ff = colt5_feed_forward(dim, heavy_ff_mult)

    def forward(self, x):
        light = self.light_ff(x)
        idx, sc, xr, _ = self.router(x, self.k)
        hr = self.heavy_ff(xr) * sc[..., None]
        heavy = hr if idx is None else scatter_rows(torch.zeros_like(x), hr, idx)
        return light + heavy


# ---------------------------------------------------------------------------------------------------------------
# ConditionalRoutedImageAttention (spec §2.10, fixed for Kq >= w*w)

class ConditionalRoutedImageAttention(nn.Module):
    def __init__(self, dim, *, num_heavy_tokens_q, num_heavy_tokens_kv, num_routed_kv=1, light_dim_head=64,
                 light_heads=8, light_window_size=128, heavy_dim_head=64, heavy_heads=8, router_kwargs=None,
                 multiply_keys_by_score=False, multiply_queries_by_score=False, channel_first=False):
        super().__init__()
        rk = router_kwargs or {}
        self.kq, self.kkv, self.w = num_heavy_tokens_q, num_heavy_tokens_kv, light_window_size
        self.mult_q, self.channel_first = multiply_queries_by_score, channel_first
        self.light_attn = SelfAttention(dim, light_dim_head, light_heads)
        self.null_q_token = nn.Parameter(torch.randn(dim))
        self.q_router = Router(dim, **rk)
        self.kv_router = Router(dim, num_routed_kv, **rk)
        self.heavy_attn = HeavyAttention(dim, heavy_dim_head, heavy_heads, multiply_keys_by_score)

    def forward(self, x):
        if self.channel_first:
            x = x.permute(0, 2, 3, 1)
        b, hh, ww, d = x.shape
        w = self.w
        xw = x.reshape(b, hh // w, w, ww // w, w, d).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, d)
        light = self.light_attn(xw)
        iq, sq, xq, _ = self.q_router(xw, self.kq)
        _, skv, xkv, mkv = self.kv_router(xw, self.kkv)
        o = self.heavy_attn(xq, xkv, mkv, skv, sq if self.mult_q else None)
        o = o * sq[..., None]
        heavy = o if iq is None else scatter_rows(self.null_q_token.expand_as(xw), o, iq)
        out = (light + heavy).reshape(b, hh // w, ww // w, w, w, d).permute(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, d)
        return out.permute(0, 3, 1, 2) if self.channel_first else out


# ---------------------------------------------------------------------------------------------------------------
# ConditionalRoutedAutoregressiveAttention (spec §2.9, own-row kv gather fix)

class ConditionalRoutedAutoregressiveAttention(nn.Module):
    def __init__(self, dim, *, num_heavy_tokens_q, num_heavy_tokens_kv, num_routed_kv=1, light_dim_head=64,
                 light_heads=8, light_window_size=128, heavy_window_size=None, heavy_dim_head=64, heavy_heads=8,
                 router_kwargs=None, multiply_keys_by_score=False, multiply_queries_by_score=False, rotary_emb=False):
        super().__init__()
        rk = router_kwargs or {}
        self.kq, self.kkv = num_heavy_tokens_q, num_heavy_tokens_kv
        self.w = heavy_window_size or light_window_size
        self.mult_q = multiply_queries_by_score
        self.light_attn = CausalLocalMHA(dim, light_dim_head, light_heads, light_window_size)
        self.null_q_token = nn.Parameter(torch.randn(dim))
        self.q_router = Router(dim, **rk)
        self.kv_router = Router(dim, num_routed_kv, **rk)
        self.heavy_attn = HeavyAttention(dim, heavy_dim_head, heavy_heads, multiply_keys_by_score)
        self.rotary_emb = RotaryEmbedding(heavy_dim_head) if rotary_emb else None

    def forward(self, x):
        b, n, d = x.shape
        w = self.w
        assert n >= w
        light = self.light_attn(x)
        windows = -(-n // w)
        p = windows * w
        if windows == 1:
            return light
        xp = F.pad(x, (0, 0, 0, p - n))
        pos = torch.arange(p)
        q = xp.reshape(b, windows, w, d)[:, 1:].reshape(-1, w, d)
        q_mask = (pos < n).reshape(windows, w)[1:].expand(b, -1, -1).reshape(-1, w)
        kv = xp[:, None].expand(b, windows - 1, p, d).reshape(-1, p, d)
        kv_mask = (pos[None, :] < (torch.arange(1, windows) * w)[:, None]).expand(b, -1, -1).reshape(-1, p)
        iq, sq, xq, _ = self.q_router(q, self.kq, q_mask)
        ikv, skv, xkv, mkv = self.kv_router(kv, self.kkv, kv_mask)
        rotary = None
        if self.rotary_emb is not None:
            rot = self.rotary_emb(p)
            q_pos = rot.reshape(windows, w, -1)[1:].repeat(b, 1, 1)
            if iq is not None:
                q_pos = q_pos.gather(1, iq[..., None].expand(-1, -1, q_pos.shape[-1]))
            k_pos = rot if ikv is None else rot[ikv][..., None, :, :]
            rotary = (q_pos[:, None], k_pos)
        o = self.heavy_attn(xq, xkv, mkv, skv, sq if self.mult_q else None, rotary)
        if iq is not None:
            o = scatter_rows(self.null_q_token.expand_as(q), o * sq[..., None], iq)
        heavy = o.reshape(b, (windows - 1) * w, d)[:, :n - w]
        return light + F.pad(heavy, (0, 0, w, 0))


# ---------------------------------------------------------------------------------------------------------------
# ConditionalRoutedViT (spec §2.12)

def posemb_sincos_2d(h, w, dim, temperature=10000):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    omega = torch.arange(dim // 4) / (dim // 4 - 1)
    omega = 1. / (temperature ** omega)
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1).float().reshape(h, w, dim)


class PatchRearrange(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, img):
        b, c, hh, ww = img.shape
        p = self.p
        x = img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, hh // p, ww // p, p * p * c)


class MeanHW(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2))


class VitTransformer(nn.Module):
    def __init__(self, dim, depth, attn_kwargs, ff_kwargs):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ModuleList([ConditionalRoutedImageAttention(dim, **attn_kwargs), ConditionalRoutedFeedForward(dim, **ff_kwargs)])
            for _ in range(depth)])

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            b, h, w, d = x.shape
            f = x.reshape(b, h * w, d)
            x = (ff(f) + f).reshape(b, h, w, d)
        return x


class ConditionalRoutedViT(nn.Module):
    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, attn_num_heavy_tokens_q,
                 attn_num_heavy_tokens_kv, attn_heavy_dim_head, attn_heavy_heads, attn_light_dim_head,
                 attn_light_heads, attn_light_window_size, ff_num_heavy_tokens, ff_heavy_mult, ff_light_mult,
                 channels=3, attn_num_routed_kv=1, default_coor_descent_eps=1.0):
        super().__init__()
        patch_dim = channels * patch_size * patch_size
        self.to_patch_embedding = nn.Sequential(PatchRearrange(patch_size), nn.LayerNorm(patch_dim),
                                                nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        rk = {'eps': default_coor_descent_eps}
        self.transformer = VitTransformer(dim, depth, dict(
            num_heavy_tokens_q=attn_num_heavy_tokens_q, num_heavy_tokens_kv=attn_num_heavy_tokens_kv,
            num_routed_kv=attn_num_routed_kv, light_dim_head=attn_light_dim_head, light_heads=attn_light_heads,
            light_window_size=attn_light_window_size, heavy_dim_head=attn_heavy_dim_head,
            heavy_heads=attn_heavy_heads, router_kwargs=rk), dict(
            num_heavy_tokens=ff_num_heavy_tokens, light_ff_mult=ff_light_mult, heavy_ff_mult=ff_heavy_mult,
            router_kwargs=rk))
        self.linear_head = nn.Sequential(MeanHW(), nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        x = x + posemb_sincos_2d(x.shape[1], x.shape[2], x.shape[3])
        return self.linear_head(self.transformer(x))


# ---------------------------------------------------------------------------------------------------------------
# coordinate-descent-attention 0.0.11 (spec §7), fixed

class CdFeedForward(nn.Module):
    def __init__(self, dim, mult=4, use_coor_descent=False, coor_descent_iters=20, coor_descent_sparsity_k=None,
                 coor_descent_eps=0.1, coor_descent_eps_init=4.0, coor_descent_eps_decay=0.7):
        super().__init__()
        hidden = int(dim * mult)
        self.use_cd = use_coor_descent
        self.iters, self.eps, self.eps_init, self.eps_decay = coor_descent_iters, coor_descent_eps, coor_descent_eps_init, coor_descent_eps_decay
        self.k = coor_descent_sparsity_k if coor_descent_sparsity_k is not None else hidden // 10
        self.proj_in = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden))
        self.proj_out = nn.Linear(hidden, dim)

    def forward(self, x):
        x = self.proj_in(x)
        if self.use_cd:
            x = coor_descent(x, n_iters=self.iters, k=self.k, eps=self.eps, eps_init=self.eps_init,
                             eps_decay=self.eps_decay)
        else:
            x = F.gelu(x)
        return self.proj_out(x)


class CdAttention(nn.Module):
    def __init__(self, dim, dim_head=64, heads=8, use_coor_descent=False, coor_descent_iters=20,
                 coor_descent_sparsity_k=1, coor_descent_eps=0.1, coor_descent_eps_init=4.0,
                 coor_descent_eps_decay=0.7, attn_null_kv=0, learned_sparsity_k=False):
        super().__init__()
        self.heads = heads
        self.use_cd = use_coor_descent
        self.iters, self.k = coor_descent_iters, coor_descent_sparsity_k
        self.eps, self.eps_init, self.eps_decay = coor_descent_eps, coor_descent_eps_init, coor_descent_eps_decay
        self.to_learned_k = None
        if learned_sparsity_k:
            self.to_learned_k = nn.Linear(dim, heads)
            nn.init.constant_(self.to_learned_k.bias, -10)
        self.norm = nn.LayerNorm(dim)
        self.null_kv = nn.Parameter(torch.randn(2, heads, attn_null_kv, dim_head))
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x):
        b = x.shape[0]
        x = self.norm(x)
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        if self.null_kv.numel() > 0:
            k = torch.cat((self.null_kv[0].expand(b, -1, -1, -1), k), dim=-2)
            v = torch.cat((self.null_kv[1].expand(b, -1, -1, -1), v), dim=-2)
        sim = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
        i, j = sim.shape[-2:]
        causal = torch.ones((i, j), dtype=torch.bool).triu(j - i + 1)
        if self.use_cd:
            if self.to_learned_k is not None:
                kappa = (self.to_learned_k(x).sigmoid() * (self.k - 1) + 1).transpose(1, 2)  # (b, h, n): per row
            else:
                kappa = self.k
            attn = coor_descent(sim, n_iters=self.iters, k=kappa, eps=self.eps, eps_init=self.eps_init,
                                eps_decay=self.eps_decay, mask=~causal.expand_as(sim))
        else:
            attn = sim.masked_fill(causal, M).softmax(dim=-1)
        return self.to_out(merge_heads(attn @ v))


class CdTransformer(nn.Module):
    def __init__(self, *, num_tokens, dim, seq_len, depth, dim_head=64, heads=8, ff_mult=4,
                 attn_use_coor_descent=False, ff_use_coor_descent=False, attn_coor_descent_sparsity_k=2,
                 ff_coor_descent_sparsity_k=2, coor_descent_iters=15, coor_descent_eps=0.1, attn_null_kv=0,
                 learned_sparsity_k=False):
        super().__init__()
        self.seq_len = seq_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(seq_len, dim)
        cd = dict(coor_descent_iters=coor_descent_iters, coor_descent_eps=coor_descent_eps)
        self.layers = nn.ModuleList([nn.ModuleList([
            CdAttention(dim, dim_head, heads, attn_use_coor_descent, coor_descent_sparsity_k=attn_coor_descent_sparsity_k,
                        attn_null_kv=attn_null_kv, learned_sparsity_k=learned_sparsity_k, **cd),
            CdFeedForward(dim, ff_mult, ff_use_coor_descent, coor_descent_sparsity_k=ff_coor_descent_sparsity_k, **cd)])
            for _ in range(depth)])
        self.to_logits = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_tokens))

    def forward(self, ids):
        x = self.token_emb(ids) + self.pos_emb(torch.arange(ids.shape[-1]))
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.to_logits(x)


def ar_loss(net, ids):
    logits = net(ids[:, :-1])
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])


@torch.no_grad()
def generate(net, prompt, seq_len, temperature=1.0, filter_thres=0.9):
    out = prompt
    for _ in range(seq_len):
        logits = net(out[:, -net.seq_len:])[:, -1]
        keep = int((1 - filter_thres) * logits.shape[-1])
        top = logits.topk(2)
        assert (top.values[:, 0] - top.values[:, 1]).min() > 1e-3, 'near tie between the two best logits'
        val, ind = logits.topk(keep)
        filtered = torch.full_like(logits, M).scatter(1, ind, val)
        out = torch.cat((out, torch.multinomial((filtered / temperature).softmax(dim=-1), 1)), dim=-1)
    return out[:, prompt.shape[1]:]


# ---------------------------------------------------------------------------------------------------------------

def randomize(module, scale=0.5):
    """Non-default values everywhere, so a parameter the Java side ignores shows up as a difference."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim > 1 and p.numel():
                p.copy_(torch.randn_like(p) * scale)
            elif p.ndim == 1:
                owner = module.get_submodule(name.rsplit('.', 1)[0]) if '.' in name else module
                is_gain = name.endswith('gamma') or (isinstance(owner, nn.LayerNorm) and name.endswith('weight'))
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if is_gain else 0.0))


def main():
    print(f'torch {torch.__version__}')
    torch.manual_seed(8)

    # --- coordinate-descent attention, softmax mode with 2 null kv
    m = CdAttention(16, dim_head=8, heads=2, attn_null_kv=2)
    randomize(m)
    x = torch.randn(2, 7, 16)
    fixture('cd_attention_softmax.safetensors', m, {'x': x}, {'y': m(x)})

    # --- coordinate descent mode, fixed kappa, zero-element null_kv
    m = CdAttention(16, dim_head=8, heads=2, use_coor_descent=True, coor_descent_iters=15, coor_descent_sparsity_k=2)
    randomize(m)
    x = torch.randn(2, 7, 16)
    fixture('cd_attention_cd.safetensors', m, {'x': x}, {'y': m(x)})
    case('cd_attention_cd.safetensors', 'coordinate_descent_attention.Attention', dict(
        dim=16, dim_head=8, heads=2, use_coor_descent=True, coor_descent_iters=15, coor_descent_sparsity_k=2),
        {'x': 'x'}, 'y')

    # --- learned kappa per row (b*h > 1, reference bug 7.5.3), one null kv
    m = CdAttention(16, dim_head=8, heads=2, use_coor_descent=True, coor_descent_iters=15, coor_descent_sparsity_k=3,
                    attn_null_kv=1, learned_sparsity_k=True)
    randomize(m)
    with torch.no_grad():
        m.to_learned_k.bias.copy_(torch.tensor([-0.5, 0.7]))
    x = torch.randn(2, 7, 16)
    fixture('cd_attention_learned_k.safetensors', m, {'x': x}, {'y': m(x)})
    case('cd_attention_learned_k.safetensors', 'coordinate_descent_attention.Attention', dict(
        dim=16, dim_head=8, heads=2, use_coor_descent=True, coor_descent_iters=15, coor_descent_sparsity_k=3,
        attn_null_kv=1, learned_sparsity_k=True), {'x': 'x'}, 'y')

    # --- coordinate-descent feed-forward (reference NameError fixed); default k = hidden // 10 = 6
    m = CdFeedForward(16, mult=4, use_coor_descent=True, coor_descent_iters=15)
    randomize(m)
    x = torch.randn(2, 5, 16)
    fixture('cd_feedforward.safetensors', m, {'x': x}, {'y': m(x)})
    case('cd_feedforward.safetensors', 'coordinate_descent_attention.FeedForward', dict(
        dim=16, mult=4, use_coor_descent=True, coor_descent_iters=15), {'x': 'x'}, 'y')

    # --- transformer with everything on, logits, autoregressive loss and two gradients
    m = CdTransformer(num_tokens=20, dim=16, seq_len=12, depth=2, dim_head=8, heads=2, attn_use_coor_descent=True,
                      ff_use_coor_descent=True, attn_coor_descent_sparsity_k=2, ff_coor_descent_sparsity_k=4,
                      attn_null_kv=1, learned_sparsity_k=True)
    randomize(m)
    ids = torch.randint(0, 20, (2, 11))
    logits = m(ids[:, :-1])
    loss = ar_loss(m, ids)
    loss.backward()
    cd_config = dict(num_tokens=20, dim=16, seq_len=12, depth=2, dim_head=8, heads=2, attn_use_coor_descent=True,
                     ff_use_coor_descent=True, attn_coor_descent_sparsity_k=2, ff_coor_descent_sparsity_k=4,
                     attn_null_kv=1, learned_sparsity_k=True)
    case('cd_transformer.safetensors', 'coordinate_descent_attention.AutoregressiveWrapper', {'net': cd_config},
         {'ids': 'x'}, 'loss', weights_prefix='net.')
    fixture('cd_transformer.safetensors', m, {'ids': ids}, {
        'logits': logits, 'loss': loss.reshape(1),
        'grad.layers.0.0.to_learned_k.weight': m.layers[0][0].to_learned_k.weight.grad,
        'grad.layers.1.0.to_qkv.weight': m.layers[1][0].to_qkv.weight.grad,
        'grad.token_emb.weight': m.token_emb.weight.grad})

    # --- greedy generation (filter keeps int(0.05 * 20) = 1 logit), window slides past seq_len = 8
    m = CdTransformer(num_tokens=20, dim=16, seq_len=8, depth=1, dim_head=8, heads=2, attn_null_kv=1)
    randomize(m, scale=1.0)
    prompt = torch.randint(0, 20, (2, 3))
    fixture('cd_generate_greedy.safetensors', m, {'prompt': prompt},
            {'tokens': generate(m, prompt, 7, temperature=0.7, filter_thres=0.95)})

    # --- image attention, channel-last, 2 kv routes, routed per 4x4 window (16 tokens)
    m = ConditionalRoutedImageAttention(16, num_heavy_tokens_q=6, num_heavy_tokens_kv=10, num_routed_kv=2,
                                        light_dim_head=8, light_heads=2, light_window_size=4, heavy_dim_head=8,
                                        heavy_heads=4, router_kwargs={'eps': 0.3})
    randomize(m)
    x = torch.randn(2, 8, 8, 16)
    fixture('image_attention.safetensors', m, {'x': x}, {'y': m(x)})
    case('image_attention.safetensors', 'ConditionalRoutedImageAttention', dict(
        dim=16, num_heavy_tokens_q=6, num_heavy_tokens_kv=10, num_routed_kv=2, light_dim_head=8, light_heads=2,
        light_window_size=4, heavy_dim_head=8, heavy_heads=4, router_kwargs={'eps': 0.3}), {'x': 'x'}, 'y')

    # --- channel-first, Kq >= window tokens (reference crashes; every token goes through the heavy branch)
    m = ConditionalRoutedImageAttention(16, num_heavy_tokens_q=4, num_heavy_tokens_kv=3, light_dim_head=8,
                                        light_heads=2, light_window_size=2, heavy_dim_head=8, heavy_heads=2,
                                        multiply_queries_by_score=True, channel_first=True,
                                        router_kwargs={'eps': 0.3})
    randomize(m)
    x = torch.randn(2, 16, 4, 6)
    fixture('image_attention_all_heavy.safetensors', m, {'x': x}, {'y': m(x)})

    # --- routed ViT, depth 2
    m = ConditionalRoutedViT(image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, attn_num_heavy_tokens_q=2,
                             attn_num_heavy_tokens_kv=3, attn_heavy_dim_head=8, attn_heavy_heads=2,
                             attn_light_dim_head=8, attn_light_heads=2, attn_light_window_size=2,
                             ff_num_heavy_tokens=10, ff_heavy_mult=2, ff_light_mult=0.5)
    randomize(m)
    with torch.no_grad():  # small similarities keep eps = 1 coordinate descent clear of saturation (ties at 1.0)
        for name, p in m.named_parameters():
            if name.endswith('routing_token'):
                p.mul_(0.1)
    img = torch.randn(2, 3, 16, 16)
    fixture('vit.safetensors', m, {'img': img}, {'logits': m(img)})
    case('vit.safetensors', 'ConditionalRoutedViT', dict(
        image_size=16, patch_size=4, num_classes=5, dim=16, depth=2, attn_num_heavy_tokens_q=2,
        attn_num_heavy_tokens_kv=3, attn_heavy_dim_head=8, attn_heavy_heads=2, attn_light_dim_head=8,
        attn_light_heads=2, attn_light_window_size=2, ff_num_heavy_tokens=10, ff_heavy_mult=2, ff_light_mult=0.5),
        {'img': 'img'}, 'logits')

    # --- autoregressive attention: 2 kv routes, rotary, n = 14 not a multiple of the window 4
    m = ConditionalRoutedAutoregressiveAttention(16, num_heavy_tokens_q=2, num_heavy_tokens_kv=5, num_routed_kv=2,
                                                 light_dim_head=8, light_heads=2, light_window_size=4,
                                                 heavy_dim_head=8, heavy_heads=4, rotary_emb=True,
                                                 router_kwargs={'eps': 0.3})
    randomize(m)
    x = torch.randn(2, 14, 16)
    fixture('ar_attention.safetensors', m, {'x': x}, {'y': m(x)})
    case('ar_attention.safetensors', 'ConditionalRoutedAutoregressiveAttention', dict(
        dim=16, num_heavy_tokens_q=2, num_heavy_tokens_kv=5, num_routed_kv=2, light_dim_head=8, light_heads=2,
        light_window_size=4, heavy_dim_head=8, heavy_heads=4, rotary_emb=True, router_kwargs={'eps': 0.3}),
        {'x': 'x'}, 'y')

    # --- autoregressive attention, nothing routed (Kq >= heavy window, Kkv >= padded length), light window 3
    m = ConditionalRoutedAutoregressiveAttention(16, num_heavy_tokens_q=4, num_heavy_tokens_kv=16, light_dim_head=8,
                                                 light_heads=2, light_window_size=3, heavy_window_size=4,
                                                 heavy_dim_head=8, heavy_heads=2, multiply_keys_by_score=True,
                                                 rotary_emb=True)
    randomize(m)
    x = torch.randn(1, 13, 16)
    fixture('ar_attention_unrouted.safetensors', m, {'x': x}, {'y': m(x)})

    # --- routing exactness (issue 14): top-k cuts among tiny scores, router defaults (eps 4 -> 0.03). Seeds and
    # scales were searched for cuts below 1e-30; a clamped exp (e^-87 = 1.6e-38) would tie those below 1.6e-38.
    # Four images, 2 of 16 queries and 3 of 16 keys/values routed per 4x4 window.
    torch.manual_seed(14)
    m = ConditionalRoutedImageAttention(16, num_heavy_tokens_q=2, num_heavy_tokens_kv=3, light_dim_head=8,
                                        light_heads=2, light_window_size=4, heavy_dim_head=8, heavy_heads=2)
    randomize(m)
    x = torch.randn(3, 8, 8, 16) * 2
    tiny_cut_fixture('image_attention_few_queries.safetensors', m, x, 1e-30)
    case('image_attention_few_queries.safetensors', 'ConditionalRoutedImageAttention', dict(
        dim=16, num_heavy_tokens_q=2, num_heavy_tokens_kv=3, light_dim_head=8, light_heads=2, light_window_size=4,
        heavy_dim_head=8, heavy_heads=2), {'x': 'x'}, 'y')

    # Autoregressive, windows of 4: query window m routes 3 keys among the 4m valid ones of 16 (the rest masked).
    torch.manual_seed(93)
    m = ConditionalRoutedAutoregressiveAttention(16, num_heavy_tokens_q=2, num_heavy_tokens_kv=3, light_dim_head=8,
                                                 light_heads=2, light_window_size=4, heavy_dim_head=8,
                                                 heavy_heads=2, rotary_emb=True)
    randomize(m)
    x = torch.randn(2, 14, 16) * 3
    tiny_cut_fixture('ar_attention_few_valid_keys.safetensors', m, x, 1.6e-38)
    case('ar_attention_few_valid_keys.safetensors', 'ConditionalRoutedAutoregressiveAttention', dict(
        dim=16, num_heavy_tokens_q=2, num_heavy_tokens_kv=3, light_dim_head=8, light_heads=2, light_window_size=4,
        heavy_dim_head=8, heavy_heads=2, rotary_emb=True), {'x': 'x'}, 'y')


def tiny_cut_fixture(name, module, x, below):
    """Writes the fixture after checking that some router cut falls between two distinct scores under `below`."""
    TINY_CUTS.clear()
    y = module(x)
    assert any(hi < below for hi, _ in TINY_CUTS), f'{name}: no top-k cut below {below}: {TINY_CUTS}'
    print(f'{name}: cuts between tiny scores (k-th, (k+1)-th): {TINY_CUTS}')
    fixture(name, module, {'x': x}, {'y': y})


if __name__ == '__main__':
    main()
    with open(os.path.join(HERE, 'cases.json'), 'w') as f:
        json.dump(CASES, f, indent=1)
        f.write('\n')
