import { describe, expect, it } from 'vitest';
import { OnnxError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { MAX_IR_VERSION } from '../../src/io/onnx/graph.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { onnx } from '../../src/io/onnx/proto/onnx.js';
import { modelProto, node } from '../onnx/build.js';

/**
 * Class 9, strict decoding: an attribute whose value sits in another field than its declared
 * type's, a graph input whose declared type differs from its initializer's, and an IR version
 * newer than the engine reads are refused with an OnnxError naming the node, attribute or value.
 */

const A = onnx.AttributeProto.AttributeType;
const T = onnx.TensorProto.DataType;

/** LeakyRelu (alpha, a FLOAT) then Flatten (axis, an INT), with the edit applied before encoding. */
function model(edit: (m: onnx.ModelProto) => void = () => {}): Uint8Array {
  const m = modelProto({
    nodes: [node('LeakyRelu', ['x'], ['a'], { alpha: { float: 0.5 } }, 'leaky'), node('Flatten', ['a'], ['y'], { axis: 1 }, 'flat')],
    inputs: [{ name: 'x', shape: [1, 2] }],
    outputs: [{ name: 'y' }],
  });
  edit(m);
  return new Uint8Array(onnx.ModelProto.encode(m).finish());
}
const attr = (m: onnx.ModelProto, n: number) => m.graph!.node![n]!.attribute![0]! as Omit<onnx.AttributeProto, 'type'> & { type: number };
const setAttrs = (m: onnx.ModelProto, n: number, a: onnx.AttributeProto) => (m.graph!.node![n]!.attribute = [a]);

function loadError(bytes: Uint8Array): OnnxError {
  try {
    loadOnnxSync(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(OnnxError);
    return e as OnnxError;
  }
  throw new Error('the model loaded');
}

describe('attributes: the value is in the field of the declared type, and only there', () => {
  const cases: [string, (m: onnx.ModelProto) => void, RegExp][] = [
    ['INT with only f set', (m) => Object.assign(attr(m, 1), { i: undefined, f: 3 }) && delete (attr(m, 1) as { i?: unknown }).i, /Flatten node 'flat' attribute 'axis': declared INT but sets 'f' and not 'i'/],
    ['INT with i and f set', (m) => (attr(m, 1).f = 2), /Flatten node 'flat' attribute 'axis': declared INT but sets 'f'$/],
    ['FLOAT with only i set', (m) => (delete (attr(m, 0) as { f?: unknown }).f, (attr(m, 0).i = 1)), /LeakyRelu node 'leaky' attribute 'alpha': declared FLOAT but sets 'i' and not 'f'/],
    ['FLOAT with floats also set', (m) => (attr(m, 0).floats = [1, 2]), /attribute 'alpha': declared FLOAT but sets 'floats'/],
    ['FLOAT without any value', (m) => delete (attr(m, 0) as { f?: unknown }).f, /attribute 'alpha': declared FLOAT but has no value \(field 'f' is not set\)/],
    ['INTS with a string set', (m) => setAttrs(m, 1, new onnx.AttributeProto({ name: 'axis', type: A.INTS, ints: [1], s: new TextEncoder().encode('x') })), /attribute 'axis': declared INTS but sets 's'/],
    ['an unknown type number', (m) => (attr(m, 1).type = 99), /attribute 'axis': has an attribute type or field that this engine's ONNX schema does not know/],
    ['no type and two fields', (m) => setAttrs(m, 1, new onnx.AttributeProto({ name: 'axis', i: 1, f: 2 })), /attribute 'axis': has no type and sets 'f' and 'i'/],
  ];
  for (const [name, edit, want] of cases) {
    it(name, () => {
      expect(loadError(model(edit)).message).toMatch(want);
    });
  }

  it('well-formed attributes still load, typed or (old models) untyped', () => {
    const x = Tensor.fromArray([-2, 4], [1, 2]);
    expect(Array.from(loadOnnxSync(model()).runSync({ x }).y!.dataSync())).toEqual([-1, 4]);
    const untyped = model((m) => {
      attr(m, 0).type = 0;
      attr(m, 1).type = 0;
    });
    expect(Array.from(loadOnnxSync(untyped).runSync({ x }).y!.dataSync())).toEqual([-1, 4]);
    // An explicit INT 0 (the field set to its default) is a value, not a missing one.
    const zero = model((m) => setAttrs(m, 1, new onnx.AttributeProto({ name: 'axis', type: A.INT, i: 0 })));
    expect(loadOnnxSync(zero).runSync({ x }).y!.shape).toEqual([1, 2]);
  });
});

describe('a graph input and its initializer agree on the element type', () => {
  /** Add(x, k) where k is both a graph input (declared `declared`) and an initializer. */
  const withDefault = (declared: number, init: Tensor) =>
    (() => {
      const m = modelProto({ nodes: [node('Add', ['x', 'k'], ['y'])], inputs: [{ name: 'x', shape: [2] }, { name: 'k', shape: [2], elemType: declared }], outputs: [{ name: 'y' }], initializers: { k: init } });
      return new Uint8Array(onnx.ModelProto.encode(m).finish());
    })();

  it('refused when they differ, naming the value and both types', () => {
    expect(loadError(withDefault(T.INT64, Tensor.fromArray([1, 2], [2]))).message).toMatch(/graph input 'k' is declared INT64, but its initializer holds FLOAT/);
    expect(loadError(withDefault(T.DOUBLE, Tensor.fromArray([1, 2], [2]))).message).toMatch(/'k' is declared DOUBLE, but its initializer holds FLOAT/);
  });

  it('loads when they agree; the initializer is the default and a fed value overrides it', () => {
    const m = loadOnnxSync(withDefault(T.FLOAT, Tensor.fromArray([1, 2], [2])));
    expect(Array.from(m.runSync({ x: Tensor.fromArray([10, 20], [2]) }).y!.dataSync())).toEqual([11, 22]);
  });
});

describe('IR versions newer than the engine reads are refused', () => {
  it(`IR ${MAX_IR_VERSION} loads; ${MAX_IR_VERSION + 1} and 99 are refused`, () => {
    const ir = (v: number) => model((m) => (m.ir_version = v));
    expect(loadOnnxSync(ir(MAX_IR_VERSION)).graph.irVersion).toBe(MAX_IR_VERSION);
    for (const v of [MAX_IR_VERSION + 1, 99]) {
      expect(loadError(ir(v)).message).toMatch(new RegExp(`IR version ${v} is newer than the newest this engine reads \\(${MAX_IR_VERSION}\\)`));
    }
  });
});
