import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OnnxError, ResourceLimitError, ShapeError, UnsupportedOpError, ValueError } from '../../src/core/errors.js';
import { setLimits } from '../../src/core/limits.js';
import { Tensor } from '../../src/core/tensor.js';
import { loadOnnx, loadOnnxSync, readOnnx } from '../../src/io/onnx/model.js';
import { onnx } from '../../src/io/onnx/proto/onnx.js';
import { decodeTensor, encodeTensor, tensorFromProto } from '../../src/io/onnx/tensor_proto.js';
import { modelBytes, modelProto, node } from './build.js';

const X = { name: 'x', shape: ['batch', 3] as (number | string)[] };
const Y = { name: 'y' };

describe('TensorProto decoding', () => {
  it('reads raw_data and every typed field, and round-trips', () => {
    const t = Tensor.fromArray([1.5, -2, 3.25, 0], [2, 2]);
    expect(decodeTensor(encodeTensor(t, 'w')).toArray()).toEqual([1.5, -2, 3.25, 0]);
    const i64 = Tensor.fromArray([-3, 2 ** 40, 0], [3], 'int64');
    const back = decodeTensor(encodeTensor(i64));
    expect(back.dtype).toBe('int64');
    expect(back.toArray()).toEqual([-3, 2 ** 40, 0]);
    expect(tensorFromProto(new onnx.TensorProto({ dims: [3], data_type: 1, float_data: [1, 2, 3] }), 't').toArray()).toEqual([1, 2, 3]);
    expect(tensorFromProto(new onnx.TensorProto({ dims: [2], data_type: 7, int64_data: [5, -7] }), 't').toArray()).toEqual([5, -7]);
    expect(tensorFromProto(new onnx.TensorProto({ dims: [2], data_type: 9, int32_data: [1, 0] }), 't').dtype).toBe('bool');
    expect(tensorFromProto(new onnx.TensorProto({ dims: [1], data_type: 10, int32_data: [0x3c00] }), 't').toArray()).toEqual([1]); // float16 1.0
    expect(tensorFromProto(new onnx.TensorProto({ dims: [], data_type: 11, double_data: [0.1] }), 't').toArray()).toEqual([0.1]);
  });

  it('rejects unsafe int64, length mismatches, bad dims and unknown types with typed errors', () => {
    const raw = new Uint8Array(new BigInt64Array([2n ** 60n]).buffer);
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 'big', dims: [1], data_type: 7, raw_data: raw }), 't')).toThrow(/'big'.*safe integer/);
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 'w', dims: [3], data_type: 1, raw_data: new Uint8Array(8) }), 't')).toThrow(OnnxError);
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 'w', dims: [4], data_type: 1, float_data: [1, 2] }), 't')).toThrow(/has 2 values.*need 4/);
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 'w', dims: [-1], data_type: 1 }), 't')).toThrow(ShapeError);
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 's', dims: [1], data_type: 8 }), 't')).toThrow(/STRING/);
    expect(() => decodeTensor(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(OnnxError);
  });

  it('checks the byte budget before allocating', () => {
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 'huge', dims: [1 << 20, 1 << 20], data_type: 1 }), 't')).toThrow(ResourceLimitError);
    expect(() => tensorFromProto(new onnx.TensorProto({ name: 'huge', dims: [2 ** 52, 4], data_type: 1 }), 't')).toThrow(ResourceLimitError);
  });
});

