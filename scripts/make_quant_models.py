#!/usr/bin/env python3
"""Writes tests/fixtures/quant-models/: small quantized CNNs in the backend-test layout
(<name>/model.onnx, test_data_set_0/{input,output}_0.pb, meta.json).

- qdq_cnn_opset13: a tiny CNN (conv-relu, conv-relu, global pool, linear) quantized with PyTorch's
  eager static quantization (fbgemm qconfig: uint8 activations per tensor, int8 weights per output
  channel) and exported by torch.onnx as a QDQ graph (QuantizeLinear/DequantizeLinear around
  float Conv/Gemm).

The expected outputs are computed by a small numpy evaluator of the exported graph that follows
the ONNX spec (round half to even, saturation, float32 arithmetic), not by PyTorch: PyTorch's
quantized kernels requantize from integer accumulators, so they may differ from the QDQ graph by
a quantum where a value sits near a rounding boundary. How far they differ is recorded in
meta.json (torch_max_diff_quanta) as a sanity check of the export.

Usage: /usr/bin/python3 scripts/make_quant_models.py [out_dir]
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

warnings.filterwarnings('ignore')


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(12, 10)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.fc(self.flat(self.pool(x)))
        return self.dequant(x)


# ---- a numpy evaluator of the ops the export uses, following the ONNX spec -----------------------

def quantize(x, scale, zp, axis):
    zdtype = zp.dtype if zp is not None else np.dtype(np.uint8)
    if scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp is not None else None
    q = np.rint((x / scale).astype(np.float32)).astype(np.float64)
    if zp is not None:
        q += zp.astype(np.float64)
    info = np.iinfo(zdtype)
    return np.clip(q, info.min, info.max).astype(zdtype)


def dequantize(x, scale, zp, axis):
    if scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp is not None else None
    d = x.astype(np.float64) - (zp.astype(np.float64) if zp is not None else 0)
    return (d * scale.astype(np.float64)).astype(np.float32)


def conv(x, w, b, strides, pads, dilations, group):
    assert group == 1 and list(dilations) == [1, 1]
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - kw) // strides[1] + 1
    y = np.zeros((n, m, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + strides[0] * oh:strides[0], kx:kx + strides[1] * ow:strides[1]]
            y += np.einsum('nchw,mc->nmhw', patch, w[:, :, ky, kx].astype(np.float64))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y.astype(np.float32)


def conv_int(X, W, strides, pads):
    """Exact integer cross-correlation (int64) of shifted inputs; padding is zero after the shift."""
    n, c, h, wd = X.shape
    m, _, kh, kw = W.shape
    xp = np.pad(X, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - kw) // strides[1] + 1
    y = np.zeros((n, m, oh, ow), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + strides[0] * oh:strides[0], kx:kx + strides[1] * ow:strides[1]]
            y += np.einsum('nchw,mc->nmhw', patch, W[:, :, ky, kx])
    return y


def evaluate(model, feeds):
    env = dict(feeds)
    for init in model.graph.initializer:
        env[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == 'Constant':
            out = numpy_helper.to_array(a['value'])
        elif op == 'QuantizeLinear':
            out = quantize(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get('axis', 1))
        elif op == 'DequantizeLinear':
            out = dequantize(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get('axis', 1))
        elif op == 'Cast':
            out = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a['to']])
        elif op == 'ConstantOfShape':
            v = numpy_helper.to_array(a['value']) if 'value' in a else np.zeros(1, np.float32)
            out = np.full(tuple(ins[0]), v.reshape(-1)[0], v.dtype)
        elif op == 'Conv':
            k = ins[1].shape[2:]
            out = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get('strides', [1, 1]), a.get('pads', [0, 0, 0, 0]),
                       a.get('dilations', [1, 1]), a.get('group', 1))
            assert list(a.get('kernel_shape', k)) == list(k)
        elif op == 'Relu':
            out = np.maximum(ins[0], 0).astype(ins[0].dtype)
        elif op == 'GlobalAveragePool':
            out = ins[0].astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)
        elif op == 'Flatten':
            ax = a.get('axis', 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == 'Gemm':
            A = ins[0].T if a.get('transA', 0) else ins[0]
            B = ins[1].T if a.get('transB', 0) else ins[1]
            y = a.get('alpha', 1.0) * (A.astype(np.float64) @ B.astype(np.float64))
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get('beta', 1.0) * ins[2].astype(np.float64)
            out = y.astype(np.float32)
        elif op == 'QLinearConv':
            x, xs, xz, w, ws, wz, ys, yz = ins[:8]
            bias = ins[8] if len(ins) > 8 else None
            X = x.astype(np.int64) - xz.astype(np.int64)
            W = w.astype(np.int64) - wz.astype(np.int64).reshape(-1, 1, 1, 1)
            acc = conv_int(X, W, a.get('strides', [1, 1]), a.get('pads', [0, 0, 0, 0]))
            if bias is not None:
                acc = acc + bias.astype(np.int64).reshape(1, -1, 1, 1)
            # The multiplier in float32 (x_scale·w_scale / y_scale), the int32 accumulator scaled in float64.
            mult = ((xs * ws).astype(np.float32) / ys).astype(np.float32).astype(np.float64).reshape(1, -1, 1, 1)
            info = np.iinfo(yz.dtype)
            out = np.clip(np.rint(acc.astype(np.int32).astype(np.float64) * mult) + float(yz), info.min, info.max).astype(yz.dtype)
        elif op == 'MatMulInteger':
            A = ins[0].astype(np.int64) - (ins[2].astype(np.int64) if len(ins) > 2 and ins[2] is not None else 0)
            B = ins[1].astype(np.int64) - (ins[3].astype(np.int64) if len(ins) > 3 and ins[3] is not None else 0)
            out = (A @ B).astype(np.int32)
        elif op in ('Mul', 'Add'):
            out = (np.multiply if op == 'Mul' else np.add)(ins[0], ins[1]).astype(np.float32)
        else:
            raise SystemExit(f'evaluate: no numpy rule for {op}')
        env[node.output[0]] = out
    return [env[o.name] for o in model.graph.output]


def write_case(root, name, model, inputs, outputs, meta):
    out = os.path.join(root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, 'test_data_set_0'))
    onnx.save(model, os.path.join(out, 'model.onnx'))
    for kind, arrays, infos in (('input', inputs, model.graph.input), ('output', outputs, model.graph.output)):
        for j, x in enumerate(arrays):
            with open(os.path.join(out, 'test_data_set_0', f'{kind}_{j}.pb'), 'wb') as f:
                f.write(numpy_helper.from_array(x, infos[j].name).SerializeToString())
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    return sum(os.path.getsize(os.path.join(p, n)) for p, _, ns in os.walk(out) for n in ns)


def qdq_cnn(root):
    import io
    m = calibrated_cnn()
    x = torch.randn(2, 3, 16, 16)
    f = io.BytesIO()
    torch.onnx.export(m, x, f, opset_version=13, input_names=['x'], output_names=['y'])
    model = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(model)
    (y,) = evaluate(model, {'x': x.numpy()})
    with torch.no_grad():
        y_torch = m(x).numpy()
    out_scale = float(m.fc.scale)
    diff_q = float(np.abs(y - y_torch).max() / out_scale)
    assert diff_q <= 2.01, f'the QDQ graph and PyTorch differ by {diff_q} output quanta'
    counts = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    meta = {
        'description': 'tiny CNN, PyTorch eager static quantization (fbgemm qconfig), exported as QDQ at opset 13',
        'torch': torch.__version__,
        'output_scale': out_scale,
        'torch_max_diff_quanta': diff_q,
        'op_type_counts': counts,
        # The expected outputs follow the spec in float32/float64: an intermediate value within float32
        # rounding of a quantization tie may requantize one step apart, so one output quantum of slack.
        'recommended_tolerance': {'abs': out_scale * 1.01, 'rel': 0},
    }
    return write_case(root, 'qdq_cnn_opset13', model, [x.numpy()], [y], meta)


def calibrated_cnn():
    torch.manual_seed(0)
    m = TinyCnn().eval()
    m.qconfig = torch.ao.quantization.get_default_qconfig('fbgemm')
    torch.ao.quantization.fuse_modules(m, [['conv1', 'relu1'], ['conv2', 'relu2']], inplace=True)
    torch.ao.quantization.prepare(m, inplace=True)
    with torch.no_grad():
        for _ in range(16):
            m(torch.randn(8, 3, 16, 16))
    torch.ao.quantization.convert(m, inplace=True)
    return m


def qoperator_cnn(root):
    """The same quantized CNN written in the operator form (QLinearConv for the convs, with int32
    biases; MatMulInteger plus a float rescale and bias for the linear layer), from the quantized
    PyTorch modules' own integer weights and scales."""
    m = calibrated_cnn()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 16)
    T = TensorProto
    inits = []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    const('x_s', np.float32(m.quant.scale.item()))
    const('x_zp', np.uint8(m.quant.zero_point.item()))
    nodes = [helper.make_node('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'])]
    prev, prev_s, prev_zp = 'xq', m.quant.scale.item(), 'x_zp'
    for name, stride in (('conv1', 1), ('conv2', 2)):
        conv = getattr(m, name)
        w = conv.weight()
        ws = w.q_per_channel_scales().numpy().astype(np.float32)
        const(f'{name}_w', w.int_repr().numpy())
        const(f'{name}_ws', ws)
        const(f'{name}_wzp', w.q_per_channel_zero_points().numpy().astype(np.int8))
        const(f'{name}_b', np.round(conv.bias().detach().numpy().astype(np.float64) / (prev_s * ws.astype(np.float64))).astype(np.int32))
        const(f'{name}_ys', np.float32(conv.scale))
        const(f'{name}_yzp', np.uint8(conv.zero_point))
        nodes.append(helper.make_node('QLinearConv', [prev, 'x_s' if name == 'conv1' else 'conv1_ys', prev_zp, f'{name}_w', f'{name}_ws', f'{name}_wzp',
                                                      f'{name}_ys', f'{name}_yzp', f'{name}_b'], [f'{name}_q'], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=[stride, stride]))
        prev, prev_s, prev_zp = f'{name}_q', float(conv.scale), f'{name}_yzp'
    fc = m.fc
    fw = fc.weight()
    fws = fw.q_per_channel_scales().numpy().astype(np.float32)
    const('fc_w', np.ascontiguousarray(fw.int_repr().numpy().T))
    const('fc_wzp', fw.q_per_channel_zero_points().numpy().astype(np.int8))
    const('fc_mult', (np.float32(prev_s) * fws).astype(np.float32))
    const('fc_b', fc.bias().detach().numpy().astype(np.float32))
    const('fc_ys', np.float32(fc.scale))
    const('fc_yzp', np.uint8(fc.zero_point))
    nodes += [
        helper.make_node('DequantizeLinear', [prev, 'conv2_ys', prev_zp], ['c2']),
        helper.make_node('GlobalAveragePool', ['c2'], ['p']),
        helper.make_node('Flatten', ['p'], ['f'], axis=1),
        helper.make_node('QuantizeLinear', ['f', 'conv2_ys', 'conv2_yzp'], ['fq']),
        helper.make_node('MatMulInteger', ['fq', 'fc_w', 'conv2_yzp', 'fc_wzp'], ['acc']),
        helper.make_node('Cast', ['acc'], ['accf'], to=T.FLOAT),
        helper.make_node('Mul', ['accf', 'fc_mult'], ['lin']),
        helper.make_node('Add', ['lin', 'fc_b'], ['lb']),
        helper.make_node('QuantizeLinear', ['lb', 'fc_ys', 'fc_yzp'], ['yq']),
        helper.make_node('DequantizeLinear', ['yq', 'fc_ys', 'fc_yzp'], ['y']),
    ]
    graph = helper.make_graph(nodes, 'qoperator_cnn', [helper.make_tensor_value_info('x', T.FLOAT, [2, 3, 16, 16])],
                              [helper.make_tensor_value_info('y', T.FLOAT, [2, 10])], inits)
    model = helper.make_model(graph, producer_name='make_quant_models', opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    (y,) = evaluate(model, {'x': x.numpy()})
    with torch.no_grad():
        y_torch = m(x).numpy()
    out_scale = float(fc.scale)
    diff_q = float(np.abs(y - y_torch).max() / out_scale)
    # PyTorch requantizes from its own integer kernels: a few quanta apart at most.
    assert diff_q <= 3.01, f'the operator-form graph and PyTorch differ by {diff_q} output quanta'
    meta = {
        'description': 'the tiny CNN of qdq_cnn_opset13 in operator form: QLinearConv (per-channel int8 weights, int32 bias), MatMulInteger',
        'torch': torch.__version__,
        'output_scale': out_scale,
        'torch_max_diff_quanta': diff_q,
        # One output quantum of slack, as for the QDQ model (a float rescale before the last QuantizeLinear).
        'recommended_tolerance': {'abs': out_scale * 1.01, 'rel': 0},
    }
    return write_case(root, 'qoperator_cnn_opset13', model, [x.numpy()], [y], meta)


def main(argv):
    root = argv[0] if argv else 'tests/fixtures/quant-models'
    os.makedirs(root, exist_ok=True)
    print(f'qdq_cnn_opset13: {qdq_cnn(root)} bytes')
    print(f'qoperator_cnn_opset13: {qoperator_cnn(root)} bytes')


if __name__ == '__main__':
    main(sys.argv[1:])
