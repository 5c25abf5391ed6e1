#!/usr/bin/python3
"""A tiny PyTorch decoder exported to ONNX: ConvTranspose, Resize and GELU (tests/fixtures/layers-models/<name>/).

decoder_opset{13,17}: Conv stem (stride 2) -> nn.ConvTranspose2d(stride 2, padding 1,
output_padding 1) -> nn.GELU -> nn.Upsample(scale_factor=2, mode='nearest') -> grouped
nn.ConvTranspose2d (groups 2, dilation 2) -> nn.GELU(approximate='tanh') ->
F.interpolate(scale_factor=0.5, mode='bilinear', align_corners=False) -> 1x1 Conv head.
Random init (torch.manual_seed(0)), eval mode. The exporter writes ConvTranspose, Resize
(nearest/asymmetric/floor and linear/pytorch_half_pixel) and GELU as Erf / Tanh arithmetic
(torch 1.13 cannot export the Gelu op, which needs opset 20).

Each folder holds model.onnx and test_data_set_0 (a seeded standard-normal input, batch 2)
with PyTorch's float32 output, in the layout the conformance command reads.
Usage: /usr/bin/python3 scripts/make_layers_models.py [out_dir]
"""
import json
import os
import shutil
import sys

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.up1 = torch.nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.act1 = torch.nn.GELU()
        self.up2 = torch.nn.Upsample(scale_factor=2, mode='nearest')
        self.up3 = torch.nn.ConvTranspose2d(6, 4, 3, stride=1, padding=2, dilation=2, groups=2)
        self.act2 = torch.nn.GELU(approximate='tanh')
        self.head = torch.nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = self.act1(self.up1(self.stem(x)))
        y = self.act2(self.up3(self.up2(y)))
        y = F.interpolate(y, scale_factor=0.5, mode='bilinear', align_corners=False)
        return self.head(y)


def export(model, name, opset, root, hw=8):
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, 'test_data_set_0'))
    x = torch.randn(2, 3, hw, hw, generator=torch.Generator().manual_seed(10))
    path = os.path.join(out, 'model.onnx')
    torch.onnx.export(model, x, path, opset_version=opset, input_names=['input'], output_names=['output'],
                      do_constant_folding=True)
    ops = {}
    for n in onnx.load(path).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    with torch.no_grad():
        y = model(x)
    with open(os.path.join(out, 'test_data_set_0', 'input_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(x.numpy(), 'input').SerializeToString())
    with open(os.path.join(out, 'test_data_set_0', 'output_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(y.numpy(), 'output').SerializeToString())
    meta = {
        'description': name,
        'versions': {'torch': torch.__version__, 'onnx': onnx.__version__},
        'export': {'opset': opset, 'do_constant_folding': True},
        'onnx': {'op_type_counts': ops},
        # float32 PyTorch vs the float32 engine with other summation orders: outputs of order 0.1–1
        # differ by ~1e-6; 1e-4 absolute leaves room without hiding a wrong tap or weight.
        'recommended_tolerance': {'abs': 1e-4, 'rel': 1e-3},
    }
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(name, ops)


def main(argv):
    root = argv[0] if argv else 'tests/fixtures/layers-models'
    os.makedirs(root, exist_ok=True)
    torch.set_num_threads(1)
    for opset in (13, 17):
        torch.manual_seed(0)
        export(Decoder().eval(), f'decoder_opset{opset}', opset, root)


if __name__ == '__main__':
    main(sys.argv[1:])
