"""Example cases shipped in condjl.jar (src/main/resources/examples/<module>.{json,safetensors}) and their expected
outputs (<module>.expected.safetensors beside this script), from the PyTorch transcription of the reference in
djl-topk/src/test/resources/fixtures/gen_fixtures.py.

Run with Debian's torch: /usr/bin/python3 gen_run_fixtures.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(MODULE_ROOT, "..", "djl-topk", "src", "test", "resources", "fixtures"))
from gen_fixtures import coor_descent, topk  # noqa: E402
from safetensors_file import write_safetensors  # noqa: E402

EXAMPLES = os.path.join(MODULE_ROOT, "src", "main", "resources", "examples")


def write_case(module, config, inputs, expected):
    with open(os.path.join(EXAMPLES, module + ".json"), "w") as f:
        json.dump({"module": module, "config": config, "forward": {}}, f, indent=1)
        f.write("\n")
    write_safetensors(os.path.join(EXAMPLES, module + ".safetensors"), inputs)
    write_safetensors(os.path.join(HERE, module + ".expected.safetensors"), expected)


def main():
    gen = torch.Generator().manual_seed(7)
    config = dict(n_iters=20, eps=0.03, eps_init=4.0, eps_decay=0.7)
    s = torch.randn(2, 3, 16, generator=gen).requires_grad_(True)
    k = torch.tensor([[2.0, 3.0, 4.5], [1.0, 6.0, 8.0]])
    mask = torch.rand(2, 3, 16, generator=gen) < 0.8
    grad_output = torch.randn(2, 3, 16, generator=gen)
    output = coor_descent(s, k=k, mask=mask, **config)
    (grad_s,) = torch.autograd.grad(output, s, grad_output)
    write_case("coor_descent", config, dict(s=s, k=k, mask=mask, grad_output=grad_output),
               dict(output=output, grad_s=grad_s))

    config = dict(k=4, n_iters=20, eps=0.1)
    x = torch.randn(2, 32, generator=gen)
    mask = torch.rand(2, 32, generator=gen) < 0.75
    values, indices, cd_values, gates = topk(x, mask=mask, **config)
    write_case("topk", config, dict(x=x, mask=mask),
               dict(values=values, indices=indices, coor_descent_values=cd_values, gates=gates))


if __name__ == "__main__":
    main()
