"""Golden values for djl-stochastic tests, computed the way the references do.

Run with Debian's Python (numpy only): /usr/bin/python3 gen_fixtures.py
Writes subset_sizes.json and linear_rates.json beside this script.
"""
import json
import os
from fractions import Fraction

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def dinov2_k(b, p):
    # dinov2/layers/block.py drop_add_residual_stochastic_depth: sample_subset_size
    return max(int(b * (1 - p)), 1)


def subset_sizes():
    cases = []
    # every (b, p) in the sweep where double truncation differs from exact arithmetic
    for b in range(1, 257):
        for i in range(1, 100):
            p = i / 100
            exact = max(int(b * (1 - Fraction(i, 100))), 1)
            if dinov2_k(b, p) != exact:
                cases.append([b, p, dinov2_k(b, p)])
    # the worked table of dropout-stochastic.md section 1.1 and the edge cases
    for b, p in [(24, 0.4), (96, 0.4), (64, 0.4), (256, 0.4), (90, 0.3), (1, 0.5), (1, 0.0),
                 (8, 1.0), (10, 1.0), (8, 0.0), (60, 0.55), (250, 0.54), (8, 0.4)]:
        cases.append([b, p, dinov2_k(b, p)])
    return {"cases": cases}


def linear_rates():
    # dinov2/models/vision_transformer.py: dpr = np.linspace(0, drop_path_rate, depth)
    out = []
    for p, depth in [(0.4, 24), (0.4, 12), (0.3, 12), (0.4, 5), (0.1, 7), (0.4, 1), (0.4, 2), (0.0, 4)]:
        out.append({"p": p, "depth": depth, "rates": [float(r) for r in np.linspace(0, p, depth)]})
    return {"schedules": out}


for name, data in [("subset_sizes.json", subset_sizes()), ("linear_rates.json", linear_rates())]:
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
