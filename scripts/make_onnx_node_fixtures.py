#!/usr/bin/python3
"""Regenerates ONNX's own backend node tests for selected operators into tests/fixtures/onnx-node/.

ONNX ships the generators (onnx/backend/test/case/node/*.py: export_* functions calling
`expect(...)`) but Debian's python3-onnx does not ship the data. This runs those generators
through onnx's collector (onnx.backend.test.case.node.collect_testcases) and writes each case in
the backend-test layout the conformance command reads: <case>/model.onnx and
<case>/test_data_set_0/{input,output}_K.pb, exactly as onnx.backend.test.cmd_tools does.

Usage: /usr/bin/python3 scripts/make_onnx_node_fixtures.py [GROUP]   (default: structure)
       /usr/bin/python3 scripts/make_onnx_node_fixtures.py OUT_DIR --ops Slice,Split,...
A group writes the cases of its operators (GROUPS below) to tests/fixtures/onnx-node[-GROUP].
The data come from numpy's default generator, which the generators seed themselves where they
use random values (np.random.seed is set here too, so a rerun gives the same files).
"""
import os
import shutil
import sys

import numpy as np

# The 1.12 generators still use numpy's removed aliases (np.float, np.bool, ...).
for _alias, _type in (('float', float), ('int', int), ('bool', bool), ('object', object), ('str', str)):
    if _alias not in np.__dict__:
        setattr(np, _alias, _type)

import onnx  # noqa: E402
from onnx import numpy_helper
from onnx.backend.test.case import node as node_test

OPS = [
    'Slice', 'Split', 'LayerNormalization', 'ConstantOfShape', 'LRN', 'Sum', 'Max', 'Min', 'Mean', 'Log',
    'LogSoftmax', 'Expand', 'Tile', 'Where', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not',
    'And', 'Or', 'Xor', 'Cast', 'CastLike', 'Range', 'Size',
    'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Softplus', 'Softsign', 'Elu', 'Selu', 'Celu', 'PRelu',
    'Mish', 'ThresholdedRelu', 'InstanceNormalization',
]

# Each group has its own folder (tests/fixtures/onnx-node for 'structure', onnx-node-GROUP for the
# others) and its own test file with the cases expected to fail.
GROUPS = {
    'structure': OPS,
    # Gelu is newer than ONNX 1.12: its cases come from scripts/make_newer_node_fixtures.py (PyTorch; Mish too).
    'layers': ['Resize', 'Upsample', 'ConvTranspose'],
    'quant': ['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger'],
    # The operators the engine ran before the groups above: its CNN core.
    'core': [
        'Abs', 'Add', 'AveragePool', 'BatchNormalization', 'Clip', 'Concat', 'Constant', 'Conv', 'Div', 'Dropout', 'Erf',
        'Exp', 'Flatten', 'Gather', 'Gemm', 'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity',
        'LeakyRelu', 'MatMul', 'MaxPool', 'Mul', 'Neg', 'Pad', 'Pow', 'Reshape', 'ReduceMax', 'ReduceMean', 'ReduceMin',
        'ReduceSum', 'Relu', 'Shape', 'Sigmoid', 'Softmax', 'Sqrt', 'Squeeze', 'Sub', 'Tanh', 'Transpose', 'Unsqueeze',
    ],
    'select': ['ArgMax', 'ArgMin', 'TopK', 'GatherElements', 'Einsum', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp', 'ReduceProd'],
    'scatter': ['Mod', 'ScatterND'],
}

# Per-case size cap: the few generators with large random inputs are left out to keep the folder small.
MAX_CASE_BYTES = 192 * 1024


def write_case(case, root):
    out = os.path.join(root, case.name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, 'model.onnx'), 'wb') as f:
        f.write(case.model.SerializeToString())
    for i, (inputs, outputs) in enumerate(case.data_sets):
        d = os.path.join(out, f'test_data_set_{i}')
        os.makedirs(d)
        for j, x in enumerate(inputs):
            with open(os.path.join(d, f'input_{j}.pb'), 'wb') as f:
                f.write(numpy_helper.from_array(x, case.model.graph.input[j].name).SerializeToString())
        for j, y in enumerate(outputs):
            with open(os.path.join(d, f'output_{j}.pb'), 'wb') as f:
                f.write(numpy_helper.from_array(y, case.model.graph.output[j].name).SerializeToString())
    return sum(os.path.getsize(os.path.join(p, n)) for p, _, ns in os.walk(out) for n in ns)


def main(argv):
    root = 'tests/fixtures/onnx-node'
    ops = OPS
    args = list(argv)
    if '--ops' in args:
        k = args.index('--ops')
        ops = args[k + 1].split(',')
        del args[k:k + 2]
    if args and args[0] in GROUPS:
        ops = GROUPS[args[0]]
        root = root if args[0] == 'structure' else f'{root}-{args[0]}'
    elif args:
        root = args[0]
    os.makedirs(root, exist_ok=True)
    total = 0
    seen = set()
    np.random.seed(0)
    # The generators run when their modules are imported (once per process), so collect every
    # case and keep those whose single node is one of `ops`, plus their '_expanded' forms.
    cases = node_test.collect_testcases(None)
    wanted = {c.name for c in cases if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in ops}
    for case in cases:
        base = case.name[: -len('_expanded')] if case.name.endswith('_expanded') else case.name
        if base not in wanted or case.name in seen:
            continue
        seen.add(case.name)
        # Scalars (Range's start/limit/delta) arrive as numpy scalars: write them as 0-d tensors.
        case.data_sets = [([np.asarray(x) if isinstance(x, np.generic) else x for x in i], [np.asarray(y) if isinstance(y, np.generic) else y for y in o]) for i, o in case.data_sets]
        if not all(isinstance(x, np.ndarray) for s in case.data_sets for part in s for x in part):
            print(f'skip {case.name}: non-tensor inputs', file=sys.stderr)
            continue
        size = write_case(case, root)
        if size > MAX_CASE_BYTES:
            shutil.rmtree(os.path.join(root, case.name))
            print(f'skip {case.name}: {size} bytes (over the per-case cap)', file=sys.stderr)
            continue
        total += size
    print(f'{len(seen)} cases, {total} bytes in {root}')


if __name__ == '__main__':
    main(sys.argv[1:])
