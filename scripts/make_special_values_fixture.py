#!/usr/bin/python3
"""Expected answers for special inputs (±0, ±∞, NaN, ±FLT_MAX, denormals, large values), per
activation and binary op, computed by PyTorch's float32 CPU kernels. Run from the repository
root with Debian's Python (torch 1.13):

    /usr/bin/python3 scripts/make_special_values_fixture.py

Writes tests/fixtures/special_values/expected.json. Every float is stored as its float32 bit
pattern (an unsigned integer), so NaN, ±∞ and −0 survive JSON. tests/kernels/special_values.test.ts
runs every kernel path on the same inputs and compares. The semantics chosen are documented in
docs/special-values.md; where the engine follows ONNX rather than one PyTorch kernel, the
expression below says so:

- HardSwish is ONNX's definition x · HardSigmoid(x) (alpha 1/6, beta 1/2), evaluated with
  PyTorch's kernels. PyTorch's own hardswish computes x · relu6(x + 3) / 6, whose float32
  product overflows for x near FLT_MAX (it gives +∞ for FLT_MAX); the specials (NaN at −∞, −0
  below −3) are the same.
- HardSigmoid is ONNX's clamp(alpha · x + beta, 0, 1), with alpha and beta given.
"""
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OUT = Path('tests/fixtures/special_values/expected.json')
FMAX = float(np.finfo(np.float32).max)
INF = float('inf')
NAN = float('nan')

# Unary inputs: the specials, the extremes of float32, denormals, and values either side of
# the points where an activation changes form (±3 for the hard ones; −88.72, where e^−x
# overflows float32, for sigmoid and SiLU — kept ≥ 0.25 away from it, as the polynomial exp
# of the WebAssembly kernels may round the last ulp before overflow either way).
UNARY_X = [
    -INF, INF, NAN, -0.0, 0.0, -FMAX, FMAX,
    -1e-45, 1e-45, -1e-40, 1e-40, -1.1754944e-38, 1.1754944e-38,
    -1e30, 1e30, -1e10, 1e10, -200.0, -104.0, -100.0, -89.0, -88.0, -87.0, -50.0, -20.0,
    -3.5, -3.0, -2.5, -1.0, -0.5, -1e-7, 1e-7, 0.5, 1.0, 2.5, 3.0, 3.5, 20.0, 88.0, 89.0, 100.0,
]

# Binary operands: every pair of these, for each op.
BINARY_X = [-INF, INF, NAN, -0.0, 0.0, -FMAX, FMAX, -1e-45, 1e-45, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0]


def bits(t: torch.Tensor) -> list:
    a = t.detach().contiguous().numpy().astype(np.float32)
    return [int(v) for v in a.view(np.uint32)]


def unary_cases(x: torch.Tensor) -> dict:
    hsig = lambda v, a, b: torch.clamp(a * v + b, 0.0, 1.0)
    return {
        'relu': F.relu(x),
        'leaky_relu_0.01': F.leaky_relu(x, 0.01),
        'clip_0_6': torch.clamp(x, 0.0, 6.0),
        'clip_-1_1': torch.clamp(x, -1.0, 1.0),
        'sigmoid': torch.sigmoid(x),
        'hard_sigmoid_onnx': hsig(x, 0.2, 0.5),
        'hard_sigmoid_torch': hsig(x, 1.0 / 6.0, 0.5),
        'hard_swish': x * hsig(x, 1.0 / 6.0, 0.5),
        'silu': F.silu(x),
        'tanh': torch.tanh(x),
        'exp': torch.exp(x),
        'sqrt': torch.sqrt(x),
        'neg': torch.neg(x),
        'abs': torch.abs(x),
        'erf': torch.erf(x),
    }


def main() -> None:
    torch.set_num_threads(1)
    x = torch.tensor(UNARY_X, dtype=torch.float32)
    unary = {name: bits(y) for name, y in unary_cases(x).items()}
    b = torch.tensor(BINARY_X, dtype=torch.float32)
    A = b.repeat_interleave(len(BINARY_X))  # a runs slowly, b quickly: pairs in row-major order
    B = b.repeat(len(BINARY_X))
    binary = {
        'Add': bits(A + B),
        'Sub': bits(A - B),
        'Mul': bits(A * B),
        'Div': bits(A / B),
        'Pow': bits(torch.pow(A, B)),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        'about': 'float32 bit patterns; made by scripts/make_special_values_fixture.py with torch ' + torch.__version__,
        'unary': {'x': bits(x), 'y': unary},
        'binary': {'a': bits(A), 'b': bits(B), 'y': binary},
    }
    OUT.write_text(json.dumps(doc, indent=1) + '\n')
    print(f'wrote {OUT}: {len(UNARY_X)} unary inputs × {len(unary)} ops, {len(A)} pairs × {len(binary)} binary ops')


if __name__ == '__main__':
    main()
