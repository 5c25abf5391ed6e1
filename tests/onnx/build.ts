/** Builds small ONNX models in memory for tests. */
import { Tensor } from '../../src/core/tensor.js';
import { onnx } from '../../src/io/onnx/proto/onnx.js';
import { dtypeToOnnx, tensorToProto } from '../../src/io/onnx/tensor_proto.js';

type Attr = number | number[] | string | Tensor | { floats: number[] } | { float: number };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, Attr>;
}

export interface ValueSpec {
  name: string;
  shape?: (number | string)[];
  elemType?: number;
}

export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, name?: string): NodeSpec {
  return { op, inputs, outputs, attrs, ...(name ? { name } : {}) };
}

function attribute(name: string, v: Attr): onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return Number.isInteger(v) ? new onnx.AttributeProto({ name, type: T.INT, i: v }) : new onnx.AttributeProto({ name, type: T.FLOAT, f: v });
  if (typeof v === 'string') return new onnx.AttributeProto({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return new onnx.AttributeProto({ name, type: T.INTS, ints: v });
  if (v instanceof Tensor) return new onnx.AttributeProto({ name, type: T.TENSOR, t: tensorToProto(v) });
  if ('float' in v) return new onnx.AttributeProto({ name, type: T.FLOAT, f: v.float });
  return new onnx.AttributeProto({ name, type: T.FLOATS, floats: v.floats });
}

function valueInfo(v: ValueSpec): onnx.ValueInfoProto {
  return new onnx.ValueInfoProto({
    name: v.name,
    type: new onnx.TypeProto({
      tensor_type: new onnx.TypeProto.Tensor({
        elem_type: v.elemType ?? dtypeToOnnx('float32'),
        ...(v.shape
          ? { shape: new onnx.TensorShapeProto({ dim: v.shape.map((d) => new onnx.TensorShapeProto.Dimension(typeof d === 'number' ? { dim_value: d } : { dim_param: d })) }) }
          : {}),
      }),
    }),
  });
}

export function modelProto(spec: {
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: Record<string, Tensor>;
  opset?: number;
}): onnx.ModelProto {
  return new onnx.ModelProto({
    ir_version: 8,
    producer_name: 'lightconv-tests',
    opset_import: [new onnx.OperatorSetIdProto({ domain: '', version: spec.opset ?? 17 })],
    graph: new onnx.GraphProto({
      name: 'test',
      node: spec.nodes.map(
        (n, i) =>
          new onnx.NodeProto({
            op_type: n.op,
            name: n.name ?? `n${i}`,
            input: n.inputs,
            output: n.outputs,
            domain: n.domain ?? '',
            attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
          }),
      ),
      initializer: Object.entries(spec.initializers ?? {}).map(([k, t]) => tensorToProto(t, k)),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
    }),
  });
}

/** Serialized model as a plain Uint8Array (not a Node Buffer, whose slice() would share memory). */
export function modelBytes(spec: Parameters<typeof modelProto>[0]): Uint8Array {
  return new Uint8Array(onnx.ModelProto.encode(modelProto(spec)).finish());
}
