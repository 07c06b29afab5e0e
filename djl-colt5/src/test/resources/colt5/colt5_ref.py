"""A plain-PyTorch re-implementation of CoLT5-attention 0.11.1 (and LocalMHA), written from
shared/specs/colt5.md (sections 1, 2.1-2.8, 2.13, 3), used to make the parity fixtures of djl-colt5.

Module and parameter names reproduce the reference's state_dict keys.  Every reference bug that the Java
port fixes is switchable through the module-level flag REFERENCE_BUGS (see set_reference_bugs):

* router with several routes gathers tokens and mask of output row i from input row i // R (spec 2.5 step 10);
* route_block_size with >= 2 blocks gathers from the folded x, which raises IndexError (spec 2.5 step 2);
* the non-causal light attention does not mask its zero-padded keys when no mask is given (spec 2.4);
* ConditionalRoutedCrossAttention.forward raises NameError (spec 2.8).

With REFERENCE_BUGS False, the module computes what condjl computes (the intended semantics).
Every router call appends its top-k "gap at the cut" to TIE_LOG, so the fixture script can tell which cases
select among (near-)ties.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

_ROOT = os.path.dirname(os.path.abspath(__file__))
while not os.path.isfile(os.path.join(_ROOT, 'tools', 'coor_descent_ref.py')):
    _ROOT = os.path.dirname(_ROOT)
sys.path.insert(0, os.path.join(_ROOT, 'tools'))
from coor_descent_ref import coor_descent  # noqa: E402,F401

MASK_VALUE = -torch.finfo(torch.float32).max
REFERENCE_BUGS = False
TIE_LOG = []
CUT_SCORES = []


def set_reference_bugs(on):
    global REFERENCE_BUGS
    REFERENCE_BUGS = on


# ----------------------------------------------------------------------------------------------- helpers

def l2norm(t):
    return F.normalize(t, dim=-1)


def pad_seq_to_multiple(t, multiple, dim, value=0.):
    n = t.shape[dim]
    padded = math.ceil(n / multiple) * multiple
    if padded == n:
        return t
    pad = [0, 0] * (t.ndim - 1 - (dim % t.ndim)) + [0, padded - n]
    return F.pad(t, pad, value=value)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(pos, t):
    return t * pos.cos() + rotate_half(t) * pos.sin()


def batched_gather(x, indices):
    """x (B, n, ...), indices (B, ...) -> x[b, indices[b, ...]]."""
    b = indices.shape[0]
    batch_range = torch.arange(b).reshape(b, *((1,) * (indices.ndim - 1)))
    return x[batch_range, indices]


def cut_gap(scores, mask, k):
    """Smallest log-ratio between the k-th and (k+1)-th largest score of a row, over rows and valid entries only
    (a row with at most k valid entries selects every valid one and has no cut, unless one of them is exactly 0.0
    and so tied with the masked entries).  0 means a tie, e.g. two entries saturated at exactly 1.0 or underflowed
    to exactly 0.0.  Every k-th valid score goes to CUT_SCORES."""
    gap = math.inf
    for row in range(scores.shape[0]):
        vals = scores[row] if mask is None else scores[row][mask[row]]
        if vals.numel() <= k:
            if mask is not None and vals.numel() and vals.min() == 0. and not mask[row].all():
                gap = 0.
            continue
        top = vals.sort(descending=True).values
        hi, lo = top[k - 1].item(), top[k].item()
        CUT_SCORES.append(hi)
        if hi == 0.:
            gap = 0.
        elif lo > 0.:
            gap = min(gap, math.log(hi) - math.log(lo))
    return gap


# ----------------------------------------------------------------------------------------------- building blocks

class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return l2norm(x) * self.scale * self.gamma


def FeedForward(dim, mult=4):
    hidden = int(dim * mult)
    return nn.Sequential(RMSNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


def attend(q, k, v, mask=None):
    """q (..., i, d), k/v (..., j, d), mask broadcastable to (..., i, j), True = keep."""
    sim = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
    if mask is not None:
        sim = sim.masked_fill(~mask, MASK_VALUE)
    return sim.softmax(dim=-1) @ v


class SelfAttention(nn.Module):
    def __init__(self, dim, dim_head=64, heads=8, prenorm=False):
        super().__init__()
        self.heads = heads
        hidden = dim_head * heads
        self.norm = RMSNorm(dim) if prenorm else nn.Identity()
        self.to_qkv = nn.Linear(dim, hidden * 3, bias=False)
        self.to_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        b, n, _ = x.shape
        x = self.norm(x)
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = attend(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, theta=10000):
        super().__init__()
        inv_freq = 1. / (theta ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer('inv_freq', inv_freq)

    def forward(self, seq_len):
        t = torch.arange(seq_len).type_as(self.inv_freq)
        freqs = torch.einsum('i,j->ij', t, self.inv_freq)
        return torch.cat((freqs, freqs), dim=-1)


class Attention(nn.Module):
    """The heavy branch (spec 2.3)."""

    def __init__(self, dim, dim_head=64, heads=8, multiply_keys_by_score=False):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.multiply_keys_by_score = multiply_keys_by_score
        self.norm = RMSNorm(dim)
        self.null_kv = nn.Parameter(torch.randn(2, heads, dim_head))
        hidden = dim_head * heads
        self.to_q = nn.Linear(dim, hidden, bias=False)
        self.to_kv = nn.Linear(dim, hidden * 2, bias=False)
        self.to_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, x, context=None, mask=None, normalized_scores_kv=None, normalized_scores_q=None,
                rotary_emb=None):
        b, nq, _ = x.shape
        h, dh = self.heads, self.dim_head
        x = self.norm(x)
        context = self.norm(context) if context is not None else x
        if context.ndim == 3:
            context = context.unsqueeze(1)
        r = context.shape[1]
        nk = context.shape[2]
        assert h % r == 0, 'number of heads must be divisible by the number of key / value routes'
        hpr = h // r

        q = self.to_q(x).reshape(b, nq, h, dh).transpose(1, 2)
        if normalized_scores_q is not None:
            q = q * normalized_scores_q[:, None, :, None]

        w = self.to_kv.weight.reshape(r, hpr, 2 * dh, -1)
        kv = torch.einsum('rhdi,brni->brhnd', w, context)
        k, v = kv.chunk(2, dim=-1)

        if normalized_scores_kv is not None:
            skv = normalized_scores_kv
            if skv.ndim == 2:
                skv = skv.unsqueeze(1)
            skv = skv[:, :, None, :, None]
            v = v * skv
            if self.multiply_keys_by_score:
                k = k * skv

        if rotary_emb is not None:
            q_pos, k_pos = rotary_emb
            q = apply_rotary(q_pos, q)
            k = apply_rotary(k_pos, k)

        k = k.reshape(b, h, nk, dh)
        v = v.reshape(b, h, nk, dh)
        nk_, nv_ = (t.unsqueeze(0).unsqueeze(2).expand(b, h, 1, dh) for t in self.null_kv)
        k = torch.cat((nk_, k), dim=-2)
        v = torch.cat((nv_, v), dim=-2)

        if mask is not None:
            if mask.ndim == 3:
                mask = mask.repeat_interleave(hpr, dim=1).unsqueeze(2)
            else:
                mask = mask[:, None, None, :]
            mask = F.pad(mask, (1, 0), value=True)

        out = attend(q, k, v, mask)
        return self.to_out(out.transpose(1, 2).reshape(b, nq, h * dh))


# ----------------------------------------------------------------------------------------------- LocalMHA

def look_around(x, backward, forward, pad_value, dim=2):
    """x (..., windows, ...) at axis `dim`: concatenates `backward` windows before and `forward` after along
    axis dim + 1."""
    t = x.shape[dim]
    pad = [0, 0] * (x.ndim - dim - 1) + [backward, forward]
    padded = F.pad(x, pad, value=pad_value)
    tensors = [padded.narrow(dim, ind, t) for ind in range(forward + backward + 1)]
    return torch.cat(tensors, dim=dim + 1)


def local_attention(q, k, v, mask, *, window_size, causal, look_backward, look_forward, exact_windowsize):
    """LocalAttention with autopad (local-attention 1.9).  q/k/v (B, n, d) with B = batch*heads,
    mask (batch, n) bool or None.  With REFERENCE_BUGS False, zero-padded keys are always masked."""
    n = q.shape[1]
    q, k, v = (pad_seq_to_multiple(t, window_size, dim=-2) for t in (q, k, v))
    B, P, dh = q.shape
    windows = P // window_size
    scale = dh ** -0.5
    seq = torch.arange(P)
    b_t = seq.reshape(1, windows, window_size)
    bq, bk, bv = (t.reshape(B, windows, window_size, dh) for t in (q, k, v))
    bq = bq * scale
    bk = look_around(bk, look_backward, look_forward, -1, dim=1)
    bv = look_around(bv, look_backward, look_forward, -1, dim=1)
    bq_k = look_around(b_t, look_backward, look_forward, -1, dim=1)
    bq_t = b_t[..., :, None]
    bq_k = bq_k[..., None, :]
    pad_mask = bq_k == -1
    if not REFERENCE_BUGS:
        pad_mask = pad_mask | (bq_k >= n)
    sim = bq @ bk.transpose(-1, -2)
    if causal:
        causal_mask = bq_t < bq_k
        if exact_windowsize:
            causal_mask = causal_mask | (bq_t > (bq_k + window_size * look_backward))
        sim = sim.masked_fill(causal_mask, MASK_VALUE)
    if not causal and exact_windowsize:
        window_mask = ((bq_k - window_size * look_forward) > bq_t) | (bq_t > (bq_k + window_size * look_backward)) \
            | pad_mask
        sim = sim.masked_fill(window_mask, MASK_VALUE)
    else:
        sim = sim.masked_fill(pad_mask, MASK_VALUE)
    if mask is not None:
        batch = mask.shape[0]
        h = B // batch
        mask = pad_seq_to_multiple(mask, window_size, dim=-1, value=False)
        mask = mask.reshape(batch, windows, window_size)
        mask = look_around(mask, look_backward, look_forward, False, dim=1)
        mask = mask[..., None, :].repeat_interleave(h, dim=0)
        sim = sim.masked_fill(~mask, MASK_VALUE)
    attn = sim.softmax(dim=-1)
    out = attn @ bv
    return out.reshape(B, P, dh)[:, :n]


class LocalMHA(nn.Module):
    def __init__(self, *, dim, window_size, dim_head=64, heads=8, prenorm=False, causal=False, look_backward=1,
                 look_forward=None, exact_windowsize=True):
        super().__init__()
        hidden = dim_head * heads
        self.heads = heads
        self.norm = nn.LayerNorm(dim) if prenorm else None
        self.to_qkv = nn.Linear(dim, hidden * 3, bias=False)
        self.window_size = window_size
        self.causal = causal
        self.look_backward = look_backward
        self.look_forward = look_forward if look_forward is not None else (0 if causal else 1)
        self.exact_windowsize = exact_windowsize
        self.to_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, x, mask=None):
        b, n, _ = x.shape
        if self.norm is not None:
            x = self.norm(x)
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2).reshape(b * self.heads, n, -1)
                   for t in (q, k, v))
        out = local_attention(q, k, v, mask, window_size=self.window_size, causal=self.causal,
                              look_backward=self.look_backward, look_forward=self.look_forward,
                              exact_windowsize=self.exact_windowsize)
        out = out.reshape(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


# ----------------------------------------------------------------------------------------------- router

class CoordinateDescentRouter(nn.Module):
    def __init__(self, dim, straight_through=True, n_iters=20, fetch_k_ratio=9 / 8, eps=0.03, eps_decay=0.7,
                 eps_init=4., num_routing_tokens=1, learned_routing_tokens=False, cosine_sim_routing=False,
                 cosine_sim_scale=8, route_block_size=None):
        super().__init__()
        assert fetch_k_ratio >= 1.
        self.n_iters = n_iters
        self.fetch_k_ratio = fetch_k_ratio
        self.eps, self.eps_decay, self.eps_init = eps, eps_decay, eps_init
        self.num_routing_tokens = num_routing_tokens
        self.is_one_routing_token = num_routing_tokens == 1
        self.route_block_size = route_block_size
        self.routing_token = nn.Parameter(torch.randn(num_routing_tokens, dim)) if not learned_routing_tokens \
            else None
        self.straight_through = straight_through
        self.cosine_sim_routing = cosine_sim_routing
        self.cosine_sim_scale = cosine_sim_scale

    def forward(self, x, *, num_tokens, mask=None, random_route=False, routing_tokens=None,
                keep_one_route_dim=False):
        b, n, d = x.shape
        r = self.num_routing_tokens
        has_route_dim = keep_one_route_dim or not self.is_one_routing_token

        if n <= num_tokens:
            shape = (b, r, n) if has_route_dim else (b, n)
            if has_route_dim:
                x = x.unsqueeze(1).expand(b, r, n, d)
                if mask is not None:
                    mask = mask.unsqueeze(1).expand(b, r, n)
            return None, torch.ones(shape, dtype=x.dtype), x, mask

        x_src, mask_src = x, mask
        blocks = None
        if self.route_block_size is not None:
            w = self.route_block_size
            blocks = n // w
            x_src = x[:, :blocks * w]
            mask_src = mask[:, :blocks * w] if mask is not None else None
            x = x_src.reshape(b * blocks, w, d)
            mask = mask_src.reshape(b * blocks, w) if mask is not None else None
            if routing_tokens is not None:
                routing_tokens = routing_tokens.repeat_interleave(blocks, dim=0)
            n = w
            num_tokens = math.ceil(num_tokens / blocks)

        if self.routing_token is not None:
            u = self.routing_token.unsqueeze(0).expand(x.shape[0], r, d)
        else:
            assert routing_tokens is not None
            u = routing_tokens.unsqueeze(1) if routing_tokens.ndim == 2 else routing_tokens
        if self.cosine_sim_routing:
            s = torch.einsum('bnd,brd->brn', l2norm(x), l2norm(u)) * self.cosine_sim_scale
        else:
            s = torch.einsum('bnd,brd->brn', x, u)

        x_rep = x.repeat_interleave(r, dim=0)
        s = s.reshape(-1, n)
        mask_rep = mask.repeat_interleave(r, dim=0) if mask is not None else None

        effective_k = min(num_tokens * self.fetch_k_ratio, n)
        scores = coor_descent(s, n_iters=self.n_iters, mask=mask_rep, k=effective_k, eps=self.eps,
                              eps_init=self.eps_init, eps_decay=self.eps_decay)
        if random_route:
            scores = torch.randn_like(scores)
            if mask_rep is not None:
                scores = scores.masked_fill(~mask_rep, MASK_VALUE)

        TIE_LOG.append(cut_gap(scores, mask_rep, num_tokens))

        sel_scores, sel_idx = scores.topk(num_tokens, dim=-1)
        if self.straight_through:
            sel_scores = sel_scores + (1. - sel_scores).detach()
            if mask_rep is not None:
                sel_scores = sel_scores.masked_fill(~batched_gather(mask_rep, sel_idx), 0.)

        if has_route_dim:
            sel_scores = sel_scores.reshape(-1, r, num_tokens)
            sel_idx = sel_idx.reshape(-1, r, num_tokens)

        if blocks is not None:
            w = self.route_block_size
            rest = sel_idx.shape[1:-1]
            sel_scores = sel_scores.reshape(b, blocks, *rest, num_tokens).movedim(1, -2).reshape(b, *rest, -1)
            sel_idx = sel_idx.reshape(b, blocks, *rest, num_tokens).movedim(1, -2)
            sel_idx = sel_idx + (torch.arange(blocks) * w)[:, None]
            sel_idx = sel_idx.reshape(b, *rest, -1)

        if REFERENCE_BUGS:
            # output row i gathers from the (b*r[*blocks])-repeated rows: x_rep[i]
            routed_tokens = batched_gather(x_rep, sel_idx)
            routed_mask = batched_gather(mask_rep, sel_idx) if mask_rep is not None else None
        else:
            src = x_src.unsqueeze(1).expand(b, r, *x_src.shape[1:]) if has_route_dim else x_src
            routed_tokens = batched_gather(src.reshape(-1, *x_src.shape[1:]), sel_idx.reshape(-1, sel_idx.shape[-1]))
            routed_tokens = routed_tokens.reshape(*sel_idx.shape, d)
            routed_mask = None
            if mask_src is not None:
                msrc = mask_src.unsqueeze(1).expand(b, r, mask_src.shape[1]) if has_route_dim else mask_src
                routed_mask = batched_gather(msrc.reshape(-1, mask_src.shape[1]), sel_idx.reshape(-1, sel_idx.shape[-1]))
                routed_mask = routed_mask.reshape(sel_idx.shape)
        return sel_idx, sel_scores, routed_tokens, routed_mask


def route_back(src, routed, indices):
    out = src.clone()
    b = indices.shape[0]
    out[torch.arange(b)[:, None], indices] = routed
    return out


# ----------------------------------------------------------------------------------------------- routed modules

class ConditionalRoutedFeedForward(nn.Module):
    def __init__(self, dim, *, num_heavy_tokens, light_ff_mult=0.5, heavy_ff_mult=4, router_straight_through=True,
                 router_kwargs={}):
        super().__init__()
        self.num_heavy_tokens = num_heavy_tokens
        self.router = CoordinateDescentRouter(dim=dim, straight_through=router_straight_through, **router_kwargs)
        self.light_ff = FeedForward(dim, light_ff_mult)
        self.heavy_ff = FeedForward(dim, heavy_ff_mult)

    def forward(self, x, mask=None, num_heavy_tokens=None):
        num_heavy_tokens = num_heavy_tokens if num_heavy_tokens is not None else self.num_heavy_tokens
        light = self.light_ff(x)
        idx, sc, xr, _ = self.router(x, num_tokens=num_heavy_tokens, mask=mask)
        hr = self.heavy_ff(xr) * sc[..., None]
        heavy = route_back(torch.zeros_like(x), hr, idx) if idx is not None else hr
        return light + heavy


def _scatter_queries(x, out, indices_q, null_q_token):
    if null_q_token is not None:
        base = null_q_token.reshape(1, 1, -1).expand_as(x)
    else:
        base = torch.zeros_like(x)
    return route_back(base, out, indices_q)


class ConditionalRoutedAttention(nn.Module):
    def __init__(self, dim, *, num_heavy_tokens_q, num_heavy_tokens_kv, num_routed_kv=1, has_light_attn=True,
                 light_dim_head=64, light_heads=8, light_window_size=128, heavy_dim_head=64, heavy_heads=8,
                 router_straight_through=True, router_kwargs={}, multiply_keys_by_score=False,
                 multiply_queries_by_score=False, use_null_q_tokens=True, rotary_emb=False):
        super().__init__()
        self.num_heavy_tokens_q = num_heavy_tokens_q
        self.num_heavy_tokens_kv = num_heavy_tokens_kv
        self.multiply_queries_by_score = multiply_queries_by_score
        self.light_attn = LocalMHA(dim=dim, dim_head=light_dim_head, heads=light_heads,
                                   window_size=light_window_size // 2, prenorm=True, causal=False,
                                   look_backward=1, look_forward=1) if has_light_attn else None
        self.null_q_token = nn.Parameter(torch.randn(dim)) if use_null_q_tokens else None
        self.q_router = CoordinateDescentRouter(dim=dim, straight_through=router_straight_through, **router_kwargs)
        self.kv_router = CoordinateDescentRouter(dim=dim, num_routing_tokens=num_routed_kv,
                                                 straight_through=router_straight_through, **router_kwargs)
        self.heavy_attn = Attention(dim=dim, dim_head=heavy_dim_head, heads=heavy_heads,
                                    multiply_keys_by_score=multiply_keys_by_score)
        self.rotary_emb = RotaryEmbedding(heavy_dim_head) if rotary_emb else None

    def forward(self, x, *, num_heavy_tokens_q=None, num_heavy_tokens_kv=None, mask=None):
        b, n, _ = x.shape
        kq = num_heavy_tokens_q if num_heavy_tokens_q is not None else self.num_heavy_tokens_q
        kkv = num_heavy_tokens_kv if num_heavy_tokens_kv is not None else self.num_heavy_tokens_kv
        light = self.light_attn(x, mask=mask) if self.light_attn is not None else 0.
        iq, sq, xq, _ = self.q_router(x, num_tokens=kq, mask=mask)
        ikv, skv, xkv, mkv = self.kv_router(x, num_tokens=kkv, mask=mask)
        rotary = None
        if self.rotary_emb is not None:
            pos = self.rotary_emb(n)
            q_pos = pos[iq].unsqueeze(1) if iq is not None else pos
            if ikv is None:
                k_pos = pos
            elif ikv.ndim == 3:
                k_pos = pos[ikv].unsqueeze(2)
            else:
                k_pos = pos[ikv][:, None, None]
            rotary = (q_pos, k_pos)
        out = self.heavy_attn(xq, context=xkv, mask=mkv, normalized_scores_kv=skv,
                              normalized_scores_q=sq if self.multiply_queries_by_score else None, rotary_emb=rotary)
        out = out * sq[..., None]
        heavy = _scatter_queries(x, out, iq, self.null_q_token) if iq is not None else out
        return light + heavy


class ConditionalRoutedCrossAttention(nn.Module):
    def __init__(self, dim, *, num_tokens_q, num_tokens_kv, num_sets_kv=1, dim_head=64, heads=8,
                 router_straight_through=True, router_kwargs={}, kv_routing_tokens=1, multiply_keys_by_score=False,
                 use_null_q_tokens=True, route_block_size=None):
        super().__init__()
        self.num_tokens_q = num_tokens_q
        self.num_tokens_kv = num_tokens_kv
        self.null_q_token = nn.Parameter(torch.randn(dim)) if use_null_q_tokens else None
        self.q_router = CoordinateDescentRouter(dim=dim, straight_through=router_straight_through, **router_kwargs)
        self.kv_router = CoordinateDescentRouter(dim=dim, straight_through=router_straight_through,
                                                 num_routing_tokens=kv_routing_tokens,
                                                 route_block_size=route_block_size, **router_kwargs)
        self.heavy_attn = Attention(dim=dim, dim_head=dim_head, heads=heads,
                                    multiply_keys_by_score=multiply_keys_by_score)

    def forward(self, x, context, *, num_tokens_q=None, num_tokens_kv=None, mask=None, context_mask=None):
        if REFERENCE_BUGS:
            raise NameError("name 'should_route_queries' is not defined")
        kq = num_tokens_q if num_tokens_q is not None else self.num_tokens_q
        kkv = num_tokens_kv if num_tokens_kv is not None else self.num_tokens_kv
        iq, sq, xq, _ = self.q_router(x, num_tokens=kq, mask=mask)
        xkv, mkv, skv = context, context_mask, None
        if context.shape[-2] > kkv:
            _, skv, xkv, mkv = self.kv_router(context, num_tokens=kkv, mask=context_mask)
        out = self.heavy_attn(xq, context=xkv, mask=mkv, normalized_scores_kv=skv)
        should_route_queries = x.shape[-2] > kq
        if not should_route_queries:
            return out
        out = out * sq[..., None]
        return _scatter_queries(x, out, iq, self.null_q_token)


class ConditionalRoutedTransformerBlock(nn.Module):
    def __init__(self, dim, *, num_heavy_attn_tokens_q, num_heavy_attn_tokens_kv, num_routed_kv=1,
                 num_heavy_ff_tokens, light_dim_head=64, light_heads=8, light_window_size=128, heavy_dim_head=64,
                 heavy_heads=8, light_ff_mult=0.5, heavy_ff_mult=4, router_straight_through=True, router_kwargs={},
                 multiply_keys_by_score=False, multiply_queries_by_score=False, use_null_q_tokens=True):
        super().__init__()
        self.conditional_ff = ConditionalRoutedFeedForward(
            dim, num_heavy_tokens=num_heavy_ff_tokens, light_ff_mult=light_ff_mult, heavy_ff_mult=heavy_ff_mult,
            router_straight_through=router_straight_through, router_kwargs=router_kwargs)
        self.conditional_attn = ConditionalRoutedAttention(
            dim, light_dim_head=light_dim_head, light_heads=light_heads, light_window_size=light_window_size,
            heavy_dim_head=heavy_dim_head, heavy_heads=heavy_heads, num_heavy_tokens_q=num_heavy_attn_tokens_q,
            num_heavy_tokens_kv=num_heavy_attn_tokens_kv, num_routed_kv=num_routed_kv,
            router_straight_through=router_straight_through, router_kwargs=router_kwargs,
            multiply_keys_by_score=multiply_keys_by_score, multiply_queries_by_score=multiply_queries_by_score,
            use_null_q_tokens=use_null_q_tokens)

    def forward(self, x, mask=None, num_heavy_attn_tokens_q=None, num_heavy_attn_tokens_kv=None,
                num_heavy_ff_tokens=None):
        x = self.conditional_attn(x, mask=mask, num_heavy_tokens_q=num_heavy_attn_tokens_q,
                                  num_heavy_tokens_kv=num_heavy_attn_tokens_kv) + x
        return self.conditional_ff(x, mask=mask, num_heavy_tokens=num_heavy_ff_tokens) + x
