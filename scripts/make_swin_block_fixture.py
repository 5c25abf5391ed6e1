#!/usr/bin/python3
"""Writes tests/fixtures/torchvision-small/swin_block_opset17: one torchvision SwinTransformerBlock
(dim 8, 2 heads, 4×4 windows, shift 2×2) exported at opset 17, with PyTorch's output for one input.

It is Swin-T's shifted-window attention in little (~100 KB): the window padding is int64 Mod
arithmetic on the input's shape, and the shift's attention mask is built with ScatterND
(reduction none) on a float32 [H, W] map from int64 [h, w, 2] indices.

Usage: /usr/bin/python3 scripts/make_swin_block_fixture.py [OUT_DIR]
       (default: tests/fixtures/torchvision-small/swin_block_opset17)
"""
import json
import os
import shutil
import sys

import onnx
import torch
import torchvision
from onnx import numpy_helper
from torchvision.models.swin_transformer import SwinTransformerBlock


def main(argv):
    out = argv[0] if argv else 'tests/fixtures/torchvision-small/swin_block_opset17'
    if os.path.exists(out):
        shutil.rmtree(out)
    d = os.path.join(out, 'test_data_set_0')
    os.makedirs(d)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SwinTransformerBlock(dim=8, num_heads=2, window_size=[4, 4], shift_size=[2, 2]).eval()
    x = torch.randn(1, 8, 8, 8, generator=torch.Generator().manual_seed(10))  # [N, H, W, C]
    with torch.no_grad():
        y = model(x)
    path = os.path.join(out, 'model.onnx')
    torch.onnx.export(model, x, path, opset_version=17, input_names=['input'], output_names=['output'],
                      do_constant_folding=True)
    with open(os.path.join(d, 'input_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(x.numpy(), 'input').SerializeToString())
    with open(os.path.join(d, 'output_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(y.numpy(), 'output').SerializeToString())
    ops = {}
    for n in onnx.load(path).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    meta = {
        'description': 'torchvision SwinTransformerBlock(dim=8, num_heads=2, window_size=[4, 4], shift_size=[2, 2]), seed 0, eval mode',
        'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'onnx': onnx.__version__},
        'export': {'opset': 17, 'do_constant_folding': True, 'input': [1, 8, 8, 8]},
        'onnx': {'op_type_counts': ops},
        # The conformance command's default (abs 1e-4 + rel 1e-3): float32 round-off only.
        'recommended_tolerance': {'abs': 1e-4, 'rel': 1e-3},
    }
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    size = sum(os.path.getsize(os.path.join(p, n)) for p, _, ns in os.walk(out) for n in ns)
    print(out, size, 'bytes', ops)


if __name__ == '__main__':
    main(sys.argv[1:])
