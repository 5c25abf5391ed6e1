#!/usr/bin/env python3
"""Writes tests/fixtures/onnx-legacy/: one-node (and one small CNN) models in the ops' opset 1–9
forms that newer exporters no longer write: Add/Sub/Mul/Div/Pow with `broadcast`/`axis` (opset 1
and 6, opset 1 with `consumed_inputs`), Gemm with `broadcast` and a required C (opset 1/6),
BatchNormalization with `is_test`/`spatial`/`consumed_inputs` (opsets 1, 6, 7, 9) and Dropout with
`is_test`/`ratio` (opsets 1, 6, 7). Layout as ONNX's backend tests: <case>/model.onnx and
test_data_set_0/{input,output}_K.pb. Expected outputs are computed here with numpy from each
op's definition at that opset (legacy broadcast = B reshaped to A's rank from `axis`).

Debian's python3-onnx does not ship the backend test data folders (node/, pytorch-converted/...),
so the cases are generated rather than copied.

Usage: /usr/bin/python3 scripts/make_onnx_legacy_fixtures.py [out_dir]
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def write_case(root, name, nodes, inputs, outputs, opset, inits=()):
    """inputs/outputs: lists of (name, array); inits: (name, array) initializers."""
    graph = helper.make_graph(
        nodes, name,
        # Before IR 4 every initializer is also a graph input (after the fed ones).
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in [*inputs, *inits]],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in outputs],
        [numpy_helper.from_array(a, n) for n, a in inits],
    )
    # IR version 3 is what opset 1–7 models carried.
    model = helper.make_model(graph, producer_name='make_onnx_legacy_fixtures', opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = 3
    onnx.checker.check_model(model)
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, 'test_data_set_0'))
    onnx.save(model, os.path.join(out, 'model.onnx'))
    for kind, arrays in (('input', inputs), ('output', outputs)):
        for j, (n, a) in enumerate(arrays):
            with open(os.path.join(out, 'test_data_set_0', f'{kind}_{j}.pb'), 'wb') as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())


def legacy_b(a, b, axis):
    """B as opsets 1–6 broadcast it (broadcast=1): its dims placed at `axis`, or at the end."""
    if b.size == 1:
        return b.reshape(())
    start = a.ndim - b.ndim if axis is None else axis
    return b.reshape((1,) * start + b.shape + (1,) * (a.ndim - start - b.ndim))


FNS = {'Add': np.add, 'Sub': np.subtract, 'Mul': np.multiply, 'Div': np.divide, 'Pow': np.power}


def binary_case(root, name, op, a_shape, b_shape, opset, broadcast=1, axis=None, consumed=False, positive=False):
    a = randn(*a_shape)
    b = randn(*b_shape)
    if positive:
        a = np.abs(a) + 0.5
    if op == 'Div':
        b = np.where(np.abs(b) < 0.3, 0.3, b).astype(np.float32)
    attrs = {}
    if broadcast:
        attrs['broadcast'] = 1
    if axis is not None:
        attrs['axis'] = axis
    if consumed:
        attrs['consumed_inputs'] = [0, 0]
    node = helper.make_node(op, ['A', 'B'], ['C'], **attrs)
    c = FNS[op](a, legacy_b(a, b, axis) if broadcast else b).astype(np.float32)
    write_case(root, name, [node], [('A', a), ('B', b)], [('C', c)], opset)


def gemm_case(root, name, opset, a_shape, b_shape, c_shape, broadcast, trans_a=0, trans_b=0, alpha=1.0, beta=1.0):
    a, b, c = randn(*a_shape), randn(*b_shape), randn(*c_shape)
    attrs = {'alpha': alpha, 'beta': beta, 'transA': trans_a, 'transB': trans_b}
    if broadcast:
        attrs['broadcast'] = 1
    node = helper.make_node('Gemm', ['A', 'B', 'C'], ['Y'], **attrs)
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    y = (alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * c.astype(np.float64)).astype(np.float32)
    write_case(root, name, [node], [('A', a), ('B', b), ('C', c)], [('Y', y)], opset)


def bn_ref(x, s, b, mean, var, eps):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    xd = x.astype(np.float64)
    y = (xd - mean.reshape(sh)) / np.sqrt(var.reshape(sh).astype(np.float64) + eps) * s.reshape(sh) + b.reshape(sh)
    return y.astype(np.float32)


def bn_case(root, name, opset, shape, eps, **attrs):
    c = shape[1]
    x = randn(*shape)
    s, b, mean = randn(c), randn(c), randn(c)
    var = (np.abs(randn(c)) + 0.2).astype(np.float32)
    node = helper.make_node('BatchNormalization', ['X', 'scale', 'B', 'mean', 'var'], ['Y'], epsilon=eps, **attrs)
    y = bn_ref(x, s, b, mean, var, eps)
    write_case(root, name, [node], [('X', x), ('scale', s), ('B', b), ('mean', mean), ('var', var)], [('Y', y)], opset)


def dropout_case(root, name, opset, **attrs):
    x = randn(3, 4, 5)
    node = helper.make_node('Dropout', ['X'], ['Y'], **attrs)
    write_case(root, name, [node], [('X', x)], [('Y', x.copy())], opset)


def conv_ref(x, w, b, pad):
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, m, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            y += np.einsum('nchw,mc->nmhw', xp[:, :, ky:ky + oh, kx:kx + ow], w[:, :, ky, kx].astype(np.float64))
    return (y + b.reshape(1, -1, 1, 1)).astype(np.float32)


def legacy_cnn(root):
    """Conv → BN (opset-1 attributes) → Relu → Flatten → Gemm (broadcast C) → Mul (broadcast, axis 1) → Add (scalar B), opset 6."""
    x = randn(2, 3, 6, 6)
    w, cb = (randn(4, 3, 3, 3) * 0.5).astype(np.float32), randn(4)
    s, bb, mean = randn(4), randn(4), randn(4)
    var = (np.abs(randn(4)) + 0.2).astype(np.float32)
    fw, fc = (randn(5, 144) * 0.1).astype(np.float32), randn(5)
    gain, shift = randn(5), randn(1)
    nodes = [
        helper.make_node('Conv', ['x', 'w', 'cb'], ['c'], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node('BatchNormalization', ['c', 's', 'bb', 'mean', 'var'], ['n'], epsilon=1e-5, is_test=1),
        helper.make_node('Relu', ['n'], ['r']),
        helper.make_node('Flatten', ['r'], ['f'], axis=1),
        helper.make_node('Gemm', ['f', 'fw', 'fc'], ['g'], transB=1, broadcast=1),
        helper.make_node('Mul', ['g', 'gain'], ['m'], broadcast=1, axis=1),
        helper.make_node('Add', ['m', 'shift'], ['y'], broadcast=1),
    ]
    h = np.maximum(bn_ref(conv_ref(x, w, cb, 1), s, bb, mean, var, 1e-5), 0).reshape(2, -1)
    g = (h.astype(np.float64) @ fw.T.astype(np.float64) + fc).astype(np.float32)
    y = (g * gain.reshape(1, 5) + shift.reshape(())).astype(np.float32)
    inits = [('w', w), ('cb', cb), ('s', s), ('bb', bb), ('mean', mean), ('var', var), ('fw', fw), ('fc', fc), ('gain', gain), ('shift', shift)]
    write_case(root, 'legacy_cnn_opset6', nodes, [('x', x)], [('y', y)], 6, inits)


def main(argv):
    root = argv[0] if argv else 'tests/fixtures/onnx-legacy'
    os.makedirs(root, exist_ok=True)
    binary_case(root, 'add_bcast_axis1_opset6', 'Add', (2, 3, 4, 5), (3, 4), 6, axis=1)
    binary_case(root, 'add_bcast_axis2_consumed_opset1', 'Add', (2, 3, 4), (4,), 1, axis=2, consumed=True)
    binary_case(root, 'add_same_shape_opset6', 'Add', (3, 4), (3, 4), 6, broadcast=0)
    binary_case(root, 'add_same_shape_consumed_opset1', 'Add', (2, 3), (2, 3), 1, broadcast=0, consumed=True)
    binary_case(root, 'sub_bcast_suffix_opset6', 'Sub', (2, 3, 4, 5), (4, 5), 6)
    binary_case(root, 'sub_bcast_axis0_opset6', 'Sub', (2, 3, 4, 5), (2, 3), 6, axis=0)
    binary_case(root, 'mul_bcast_axis0_opset6', 'Mul', (2, 3, 4), (2,), 6, axis=0)
    binary_case(root, 'mul_bcast_ones_axis1_opset6', 'Mul', (2, 3, 4, 5), (3, 1), 6, axis=1)
    binary_case(root, 'mul_bcast_suffix_consumed_opset1', 'Mul', (3, 4, 5), (5,), 1, consumed=True)
    binary_case(root, 'div_bcast_scalar_opset6', 'Div', (3, 4), (1, 1), 6)
    binary_case(root, 'div_bcast_axis1_opset6', 'Div', (2, 3, 4), (3,), 6, axis=1)
    binary_case(root, 'pow_bcast_suffix_opset1', 'Pow', (3, 4), (4,), 1, positive=True)
    binary_case(root, 'pow_bcast_axis0_opset6', 'Pow', (2, 3), (2,), 6, axis=0, positive=True)
    gemm_case(root, 'gemm_bcast_vector_opset6', 6, (3, 4), (5, 4), (5,), True, trans_b=1, alpha=0.5, beta=2.0)
    gemm_case(root, 'gemm_full_c_opset6', 6, (4, 3), (4, 5), (3, 5), False, trans_a=1)
    gemm_case(root, 'gemm_bcast_scalar_opset1', 1, (2, 3), (3, 4), (1,), True, beta=0.5)
    gemm_case(root, 'gemm_bcast_column_opset6', 6, (3, 4), (4, 2), (3, 1), True)
    bn_case(root, 'batchnorm_consumed_opset1', 1, (2, 3, 4, 5), 1e-5, is_test=1, spatial=1, consumed_inputs=[0, 0, 0, 1, 1])
    bn_case(root, 'batchnorm_is_test_opset6', 6, (2, 3, 4, 5), 1e-3, is_test=1, momentum=0.9)
    bn_case(root, 'batchnorm_is_test_unset_opset6', 6, (2, 4, 3), 1e-5)
    bn_case(root, 'batchnorm_spatial_opset7', 7, (2, 3, 4, 5), 1e-4, spatial=1)
    bn_case(root, 'batchnorm_opset9', 9, (2, 3, 4), 1e-5, momentum=0.99)
    dropout_case(root, 'dropout_is_test_consumed_opset1', 1, is_test=1, ratio=0.3, consumed_inputs=[0])
    dropout_case(root, 'dropout_is_test_opset6', 6, is_test=1, ratio=0.2)
    dropout_case(root, 'dropout_ratio_opset7', 7, ratio=0.5)
    legacy_cnn(root)
    total = sum(os.path.getsize(os.path.join(p, n)) for p, _, ns in os.walk(root) for n in ns)
    print(f'{len(os.listdir(root))} cases, {total} bytes in {root}')


if __name__ == '__main__':
    main(sys.argv[1:])
