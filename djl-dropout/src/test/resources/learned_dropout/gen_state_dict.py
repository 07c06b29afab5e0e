"""A yif-AI-style LearnedDropoutTransformer state_dict, written by torch.save, for LearnedDropoutCheckpointTest.

Run with Debian's torch 1.13 (CPU): /usr/bin/python3 -B gen_state_dict.py   (-B: no __pycache__ here)

The keys and shapes are those of dropout-stochastic.md §4.1-§4.2 for a small model (vocabulary 13, context 6,
width 8, 2 layers, 2 heads, HIDDEN_STATE LearnedDropout, no biases). As in the reference, the output layer is tied
to the token embedding, so the dict holds one tensor under both `token_embedding.weight` and `output_layer.weight`
(torch.save stores it once). Values come from a seeded generator, not from training.

Writes, next to this script:
  yif_state_dict.pt         the state dict (a plain OrderedDict, as `torch.save(model.state_dict(), path)`)
  yif_state_dict_untied.pt  the same with `output_layer.weight` an unequal copy (one entry changed by 0.5)
  yif_expected.safetensors  `tokens` (2, 6) as float32 and the eval-mode `logits` (2, 6, 13) computed below
                            from the spec's forward (§4.1, §4.3; eval rounding is the 0.5 threshold)
"""
import collections
import math
import os

import torch
import torch.nn.functional as F

from gen_fixtures import causal_attention, write_safetensors

V, CONTEXT, C, L, H = 13, 6, 8, 2, 2
HERE = os.path.dirname(os.path.abspath(__file__))


def state_dict(gen):
    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std

    # larger than nanoGPT's 0.02 so that every layer changes the logits visibly
    sd = collections.OrderedDict()
    sd["token_embedding.weight"] = normal(V, C, std=0.5)
    sd["positional_embedding.weight"] = normal(CONTEXT, C, std=0.5)
    for i in range(L):
        p = "transformer_blocks.%d." % i
        sd[p + "multi_attn_head.batch_attn_weights.weight"] = normal(3 * C, C, std=0.4)
        sd[p + "multi_attn_head.residual_proj.weight"] = normal(C, C, std=0.4)
        sd[p + "feed_forward.linear.weight"] = normal(4 * C, C, std=0.4)
        sd[p + "feed_forward.residual_proj.weight"] = normal(C, 4 * C, std=0.4)
        sd[p + "feed_forward.dropout.batch_attn_weights.weight"] = normal(3 * C, C, std=0.4)
        sd[p + "feed_forward.dropout.shift"] = torch.rand(C, generator=gen) * math.pi
        sd[p + "ln1.weight"] = 1 + normal(C, std=0.1)
        sd[p + "ln2.weight"] = 1 + normal(C, std=0.1)
    sd["ln.weight"] = 1 + normal(C, std=0.1)
    sd["output_layer.weight"] = sd["token_embedding.weight"]  # the tie: one tensor, two keys
    return sd


def eval_logits(sd, tokens):
    t = tokens.shape[1]
    x = sd["token_embedding.weight"][tokens] + sd["positional_embedding.weight"][:t]
    closest = 1.0
    for i in range(L):
        p = "transformer_blocks.%d." % i
        h = F.layer_norm(x, (C,), sd[p + "ln1.weight"], None, 1e-5)
        attn = causal_attention(F.linear(h, sd[p + "multi_attn_head.batch_attn_weights.weight"]), H)
        x = x + F.linear(attn, sd[p + "multi_attn_head.residual_proj.weight"])
        h = F.layer_norm(x, (C,), sd[p + "ln2.weight"], None, 1e-5)
        f = F.linear(F.gelu(F.linear(h, sd[p + "feed_forward.linear.weight"])),
                     sd[p + "feed_forward.residual_proj.weight"])
        qkv = F.linear(f, sd[p + "feed_forward.dropout.batch_attn_weights.weight"])
        m = 0.5 * torch.cos(causal_attention(qkv, H) + sd[p + "feed_forward.dropout.shift"]) + 0.5
        closest = min(closest, (m - 0.5).abs().min().item())
        x = x + f * (m >= 0.5).to(f.dtype)
    assert closest > 1e-3, "re-seed: a mask value is within %g of the 0.5 threshold" % closest
    return F.linear(F.layer_norm(x, (C,), sd["ln.weight"], None, 1e-5), sd["output_layer.weight"])


def main():
    gen = torch.Generator().manual_seed(20240729)
    sd = state_dict(gen)
    tokens = torch.randint(0, V, (2, CONTEXT), generator=gen)
    with torch.no_grad():
        logits = eval_logits(sd, tokens)
    torch.save(sd, os.path.join(HERE, "yif_state_dict.pt"))
    untied = collections.OrderedDict(sd)
    untied["output_layer.weight"] = sd["token_embedding.weight"].clone()
    untied["output_layer.weight"][3, 5] += 0.5
    torch.save(untied, os.path.join(HERE, "yif_state_dict_untied.pt"))
    write_safetensors(os.path.join(HERE, "yif_expected.safetensors"),
                      {"tokens": tokens.to(torch.float32), "logits": logits.contiguous()})
    print("tokens", tokens.tolist())
    print("logits[0, 0]", [round(v, 4) for v in logits[0, 0].tolist()])


if __name__ == "__main__":
    main()
