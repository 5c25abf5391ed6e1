#!/usr/bin/python3
"""Small PyTorch-exported models that use the structure ops (tests/fixtures/new-ops/<name>/).

- shufflenet_mini_opset{13,17}: torchvision's own ShuffleNetV2 class (torch.chunk + channel
  shuffle, exactly as shufflenet_v2_x0_5 is built) with reduced widths and depths so the file
  stays small: ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=10), random init
  (weights=None, torch.manual_seed(0)), eval mode.
- layernorm_head_opset17: a ConvNeXt-style block (depthwise conv, channels-last nn.LayerNorm,
  pointwise Linear layers with GELU, a residual) and a LayerNorm + Linear head: exports
  LayerNormalization at opset 17.

Each folder holds model.onnx and test_data_set_{0,1} (seeded standard-normal inputs, batch 1
and 2) with PyTorch's float32 outputs, in the layout the conformance command reads.
Usage: /usr/bin/python3 scripts/make_new_ops_models.py [out_dir]
"""
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = torch.nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = torch.nn.LayerNorm(c, eps=1e-6)
        self.pw1 = torch.nn.Linear(c, 4 * c)
        self.act = torch.nn.GELU()
        self.pw2 = torch.nn.Linear(4 * c, c)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + y


class LayerNormHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.block = Block(16)
        self.norm = torch.nn.LayerNorm(16)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.fc(self.norm(x.mean((2, 3))))


def export(model, name, opset, hw, root, abs_tol=1e-4):
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    x0 = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(model, x0, os.path.join(out, 'model.onnx'), opset_version=opset, input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                      do_constant_folding=True)
    ops = {}
    for n in onnx.load(os.path.join(out, 'model.onnx')).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    for k, batch in enumerate((1, 2)):
        x = torch.randn(batch, 3, hw, hw, generator=torch.Generator().manual_seed(10 + k))
        with torch.no_grad():
            y = model(x)
        d = os.path.join(out, f'test_data_set_{k}')
        os.makedirs(d)
        with open(os.path.join(d, 'input_0.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(x.numpy(), 'input').SerializeToString())
        with open(os.path.join(d, 'output_0.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(y.numpy(), 'logits').SerializeToString())
    meta = {
        'description': name,
        'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'onnx': onnx.__version__},
        'export': {'opset': opset, 'do_constant_folding': True},
        'onnx': {'op_type_counts': ops},
        # float32 PyTorch vs a float32 engine with different summation orders: errors of about
        # 1e-6 of the logits' spread; abs_tol is about 1e-4 of that spread (rel as models.test's).
        'recommended_tolerance': {'abs': abs_tol, 'rel': 1e-3},
    }
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(name, ops)


def main(argv):
    root = argv[0] if argv else 'tests/fixtures/new-ops'
    os.makedirs(root, exist_ok=True)
    torch.set_num_threads(1)
    for opset in (13, 17):
        torch.manual_seed(0)
        m = torchvision.models.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=10).eval()
        # The random-init logits have std ~0.05, so the absolute bound is 1e-5.
        export(m, f'shufflenet_mini_opset{opset}', opset, 32, root, abs_tol=1e-5)
    torch.manual_seed(0)
    head = LayerNormHead().eval()
    # Non-trivial LayerNorm affine parameters (the default ones/zeros would also be deduplicated
    # by the exporter into one shared initializer).
    with torch.no_grad():
        for ln in (head.block.norm, head.norm):
            ln.weight.normal_(1.0, 0.2)
            ln.bias.normal_(0.0, 0.2)
    export(head, 'layernorm_head_opset17', 17, 32, root)


if __name__ == '__main__':
    main(sys.argv[1:])
