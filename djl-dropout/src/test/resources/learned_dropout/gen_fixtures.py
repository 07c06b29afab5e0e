"""Golden fixtures for LearnedDropoutParityTest, written from dropout-stochastic.md §4.3-§4.5.

Run with Debian's torch 1.13: /usr/bin/python3 gen_fixtures.py
torch 1.13 has no F.scaled_dot_product_attention, so the causal attention is written out (scale 1/sqrt(C/H),
future positions masked with -inf), which is what SDPA(is_causal=True) computes.
Writes fixtures.safetensors (fp32 tensors) next to this script.
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = HERE
while not os.path.isfile(os.path.join(ROOT, "tools", "safetensors_file.py")):
    ROOT = os.path.dirname(ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from safetensors_file import write_safetensors  # noqa: E402

B, T, C, H = 2, 5, 12, 3
COEFF = 0.1


def causal_attention(qkv, n_head):
    b, t, c3 = qkv.shape
    c = c3 // 3
    q, k, v = qkv.split(c, dim=2)
    q = q.view(b, t, n_head, c // n_head).transpose(1, 2)
    k = k.view(b, t, n_head, c // n_head).transpose(1, 2)
    v = v.view(b, t, n_head, c // n_head).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // n_head))
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    att = att.masked_fill(future, float("-inf")).softmax(dim=-1)
    return (att @ v).transpose(1, 2).contiguous().view(b, t, c)


def learned_dropout(x, source, weight, bias, shift, noise):
    """yif-AI LearnedDropout.forward with NOISE_AND_LINEAR rounding; noise=None is eval."""
    m = 0.5 * torch.cos(causal_attention(torch.nn.functional.linear(source, weight, bias), H) + shift) + 0.5
    complement = 1 - m.detach()
    if noise is not None:
        scaling = torch.where(noise <= m, complement, -m.detach())
    else:
        scaling = torch.where(m >= 0.5, complement, -m.detach())
    rounded = (m.to(torch.float16) + scaling.to(torch.float16)).to(torch.float32)
    return m, rounded, x * rounded


def main():
    torch.manual_seed(1234)
    out = {}
    for case in ("hidden", "embed"):
        x = torch.randn(B, T, C, requires_grad=True)
        embed = torch.randn(B, T, C, requires_grad=True)
        weight = (torch.randn(3 * C, C) * 0.4).requires_grad_()
        bias = (torch.randn(3 * C) * 0.1).requires_grad_()
        shift = (torch.rand(C) * math.pi).requires_grad_()
        noise = torch.rand(B, T, C)
        upstream = torch.randn(B, T, C)
        source = x if case == "hidden" else embed
        m, rounded, y = learned_dropout(x, source, weight, bias, shift, noise)
        assert (m - noise).abs().min() > 1e-4 and (m - 0.5).abs().min() > 1e-4, "re-seed: a tie is too close"
        squared = (m ** 2 / 2).abs().sum() / m.numel()
        linear = m.abs().sum() / m.numel()
        loss = (y * upstream).sum() + COEFF * squared
        loss.backward()
        with torch.no_grad():
            _, rounded_eval, y_eval = learned_dropout(x, source, weight, bias, shift, None)
        tensors = dict(x=x, embed=embed, weight=weight, bias=bias, shift=shift, noise=noise, upstream=upstream,
                       m=m, rounded=rounded, out=y, rounded_eval=rounded_eval, out_eval=y_eval,
                       penalty_squared=squared, penalty_linear=linear,
                       grad_x=x.grad, grad_embed=embed.grad, grad_weight=weight.grad, grad_bias=bias.grad,
                       grad_shift=shift.grad)
        for name, t in tensors.items():
            if t is None:  # embed gets no gradient in the hidden-state case
                continue
            out[f"{case}.{name}"] = t.detach().to(torch.float32).contiguous()
    write_safetensors(os.path.join(HERE, "fixtures.safetensors"), out)


if __name__ == "__main__":
    main()
