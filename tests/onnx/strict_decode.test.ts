import { describe, expect, it } from 'vitest';
import { OnnxError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { MAX_OPSET, OnnxGraph } from '../../src/io/onnx/graph.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { onnx } from '../../src/io/onnx/proto/onnx.js';
import { decodeTensor } from '../../src/io/onnx/tensor_proto.js';
import { modelProto, node } from './build.js';

/**
 * Strict decoding: a model or TensorProto that is ambiguous or that the engine would read
 * differently from what it says is refused with an OnnxError naming the tensor or node —
 * never silently reinterpreted.
 */

const T = onnx.TensorProto.DataType;

/** A one-Relu model whose graph can be edited before it is encoded. */
function reluModel(edit: (m: onnx.ModelProto) => void = () => {}): Uint8Array {
  const m = modelProto({ nodes: [node('Add', ['x', 'k'], ['a']), node('Relu', ['a'], ['y'])], inputs: [{ name: 'x', shape: [2] }], outputs: [{ name: 'y', shape: [2] }], initializers: { k: Tensor.fromArray([1, -1], [2]) } });
  edit(m);
  return new Uint8Array(onnx.ModelProto.encode(m).finish());
}

/** The initializer `k` of reluModel replaced by `props`. */
function withInit(props: onnx.TensorProto.$Properties): Uint8Array {
  return reluModel((m) => {
    m.graph!.initializer = [new onnx.TensorProto({ name: 'k', ...props })];
  });
}

function loadError(bytes: Uint8Array, opts: Parameters<typeof loadOnnxSync>[1] = {}): Error {
  try {
    loadOnnxSync(bytes, opts);
  } catch (e) {
    return e as Error;
  }
  throw new Error('the model loaded');
}

const f32Bytes = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

describe('strict TensorProto decoding', () => {
  it('the unedited model loads and runs (the crafted cases below differ from it in one field)', () => {
    const out = loadOnnxSync(reluModel()).runSync(Tensor.fromArray([0.5, 0.5], [2]));
    expect([...out.y!.f32()]).toEqual([1.5, 0]);
  });

  it('refuses raw_data together with typed data, naming the tensor', () => {
    const e = loadError(withInit({ dims: [2], data_type: T.FLOAT, raw_data: f32Bytes([1, 2]), float_data: [1, 2] }));
    expect(e).toBeInstanceOf(OnnxError);
    expect(e.message).toMatch(/initializer 'k'.*both raw_data and float_data/);
  });

  it('refuses values in the typed field of another element type', () => {
    const e = loadError(withInit({ dims: [2], data_type: T.FLOAT, int32_data: [1, 2] }));
    expect(e).toBeInstanceOf(OnnxError);
    expect(e.message).toMatch(/'k'.*FLOAT tensor carries int32_data.*float_data/);
  });

  it('refuses data for a tensor with no elements (raw or typed)', () => {
    const typed = loadError(withInit({ dims: [0], data_type: T.FLOAT, float_data: [7] }));
    expect(typed).toBeInstanceOf(OnnxError);
    expect(typed.message).toMatch(/'k'.*dims \[0\] hold no elements.*float_data has 1 values/);
    const raw = loadError(withInit({ dims: [2, 0], data_type: T.FLOAT, raw_data: f32Bytes([7]) }));
    expect(raw).toBeInstanceOf(OnnxError);
    expect(raw.message).toMatch(/'k'.*dims \[2, 0\] hold no elements.*raw_data has 4 bytes/);
    // An empty tensor without data is fine.
    expect(decodeTensor(onnx.TensorProto.encode({ dims: [0], data_type: T.FLOAT }).finish()).shape).toEqual([0]);
  });

  it.each([
    ['UINT8', 300, T.UINT8, '0..255'],
    ['UINT8', -1, T.UINT8, '0..255'],
    ['INT8', 128, T.INT8, '-128..127'],
    ['UINT16', 65536, T.UINT16, '0..65535'],
    ['INT16', -32769, T.INT16, '-32768..32767'],
    ['BOOL', 2, T.BOOL, '0..1'],
    ['FLOAT16', 70000, T.FLOAT16, '0..65535'],
  ])('refuses a %s value of %d instead of wrapping it', (name, v, type, range) => {
    const bytes = onnx.TensorProto.encode({ name: 't', dims: [2], data_type: type, int32_data: [1, v] }).finish();
    expect(() => decodeTensor(bytes, 'input.pb')).toThrow(OnnxError);
    expect(() => decodeTensor(bytes, 'input.pb')).toThrow(new RegExp(`input.pb 't': value 1 is ${v}, outside the ${name} range ${range}`));
  });

  it('keeps in-range narrow values exactly (the range check rejects only what would wrap)', () => {
    const bytes = onnx.TensorProto.encode({ dims: [3], data_type: T.UINT8, int32_data: [0, 255, 44] }).finish();
    const t = decodeTensor(bytes);
    expect(t.dtype).toBe('uint8');
    expect([...t.dataSync()]).toEqual([0, 255, 44]);
  });

  it('refuses a raw BOOL byte other than 0 or 1', () => {
    const bytes = onnx.TensorProto.encode({ dims: [2], data_type: T.BOOL, raw_data: new Uint8Array([1, 2]) }).finish();
    expect(() => decodeTensor(bytes)).toThrow(/BOOL value 1 is byte 2/);
  });

  it('refuses external data together with raw_data, even when external data could be read', () => {
    let reads = 0;
    const readExternal = (_l: string, _o: number, length: number) => {
      reads++;
      return new Uint8Array(length);
    };
    const external = { data_location: onnx.TensorProto.DataLocation.EXTERNAL, external_data: [new onnx.StringStringEntryProto({ key: 'location', value: 'k.bin' })] };
    const e = loadError(withInit({ dims: [2], data_type: T.FLOAT, raw_data: f32Bytes([1, 2]), ...external }), { readExternal });
    expect(e).toBeInstanceOf(OnnxError);
    expect(e.message).toMatch(/'k'.*both external data and raw_data/);
    expect(reads).toBe(0); // refused before anything is read
    // The same tensor without raw_data reads its bytes from the file.
    loadOnnxSync(withInit({ dims: [2], data_type: T.FLOAT, ...external }), { readExternal });
    expect(reads).toBe(1);
  });

  it('refuses external_data entries on a tensor whose data_location is not EXTERNAL', () => {
    const e = loadError(withInit({ dims: [2], data_type: T.FLOAT, float_data: [1, 2], external_data: [new onnx.StringStringEntryProto({ key: 'location', value: 'k.bin' })] }));
    expect(e.message).toMatch(/'k'.*external_data entries but data_location is not EXTERNAL/);
  });
});

describe('strict model decoding', () => {
  const withOpset = (version: number, domain = '') =>
    reluModel((m) => {
      m.opset_import = [new onnx.OperatorSetIdProto({ domain, version })];
    });

  it(`refuses an ai.onnx opset newer than ${MAX_OPSET}, naming the newest known`, () => {
    for (const [v, domain] of [[99, ''], [MAX_OPSET + 1, 'ai.onnx']] as const) {
      const e = loadError(withOpset(v, domain));
      expect(e).toBeInstanceOf(OnnxError);
      expect(e.message).toContain(`opset import of 'ai.onnx': version ${v} is newer than the newest this engine knows (${MAX_OPSET})`);
    }
    // The newest known opset itself loads.
    expect(OnnxGraph.decode(withOpset(MAX_OPSET)).opsets.get('')).toBe(MAX_OPSET);
  });

  it('refuses an opset imported twice or a version below 1', () => {
    const twice = reluModel((m) => {
      m.opset_import = [new onnx.OperatorSetIdProto({ domain: '', version: 17 }), new onnx.OperatorSetIdProto({ domain: 'ai.onnx', version: 13 })];
    });
    expect(loadError(twice).message).toMatch(/opset import of 'ai.onnx' appears twice \(versions 17 and 13\)/);
    expect(loadError(withOpset(-3)).message).toMatch(/version -3 is not a positive integer/);
  });

  it.each(['_activation', '_alpha', '_min'])('refuses a model that sets the internal attribute %s', (attr) => {
    const m = modelProto({
      nodes: [node('Conv', ['x', 'w'], ['y'], { kernel_shape: [1, 1], [attr]: attr === '_activation' ? 'relu' : 0.5 }, 'stem')],
      inputs: [{ name: 'x', shape: [1, 1, 2, 2] }],
      outputs: [{ name: 'y' }],
      initializers: { w: Tensor.fromArray([2], [1, 1, 1, 1]) },
    });
    const e = loadError(new Uint8Array(onnx.ModelProto.encode(m).finish()));
    expect(e).toBeInstanceOf(OnnxError);
    expect(e.message).toContain(`Conv node 'stem' sets attribute '${attr}'; names starting with '_' are reserved`);
  });

  it('refuses a graph output declared twice', () => {
    const bytes = reluModel((m) => {
      const outs = m.graph!.output ?? [];
      m.graph!.output = [...outs, ...outs];
    });
    expect(loadError(bytes).message).toMatch(/graph output 'y' is declared twice/);
  });

  it("an output named '__proto__' and an input named 'constructor' are ordinary entries", () => {
    const m = modelProto({
      nodes: [node('Relu', ['constructor'], ['__proto__']), node('Neg', ['constructor'], ['toString'])],
      inputs: [{ name: 'constructor', shape: [3] }],
      outputs: [{ name: '__proto__', shape: [3] }, { name: 'toString', shape: [3] }],
    });
    const model = loadOnnxSync(new Uint8Array(onnx.ModelProto.encode(m).finish()));
    const x = Tensor.fromArray([-1, 0, 2], [3]);
    for (const out of [model.runSync({ constructor: x }), model.runSync(x)]) {
      expect(Object.getPrototypeOf(out)).toBeNull();
      expect(Object.keys(out)).toEqual(['__proto__', 'toString']);
      expect(Object.hasOwn(out, '__proto__')).toBe(true);
      const get = (name: string) => out[name]!;
      expect(get('__proto__')).toBeInstanceOf(Tensor);
      expect([...get('__proto__').f32()]).toEqual([0, 0, 2]);
      expect([...get('toString').f32()]).toEqual([1, -0, -2]);
    }
    // Nothing leaked onto the shared prototype.
    expect(({} as Record<string, unknown>).shape).toBeUndefined();
  });

  it("a feed object without the input does not pick up Object.prototype's 'constructor'", () => {
    const m = modelProto({ nodes: [node('Relu', ['constructor'], ['y'])], inputs: [{ name: 'constructor', shape: [1] }], outputs: [{ name: 'y' }] });
    const model = loadOnnxSync(new Uint8Array(onnx.ModelProto.encode(m).finish()));
    expect(() => model.runSync({})).toThrow(/input 'constructor' is missing/);
  });

  describe('pool pads must be smaller than the kernel', () => {
    const pool = (op: string, kernel: number[], pads: number[]) => {
      const m = modelProto({ nodes: [node(op, ['x'], ['y'], { kernel_shape: kernel, pads }, 'pool')], inputs: [{ name: 'x', shape: [1, 1, 4, 4] }], outputs: [{ name: 'y' }] });
      return new Uint8Array(onnx.ModelProto.encode(m).finish());
    };

    it.each([
      ['MaxPool', [2, 2], [0, 0, 2, 0], 'pads[2] = 2 must be smaller than kernel_shape[0] = 2'],
      ['MaxPool', [3, 1], [0, 1, 0, 0], 'pads[1] = 1 must be smaller than kernel_shape[1] = 1'],
      ['AveragePool', [2, 2], [100000, 0, 0, 0], 'pads[0] = 100000 must be smaller than kernel_shape[0] = 2'],
    ])('%s kernel %j pads %j is refused at load', (op, kernel, pads, msg) => {
      const e = loadError(pool(op, kernel, pads));
      expect(e).toBeInstanceOf(OnnxError);
      expect(e.message).toContain(`${op} node 'pool': ${msg}`);
    });

    it('pads of kernel − 1 run', () => {
      const out = loadOnnxSync(pool('MaxPool', [2, 2], [1, 1, 1, 1])).runSync(Tensor.fromArray(Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]));
      expect(out.y!.shape).toEqual([1, 1, 5, 5]);
    });
  });
});
