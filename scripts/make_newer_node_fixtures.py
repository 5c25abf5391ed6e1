#!/usr/bin/python3
"""Node cases against PyTorch for operators newer than ONNX 1.12, whose backend tests lack them:
Gelu (opset 20) in tests/fixtures/onnx-node-layers/, Mish (opset 18) in tests/fixtures/onnx-node/.

They are built the way ONNX's own are (one node, graph input 'x', output 'y', <case>/model.onnx and
test_data_set_0/{input,output}_0.pb) with the expected outputs from torch.nn.functional.gelu
(approximate='none' or 'tanh') and torch.nn.functional.mish, computed in float64, stored as float32.
Usage: /usr/bin/python3 scripts/make_newer_node_fixtures.py
"""
import os
import shutil
import sys

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper


def case(root, name, x, approximate, op='Gelu', opset=20):
    attrs = {} if approximate is None else {'approximate': approximate}
    node = helper.make_node(op, ['x'], ['y'], **attrs)
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, list(x.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], ir_version=9 if opset >= 19 else 8)
    x64 = torch.from_numpy(x.astype(np.float64))
    y64 = torch.nn.functional.mish(x64) if op == 'Mish' else torch.nn.functional.gelu(x64, approximate=approximate or 'none')
    y = y64.numpy().astype(np.float32)
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, 'test_data_set_0'))
    with open(os.path.join(out, 'model.onnx'), 'wb') as f:
        f.write(model.SerializeToString())
    with open(os.path.join(out, 'test_data_set_0', 'input_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(x, 'x').SerializeToString())
    with open(os.path.join(out, 'test_data_set_0', 'output_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(y, 'y').SerializeToString())


def main(argv):
    root = 'tests/fixtures/onnx-node-layers'
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    edges = np.array([-1e4, -20, -5, -1, -1e-3, 0, 1e-3, 1, 5, 20, 1e4], dtype=np.float32)
    random = (rng.standard_normal((3, 4, 5)) * 3).astype(np.float32)
    case(root, 'test_gelu_default', random, None)
    case(root, 'test_gelu_none_edges', edges, 'none')
    case(root, 'test_gelu_tanh', random, 'tanh')
    case(root, 'test_gelu_tanh_edges', edges, 'tanh')
    print('4 Gelu cases in', root)
    case('tests/fixtures/onnx-node', 'test_mish_torch', random, None, op='Mish', opset=18)
    case('tests/fixtures/onnx-node', 'test_mish_torch_edges', edges, None, op='Mish', opset=18)
    print('2 Mish cases in tests/fixtures/onnx-node')


if __name__ == '__main__':
    main(sys.argv[1:])