describe('graph validation', () => {
  it('reports every unsupported op at once', async () => {
    const bytes = modelBytes({
      nodes: [node('Relu', ['x'], ['a']), node('FancyOp', ['a'], ['b']), node('OtherOp', ['b'], ['c']), node('FancyOp', ['c'], ['y'])],
      inputs: [X],
      outputs: [Y],
    });
    const g = await readOnnx(bytes);
    expect(g.unsupported.map((u) => u.opType).sort()).toEqual(['FancyOp', 'OtherOp']);
    expect(g.unsupported.find((u) => u.opType === 'FancyOp')!.nodes).toEqual(['n1', 'n3']);
    const err = await loadOnnx(bytes).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect(err.message).toMatch(/2 unsupported ops: .*FancyOp.*'n1', 'n3'.*OtherOp/);
  });

  it('does not treat Object prototype names as ops', async () => {
    const g = await readOnnx(modelBytes({ nodes: [node('constructor', ['x'], ['y']), node('__proto__', ['x'], ['z'])], inputs: [X], outputs: [Y] }));
    expect(g.unsupported.map((u) => u.opType).sort()).toEqual(['__proto__', 'constructor']);
  });

  it('names duplicate values, missing inputs, cycles and missing outputs', async () => {
    await expect(readOnnx(modelBytes({ nodes: [node('Relu', ['x'], ['y']), node('Relu', ['x'], ['y'])], inputs: [X], outputs: [Y] }))).rejects.toThrow(/value 'y' is defined twice/);
    await expect(readOnnx(modelBytes({ nodes: [node('Relu', ['nope'], ['y'])], inputs: [X], outputs: [Y] }))).rejects.toThrow(/reads 'nope'/);
    await expect(readOnnx(modelBytes({ nodes: [node('Add', ['x', 'b'], ['a']), node('Relu', ['a'], ['b']), node('Relu', ['a'], ['y'])], inputs: [X], outputs: [Y] }))).rejects.toThrow(/cycle/);
    await expect(readOnnx(modelBytes({ nodes: [node('Relu', ['x'], ['a'])], inputs: [X], outputs: [Y] }))).rejects.toThrow(/graph output 'y' is not produced/);
    await expect(readOnnx(new Uint8Array([1, 2, 3, 4, 5]))).rejects.toThrow(OnnxError);
    await expect(readOnnx(new Uint8Array())).rejects.toThrow(/empty/);
    await expect(readOnnx('/nonexistent/model.onnx')).rejects.toThrow(/nonexistent.*cannot read/);
  });

  it('runs nodes stored out of order and frees intermediates', async () => {
    const bytes = modelBytes({
      nodes: [node('Relu', ['a'], ['y']), node('Add', ['x', 'x'], ['a'])],
      inputs: [X],
      outputs: [Y],
    });
    const m = await loadOnnx(bytes);
    const seen: string[] = [];
    const out = await m.run({ x: Tensor.fromArray([1, -2, 3], [1, 3]) }, { onNode: (n) => seen.push(n.opType) });
    expect(seen).toEqual(['Add', 'Relu']);
    expect(out.y!.toArray()).toEqual([2, 0, 6]);
  });

  it('checks feeds: names, dtype, rank, fixed and symbolic dims', async () => {
    const m = loadOnnxSync(
      modelBytes({
        nodes: [node('Add', ['x', 'z'], ['y'])],
        inputs: [X, { name: 'z', shape: ['batch', 3] }],
        outputs: [Y],
      }),
    );
    const ok = Tensor.zeros([2, 3]);
    await expect(m.run({ x: ok })).rejects.toThrow(/input 'z' is missing/);
    await expect(m.run({ x: ok, z: ok, w: ok })).rejects.toThrow(/unknown input 'w'/);
    await expect(m.run({ x: Tensor.zeros([2, 4]), z: ok })).rejects.toThrow(ShapeError);
    await expect(m.run({ x: Tensor.zeros([3, 3]), z: ok })).rejects.toThrow(/'batch'/);
    await expect(m.run({ x: Tensor.zeros([2, 3], 'int32'), z: ok })).rejects.toThrow(ValueError);
    await expect(m.run(ok)).rejects.toThrow(/2 inputs/);
  });

  it('names the node when a kernel rejects a shape at run time', async () => {
    const m = loadOnnxSync(modelBytes({ nodes: [node('Add', ['x', 'z'], ['y'], {}, 'the_add')], inputs: [{ name: 'x' }, { name: 'z' }], outputs: [Y] }));
    const err = await m.run({ x: Tensor.zeros([2, 3]), z: Tensor.zeros([4]) }).catch((e) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect(err.message).toMatch(/Add node 'the_add'.*\[2, 3\].*\[4\]/);
  });

  it('uses initializers as defaults for graph inputs of the same name', async () => {
    const spec = { nodes: [node('Add', ['x', 'b'], ['y'])], inputs: [X, { name: 'b', shape: [3] }], outputs: [Y], initializers: { b: Tensor.fromArray([1, 2, 3], [3]) } };
    const m = loadOnnxSync(modelBytes(spec));
    expect(m.inputs.map((i) => i.name)).toEqual(['x']);
    expect((await m.run({ x: Tensor.zeros([1, 3]) })).y!.toArray()).toEqual([1, 2, 3]);
    expect((await m.run({ x: Tensor.zeros([1, 3]), b: Tensor.fromArray([5, 5, 5], [3]) })).y!.toArray()).toEqual([5, 5, 5]);
  });
});

describe('external data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lightconv-ext-'));
  const outside = mkdtempSync(join(tmpdir(), 'lightconv-outside-'));
  writeFileSync(join(dir, 'weights.bin'), new Uint8Array(new Float32Array([0, 0, 10, 20, 30]).buffer));
  writeFileSync(join(outside, 'secret.bin'), new Uint8Array(64));
  symlinkSync(join(outside, 'secret.bin'), join(dir, 'link.bin'));

  const withExternal = (location: string, offset: number, length = 12) => {
    const m = modelProto({ nodes: [node('Add', ['x', 'b'], ['y'])], inputs: [X], outputs: [Y] });
    m.graph!.initializer = [
      new onnx.TensorProto({
        name: 'b',
        dims: [3],
        data_type: 1,
        data_location: onnx.TensorProto.DataLocation.EXTERNAL,
        external_data: [
          new onnx.StringStringEntryProto({ key: 'location', value: location }),
          new onnx.StringStringEntryProto({ key: 'offset', value: String(offset) }),
          new onnx.StringStringEntryProto({ key: 'length', value: String(length) }),
        ],
      }),
    ];
    const file = join(dir, `m-${Math.random().toString(36).slice(2)}.onnx`);
    writeFileSync(file, onnx.ModelProto.encode(m).finish());
    return file;
  };

  it('reads a file inside the model folder at offset + length', async () => {
    const m = await loadOnnx(withExternal('weights.bin', 8));
    expect((await m.run({ x: Tensor.zeros([1, 3]) })).y!.toArray()).toEqual([10, 20, 30]);
  });

  it('refuses escapes, absolute paths, symlinks and short files', async () => {
    await expect(loadOnnx(withExternal('../x.bin', 0))).rejects.toThrow(/leaves the model's folder/);
    await expect(loadOnnx(withExternal(join(outside, 'secret.bin'), 0))).rejects.toThrow(/absolute/);
    await expect(loadOnnx(withExternal('link.bin', 0))).rejects.toThrow(/symbolic link/);
    await expect(loadOnnx(withExternal('weights.bin', 12))).rejects.toThrow(/too short/);
    await expect(loadOnnx(withExternal('missing.bin', 0))).rejects.toThrow(/does not exist/);
    await expect(loadOnnx(withExternal('weights.bin', 0, 8))).rejects.toThrow(/length 8/);
  });

  it('needs a file path for external data', () => {
    const m = modelProto({ nodes: [node('Relu', ['x'], ['y'])], inputs: [X], outputs: [Y] });
    m.graph!.initializer = [new onnx.TensorProto({ name: 'b', dims: [1], data_type: 1, data_location: 1, external_data: [new onnx.StringStringEntryProto({ key: 'location', value: 'w.bin' })] })];
    expect(() => loadOnnxSync(onnx.ModelProto.encode(m).finish())).toThrow(/external data/);
  });
});

describe('limits', () => {
  let restore: ReturnType<typeof setLimits> | undefined;
  afterEach(() => restore && setLimits(restore));

  it('rejects models over the byte budget and ranks over the rank budget', async () => {
    const bytes = modelBytes({ nodes: [node('Relu', ['x'], ['y'])], inputs: [X], outputs: [Y] });
    restore = setLimits({ maxModelBytes: 10 });
    await expect(readOnnx(bytes)).rejects.toThrow(ResourceLimitError);
    setLimits(restore);
    expect(() => Tensor.zeros(new Array(40).fill(1))).toThrow(ResourceLimitError);
  });
});
