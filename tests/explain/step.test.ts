import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { averagePool } from '../../src/kernels/pool.js';
import { softmax } from '../../src/kernels/softmax.js';
import { InvertedResidual } from '../../src/layers/blocks.js';
import { Rng } from '../../src/core/rng.js';
import { type Arithmetic, fmtNum, fmtRange, poolArithmetic, rangeOf, softmaxArithmetic } from '../../src/explain/arithmetic.js';
import { type Step, collectSteps, onnxScope, stepThrough } from '../../src/explain/step.js';
import { type Module, captureOutputs } from '../../src/layers/module.js';
import { BatchNorm2d, Conv2d, Hardsigmoid, Hardswish, Linear, MaxPool2d, ReLU6, Sequential, Sigmoid, SiLU } from '../../src/layers/layers.js';
import { fromArch, mobileNetV3 } from '../../src/models/index.js';
import { summarize } from '../../src/models/summary.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import type { OnnxNode } from '../../src/io/onnx/node.js';
import { decodeTensor } from '../../src/io/onnx/tensor_proto.js';
import { expectClose } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/models');

/** The model's own value at a multi-index. */
function valueAt(t: Tensor, index: number[]): number {
  return t.get(...index);
}

/** A deterministic spread of indices over a shape: the corners and a few inner points. */
function sampleIndices(shape: readonly number[], n = 5): number[][] {
  const out: number[][] = [shape.map(() => 0), shape.map((d) => d - 1)];
  for (let k = 1; k <= n; k++) out.push(shape.map((d, i) => (i === 0 ? 0 : Math.floor(((k * 7 + i * 3) % 11) / 11 * d))));
  return out;
}

/** at() agrees with the layer's own output (exactly) and with its own float64 computation (within its stated tolerance). */
function checkArithmetic(s: Step, index: number[]): Arithmetic {
  const a = s.at(index);
  expect(a.output, `${s.layer} at [${index}]`).toBe(valueAt(s.output, index));
  expect(Math.abs(a.computed - a.output), `${s.layer} at [${index}]: computed ${a.computed} vs ${a.output}, tolerance ${a.tolerance}\n${a.text}`).toBeLessThanOrEqual(a.tolerance);
  // The tolerance is a round-off bound, not a loophole: it stays tiny next to the value's scale.
  const scale = Math.max(1, ...a.terms.map((t) => Math.abs(t.input * t.weight)));
  expect(a.tolerance).toBeLessThan(1e-3 * scale);
  expect(a.text).toContain(fmtNum(a.output, 7));
  return a;
}

const ARITH_KINDS = new Set(['conv', 'depthwise_conv', 'batchnorm', 'activation', 'se', 'eca', 'mbconv', 'conv_bn_act', 'pool', 'global_pool', 'linear', 'softmax', 'add', 'mul', 'flatten', 'dropout']);

describe('stepThrough on native modules', () => {
  const net = mobileNetV3('small', { widthMult: 0.25, numClasses: 4, resolution: 32, seed: 1 });
  // Non-trivial BN statistics, so that BN steps do more than scale by ~1.
  for (const [n, t] of Object.entries(net.stateDict())) {
    const d = t.dataSync();
    if (n.endsWith('running_mean')) for (let i = 0; i < d.length; i++) d[i] = 0.1 * Math.sin(i + 1);
    if (n.endsWith('running_var')) for (let i = 0; i < d.length; i++) d[i] = 0.5 + 0.4 * Math.cos(i);
    if (n.endsWith('bn.bias') || /\.1\.bias$/.test(n)) for (let i = 0; i < d.length; i++) d[i] = 0.05 * Math.cos(3 * i);
  }
  const x = Tensor.randn([2, 3, 32, 32], { seed: 3 });

  it('yields every layer in execution order and ends at the model\'s own output', async () => {
    const steps: Step[] = [];
    for await (const s of stepThrough(net, x)) steps.push(s);
    expect(steps.map((s) => s.index)).toEqual(steps.map((_, i) => i));
    expect(steps[0]!.name).toBe('features.0.0');
    expect(steps[0]!.input).toBe(x);
    // Folded conv-BN (predict) vs conv then BN (step-through): float32 round-off only.
    expectClose(steps[steps.length - 1]!.output, net.predict(x), { atol: 1e-5, rtol: 1e-4, what: 'logits' });
    expect(net.training).toBe(true); // modes restored
    const kinds = new Set(steps.map((s) => s.kind));
    for (const k of ['conv', 'depthwise_conv', 'batchnorm', 'activation', 'se', 'mbconv', 'conv_bn_act', 'global_pool', 'linear', 'dropout']) expect(kinds, k).toContain(k);
    // Blocks come after their layers.
    const se = steps.find((s) => s.kind === 'se')!;
    const fc2 = steps.findIndex((s) => s.name === `${se.name}.fc2`);
    expect(fc2).toBeGreaterThanOrEqual(0);
    expect(fc2).toBeLessThan(se.index);
    for (const s of steps) {
      expect(Number.isFinite(s.ms) && s.ms >= 0, s.layer).toBe(true);
      expect(s.layer.startsWith(s.name)).toBe(true);
    }
  });

  it('each block output equals the uninstrumented forward pass (folded fast path) within float32 round-off', async () => {
    const steps = await collectSteps(net, x);
    const names = net.features.children().map(([n]) => `features.${n}`);
    net.eval();
    const { outputs } = captureOutputs(net, () => net.predict(x), names);
    net.train();
    for (const n of names) {
      const s = steps.filter((q) => q.name === n);
      expect(s, n).toHaveLength(1);
      expectClose(s[0]!.output, outputs.get(n)!, { atol: 1e-5, rtol: 1e-4, what: n });
    }
  });

  it('counts the MACs the summary counts, and per conv: output elements × C_in/groups × kh × kw', async () => {
    const steps = await collectSteps(net, x, { leaves: true });
    const leafNames = new Set(net.namedModules().filter(([, m]) => m.children().length === 0).map(([n]) => n));
    expect(steps.every((s) => leafNames.has(s.name))).toBe(true);
    const total = steps.reduce((a, s) => a + s.macs, 0);
    expect(total).toBe(summarize(net, { input: x.shape, print: false }).macs);
    const dw = steps.find((s) => s.kind === 'depthwise_conv')!;
    const [k] = dw.attributes.kernel as number[];
    expect(dw.macs).toBe(dw.output.size * 1 * k! * k!);
    const pw = steps.find((s) => s.kind === 'conv' && (s.attributes.kernel as number[])[0] === 1 && s.output.rank === 4 && s.output.shape[2]! > 1)!;
    expect(pw.macs).toBe(pw.output.size * (pw.attributes.in_channels as number));
    expect(dw.params.weight).toEqual([dw.attributes.out_channels, 1, k, k]);
    // With blocks, a block's MACs are its layers' total.
    const all = await collectSteps(net, x);
    const mb = all.find((s) => s.kind === 'mbconv')!;
    const inner = all.filter((s) => s.name.startsWith(`${mb.name}.`) && s.index < mb.index && ['conv', 'depthwise_conv', 'linear'].includes(s.kind));
    expect(mb.macs).toBe(inner.reduce((a, s) => a + s.macs, 0));
  });

  it('at() matches the layers\' outputs for every kind with arithmetic', async () => {
    const steps = await collectSteps(net, x);
    const seen = new Set<string>();
    for (const s of steps) {
      if (!ARITH_KINDS.has(s.kind)) continue;
      for (const idx of sampleIndices(s.output.shape, 3)) checkArithmetic(s, idx);
      seen.add(s.kind);
    }
    expect([...seen].sort()).toEqual(['activation', 'batchnorm', 'conv', 'conv_bn_act', 'depthwise_conv', 'dropout', 'global_pool', 'linear', 'mbconv', 'se']);
  });

  it('ConvBNAct at(): the conv window, then BN and the activation as post steps', async () => {
    const steps = await collectSteps(net, x);
    const blk = steps.find((s) => s.name === 'features.0')!;
    expect(blk.kind).toBe('conv_bn_act');
    const a = checkArithmetic(blk, [1, 3, 0, 5]);
    expect(a.terms).toHaveLength(3 * 3 * 3);
    expect(a.post.map((p) => p.op)).toEqual(['batch norm', 'hard-swish']);
    const conv = steps.find((s) => s.name === 'features.0.0')!;
    const bn = steps.find((s) => s.name === 'features.0.1')!;
    expect(a.post[0]!.value).toBe(valueAt(bn.output, [1, 3, 0, 5]));
    expect(Math.abs(a.sum - valueAt(conv.output, [1, 3, 0, 5]))).toBeLessThanOrEqual(1e-5 * a.terms.reduce((s, t) => s + Math.abs(t.input * t.weight), 0));
    // Row 0 of a stride-2, padding-1 conv: the top row of the window is padding, shown as zeros.
    const pad = a.terms.filter((t) => t.inputIndex[2] === -1);
    expect(pad).toHaveLength(9);
    expect(pad.every((t) => t.input === 0)).toBe(true);
    expect(a.text).toMatch(/9 of them padding/);
  });

  it('SE: attention weights are the gate of the first image, and explain() gives the numbers', async () => {
    const steps = await collectSteps(net, x);
    const se = steps.find((s) => s.kind === 'se')!;
    const gate = steps.find((s) => s.name === `${se.name}.scale_activation`)!.output;
    const C = se.output.shape[1]!;
    expect(se.attention).toEqual(Array.from(gate.dataSync().subarray(0, C)));
    for (let c = 0; c < C; c++) {
      const a = se.at([0, c, 1, 1]);
      expect(a.terms[0]!.weight).toBe(se.attention![c]);
    }
    const words = se.explain();
    const r = rangeOf(se.attention!);
    const top = se.attention!.indexOf(r.max);
    expect(words).toContain(`squeezed ${C} channels to ${se.attributes.squeeze} and back`);
    expect(words).toContain(`channel weights ${fmtRange(r.min, r.max)}`);
    expect(words).toContain(`channel ${top} was scaled by ${fmtNum(r.max)}`);
  });

  it('explain() states the run\'s numbers per kind', async () => {
    const steps = await collectSteps(net, x, { classes: ['a', 'b', 'c', 'd'] });
    const dw = steps.find((s) => s.kind === 'depthwise_conv' && (s.attributes.stride as number[])[0] === 2)!;
    const [, C, H, W] = dw.input.shape;
    const [, , OH, OW] = dw.output.shape;
    const r = rangeOf(dw.output.dataSync());
    expect(dw.explain()).toContain(`a 3×3 depthwise conv, stride 2, dilation 1, padding 1, turned ${C} channels of ${H}×${W} into ${C} of ${OH}×${OW}`);
    expect(dw.explain()).toContain(`outputs ranged ${fmtRange(r.min, r.max)}`);
    const relu = steps.find((s) => s.kind === 'activation' && s.attributes.activation === 'ReLU')!;
    const zeroed = Array.from(relu.input.dataSync()).filter((v) => v <= 0).length;
    expect(relu.explain()).toContain(`ReLU zeroed ${zeroed} of ${relu.input.size} values`);
    const bn = steps.find((s) => s.kind === 'batchnorm')!;
    const mean = net.get(bn.name) as BatchNorm2d;
    const m = rangeOf(mean.runningMean.dataSync());
    expect(bn.explain()).toContain(`means ${fmtRange(m.min, m.max)}`);
    expect(bn.explain()).toContain(`over ${bn.output.shape[1]} channels`);
    const head = steps[steps.length - 1]!;
    const logits = Array.from(head.output.dataSync().subarray(0, 4));
    const best = logits.indexOf(Math.max(...logits));
    expect(head.explain()).toContain(`top classes of the first image are '${['a', 'b', 'c', 'd'][best]}'`);
    const mb = steps.find((s) => s.kind === 'mbconv' && s.attributes.residual === true)!;
    expect(mb.explain()).toMatch(/The input was added back \(residual\)/);
    expect(steps.find((s) => s.kind === 'dropout')!.explain()).toMatch(/off at inference/);
    const gp = steps.find((s) => s.kind === 'global_pool')!;
    expect(gp.explain()).toContain(`each of the ${gp.input.shape[1]} channels' ${gp.input.shape[2]}×${gp.input.shape[3]} map`);
  });

  it('a native ECA variant: ECA steps with k, attention and words; dilated depthwise arithmetic', async () => {
    const eca = fromArch('eca_mobilenet_v3_small', { numClasses: 3, resolution: 32, seed: 2 });
    const xi = Tensor.randn([1, 3, 32, 32], { seed: 5 });
    const steps = await collectSteps(eca, xi);
    expectClose(steps[steps.length - 1]!.output, eca.predict(xi), { atol: 1e-5, rtol: 1e-4, what: 'logits' });
    const e = steps.find((s) => s.kind === 'eca')!;
    const C = e.output.shape[1]!;
    expect(e.layer).toBe(`${e.name} (ECA, k=${e.attributes.k})`);
    expect(e.attention).toHaveLength(C);
    const r = rangeOf(e.attention!);
    expect(r.min).toBeGreaterThan(0);
    expect(r.max).toBeLessThan(1);
    const top = e.attention!.indexOf(r.max);
    expect(e.explain()).toContain(`ECA pooled ${C} channels to ${C} means, a 1-D conv (k=${e.attributes.k}`);
    expect(e.explain()).toContain(`gave weights ${fmtRange(r.min, r.max)}; channel ${top} was scaled by ${fmtNum(r.max)}`);
    for (const idx of sampleIndices(e.output.shape)) checkArithmetic(e, idx);
    const dil = steps.filter((s) => s.kind === 'depthwise_conv' && (s.attributes.dilation as number[])[0] === 2);
    expect(dil.length).toBeGreaterThan(0);
    for (const s of dil) for (const idx of sampleIndices(s.output.shape)) checkArithmetic(s, idx);
    expect(dil[0]!.explain()).toContain('dilation 2');
    expect(steps.find((s) => s.kind === 'activation' && String(s.attributes.activation).startsWith('LeakyReLU'))!.explain()).toMatch(/multiplied the \d+ negative values of \d+ \(.*\) by 0\.01/);
  });
});

describe('stepThrough on ONNX graphs', () => {
  for (const name of ['mnv3_mini', 'mnv3_mini_bn', 'eca_mini']) {
    it(`${name}: per-node outputs equal the optimised run's, the last equals PyTorch's output, at() matches every node`, async () => {
      const dir = join(FIXTURES, name);
      const x = decodeTensor(readFileSync(join(dir, 'test_data_set_0/input_0.pb')));
      const ref = decodeTensor(readFileSync(join(dir, 'test_data_set_0/output_0.pb')));
      const model = await loadOnnx(join(dir, 'model.onnx'));
      const steps = await collectSteps(model, x);
      // The graph's own (optimised, fused) run, node by node.
      const fused = new Map<string, Tensor>();
      const out = await model.run(x, { onNode: (n: OnnxNode, outs) => n.outputs.forEach((v, i) => void fused.set(v, outs[i]!)) });
      const last = steps[steps.length - 1]!;
      expectClose(last.output, Object.values(out)[0]!, { atol: 1e-5, rtol: 1e-4, what: 'logits vs run' });
      // Against PyTorch: the fixture's tolerance (abs 1e-4, rel 1e-3).
      expectClose(last.output, ref, { atol: 1e-4, rtol: 1e-3, what: 'logits vs PyTorch' });
      let compared = 0;
      for (const s of steps) {
        const v = s.attributes.output_name as string;
        const f = fused.get(v);
        if (!f) continue;
        expectClose(s.output, f, { atol: 1e-5, rtol: 1e-4, what: `${s.layer}` });
        compared++;
      }
      expect(compared).toBeGreaterThan(steps.length / 3);
      const kinds = new Set<string>();
      for (const s of steps) {
        if (!ARITH_KINDS.has(s.kind)) continue;
        for (const idx of sampleIndices(s.output.shape, 2)) checkArithmetic(s, idx);
        kinds.add(s.kind);
        expect(s.explain().length, s.layer).toBeGreaterThan(20);
      }
      for (const k of ['conv', 'depthwise_conv', 'activation', 'global_pool', 'linear', 'mul']) expect(kinds, k).toContain(k);
      if (name === 'mnv3_mini_bn') expect(kinds).toContain('batchnorm');
      if (name === 'mnv3_mini') expect(kinds).toContain('add');
      if (name === 'eca_mini') expect(kinds).toContain('pool');
      const convSteps = steps.filter((s) => s.kind === 'conv' || s.kind === 'depthwise_conv');
      expect(convSteps.reduce((a, s) => a + s.macs, 0)).toBeGreaterThan(0);
      for (const s of convSteps) {
        const w = s.params.weight!;
        expect(s.macs).toBe(s.output.size * w[1]! * w.slice(2).reduce((a, b) => a * b, 1));
      }
    });
  }

  it('eca_mini: names from the exporter scopes, gates as attention, Transpose has no arithmetic', async () => {
    const model = await loadOnnx(join(FIXTURES, 'eca_mini', 'model.onnx'));
    const x = decodeTensor(readFileSync(join(FIXTURES, 'eca_mini', 'test_data_set_0/input_0.pb')));
    const steps = await collectSteps(model, x);
    expect(steps.some((s) => s.name.includes('Constant'))).toBe(false);
    const dw = steps.find((s) => s.kind === 'depthwise_conv')!;
    expect(dw.layer).toBe('dw.0 (Conv, 16→16, 3×3, dilation 2, depthwise)');
    const gate = steps.find((s) => s.kind === 'mul' && s.attention)!;
    const sig = steps[gate.index - 1]!;
    expect(sig.attributes.activation).toBe('sigmoid');
    expect(gate.attention).toEqual(Array.from(sig.output.dataSync().subarray(0, gate.attention!.length)));
    const tr = steps.find((s) => s.attributes.op_type === 'Transpose')!;
    expect(() => tr.at([0, 0, 0])).toThrow(ValueError);
    expect(() => tr.at([0, 0, 0])).toThrow(/\(Transpose\): an other step has no arithmetic to show/);
    expect(() => dw.at([0, 16, 0, 0])).toThrow(/index \[0, 16, 0, 0\] is outside its output of shape \[1, 16, 16, 16\]/);
    expect(() => dw.at([0, 1, 0])).toThrow(ValueError);
  });

  it('onnxScope reads torch and lightconv node names', () => {
    expect(onnxScope('/features/features.1/block/block.0/block.0.0/Conv')).toBe('features.1.block.0.0');
    expect(onnxScope('/features/features.4/block/block.2/fc1/Conv')).toBe('features.4.block.2.fc1');
    expect(onnxScope('/features/4/block/2/Conv_37')).toBe('features.4.block.2');
    expect(onnxScope('/Flatten')).toBe('');
    expect(onnxScope('node_7')).toBe('');
  });
});

describe('at() against hand computations', () => {
  async function only(m: Module, x: Tensor): Promise<Step> {
    const steps = await collectSteps(m, x);
    expect(steps).toHaveLength(1);
    return steps[0]!;
  }

  it('a 3×3 conv with padding over two channels', async () => {
    const conv = new Conv2d(2, 1, 3, { padding: 1 });
    // Channel 0: a Laplacian-like cross; channel 1: 0.1 everywhere.
    conv.loadStateDict({ weight: Tensor.fromArray([0, 1, 0, 1, -2, 1, 0, 1, 0, ...new Array(9).fill(0.1)], [1, 2, 3, 3]), bias: Tensor.fromArray([0.5], [1]) });
    const x = Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9, ...new Array(9).fill(1)], [1, 2, 3, 3]);
    const s = await only(conv, x);
    expect(s.kind).toBe('conv');
    const a = s.at([0, 0, 0, 0]);
    // Corner [0, 0]: the window covers rows −1…1, columns −1…1.
    // Channel 0: 1·(−2) + 2·1 + 4·1 = 4 (the other taps are padding or zero weights).
    // Channel 1: 0.1 × (1 + 1 + 1 + 1) = 0.4 from the four taps inside the input (0.1 as float32).
    expect(a.terms).toHaveLength(18);
    expect(a.terms.filter((t) => t.inputIndex.some((k) => k < 0))).toHaveLength(10);
    expect(a.terms.filter((t) => t.inputIndex.some((k) => k < 0)).every((t) => t.input === 0)).toBe(true);
    expect(a.sum).toBeCloseTo(4 + 4 * Math.fround(0.1), 12);
    expect(a.bias).toBe(0.5);
    expect(a.output).toBeCloseTo(4.9, 5);
    expect(a.post).toEqual([]);
    expect(a.terms[4]).toEqual({ input: 1, weight: -2, inputIndex: [0, 0, 0, 0], weightIndex: [0, 0, 1, 1] });
    expect(a.text).toContain('input[0, 0, -1, -1] (padding) × weight[0, 0, 0, 0] = 0 × 0 = 0');
    expect(a.text).toContain('+ bias 0.5 = 4.9');
    // Centre: 5·(−2) + 2 + 4 + 6 + 8 = 10, plus 0.1 × 9 = 0.9, plus 0.5.
    expect(s.at([0, 0, 1, 1]).output).toBeCloseTo(11.4, 5);
    expect(s.at([0, 0, 1, 1]).sum).toBeCloseTo(10 + 9 * Math.fround(0.1), 12);
    expect(s.explain()).toContain('a 3×3 conv, stride 1, dilation 1, padding 1, turned 2 channels of 3×3 into 1 of 3×3; each output value sums 18 products (2 input channels × 3×3 window) plus a bias');
  });

  it('a depthwise dilated conv: one channel, every second pixel', async () => {
    const conv = new Conv2d(2, 2, 3, { padding: 2, dilation: 2, groups: 2, bias: false });
    const w = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    conv.loadStateDict({ weight: Tensor.fromArray([...w, ...w], [2, 1, 3, 3]) });
    // x[c, r, k] = 100·c + 5·r + k
    const xs: number[] = [];
    for (let c = 0; c < 2; c++) for (let r = 0; r < 5; r++) for (let k = 0; k < 5; k++) xs.push(100 * c + 5 * r + k);
    const s = await only(conv, Tensor.fromArray(xs, [1, 2, 5, 5]));
    expect(s.kind).toBe('depthwise_conv');
    const a = s.at([0, 1, 2, 2]);
    // Taps at rows/columns 0, 2, 4 of channel 1: 100·1 + 102·2 + 104·3 + 110·4 + 112·5 + 114·6 + 120·7 + 122·8 + 124·9 = 5232.
    expect(a.sum).toBe(5232);
    expect(a.output).toBe(5232);
    expect(a.terms.every((t) => t.inputIndex[1] === 1)).toBe(true);
    expect(a.terms.map((t) => t.inputIndex.slice(2))).toEqual([[0, 0], [0, 2], [0, 4], [2, 0], [2, 2], [2, 4], [4, 0], [4, 2], [4, 4]]);
    // Corner of channel 0: rows/columns −2, 0, 2; inside: 0·5 + 2·6 + 10·8 + 12·9 = 200.
    const c = s.at([0, 0, 0, 0]);
    expect(c.sum).toBe(200);
    expect(c.output).toBe(200);
    expect(c.terms.filter((t) => t.inputIndex.some((k) => k < 0))).toHaveLength(5);
    expect(c.text).toMatch(/dilation 2×2: every second pixel/);
    expect(s.explain()).toContain('a 3×3 depthwise conv, stride 1, dilation 2, padding 2, turned 2 channels of 5×5 into 2 of 5×5');
  });

  it('a linear layer', async () => {
    const fc = new Linear(3, 2);
    fc.loadStateDict({ weight: Tensor.fromArray([1, 2, 3, -1, 0.5, 2], [2, 3]), bias: Tensor.fromArray([0.25, -1], [2]) });
    const s = await only(fc, Tensor.fromArray([2, -1, 0.5], [1, 3]));
    // Row 1: 2·(−1) + (−1)·0.5 + 0.5·2 = −1.5, plus −1.
    const a = s.at([0, 1]);
    expect(a.terms.map((t) => [t.input, t.weight])).toEqual([[2, -1], [-1, 0.5], [0.5, 2]]);
    expect(a.sum).toBe(-1.5);
    expect(a.bias).toBe(-1);
    expect(a.output).toBe(-2.5);
    // Row 0: 2 − 2 + 1.5 = 1.5, plus 0.25.
    expect(s.at([0, 0]).output).toBe(1.75);
    expect(s.macs).toBe(6);
  });

  it('a max pool: the window and its winner', async () => {
    const pool = new MaxPool2d(2, { stride: 2 });
    const x = Tensor.fromArray([3, 1, 0, 2, 4, -1, 5, 9, 7, 8, 6, 2, 1, 0, 3, 3], [1, 1, 4, 4]);
    const s = await only(pool, x);
    const a = s.at([0, 0, 0, 1]);
    // Window rows 0–1, columns 2–3: 0, 2, 5, 9 → 9 at [0, 0, 1, 3].
    expect(a.terms.map((t) => t.input)).toEqual([0, 2, 5, 9]);
    expect(a.sum).toBe(9);
    expect(a.output).toBe(9);
    expect(a.text).toContain('max = 9, at input[0, 0, 1, 3]');
    expect(a.text).toMatch(/input\[0, 0, 1, 3\] = 9 {2}← the largest/);
    expect(s.at([0, 0, 1, 0]).output).toBe(8);
  });

  it('an average pool with padding, padded taps counted or not', () => {
    const x = Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    for (const countIncludePad of [false, true]) {
      const p = { kind: 'avg' as const, kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad };
      const y = averagePool(x, { kernel: p.kernel, strides: p.strides, pads: p.pads, countIncludePad });
      // [0, 1]: rows −1…0, columns 1…2 → 2 and 3 inside, two padded taps.
      const a = poolArithmetic('pool', x, p, y, [0, 0, 0, 1]);
      expect(a.sum).toBe(countIncludePad ? 5 / 4 : 5 / 2);
      expect(a.output).toBeCloseTo(countIncludePad ? 1.25 : 2.5, 6);
      expect(a.terms).toHaveLength(countIncludePad ? 4 : 2);
      expect(a.terms.every((t) => t.weight === 1 / (countIncludePad ? 4 : 2))).toBe(true);
      // [1, 1]: rows 1–2, columns 1–2 → (5 + 6 + 8 + 9) / 4 = 7 either way.
      expect(poolArithmetic('pool', x, p, y, [0, 0, 1, 1]).sum).toBe(7);
      expect(a.text).toContain(countIncludePad ? 'sum = 5; 5 / 4 = 1.25' : 'sum = 5; 5 / 2 = 2.5');
    }
  });

  it('softmax: e^(x − max) / Σ e^(x − max)', () => {
    const x = Tensor.fromArray([1, 2, 3], [1, 3]);
    const y = softmax(x, 1);
    const a = softmaxArithmetic('softmax', x, y, 1, [0, 2], ['a', 'b', 'c']);
    // e^0 / (e^−2 + e^−1 + e^0)
    const want = 1 / (Math.exp(-2) + Math.exp(-1) + 1);
    expect(a.sum).toBeCloseTo(Math.exp(-2) + Math.exp(-1) + 1, 12);
    expect(a.computed).toBeCloseTo(want, 12);
    expect(Math.abs(a.output - want)).toBeLessThan(1e-7);
    expect(a.text).toContain('score[0, 2] (c) = 3');
  });

  it('an MBConv block with stochastic depth: off at inference, the residual add written out', async () => {
    const block = new InvertedResidual({ inChannels: 8, kernel: 3, expanded: 16, outChannels: 8, attention: 'se', activation: 'silu', stride: 1, dilation: 1 }, { bn: { eps: 1e-3, momentum: 0.01 }, rng: new Rng(4), se: 'efficientnet', stochasticDepth: 0.2 });
    const x = Tensor.randn([1, 8, 6, 6], { seed: 9 });
    const steps = await collectSteps(block, x);
    const mb = steps[steps.length - 1]!;
    expect(mb.kind).toBe('mbconv');
    expect(mb.explain()).toContain('Stochastic depth (p = 0.2) is off at inference');
    expect(mb.explain()).toContain('expanded 8 → 16 channels');
    expect(steps.find((s) => s.name === 'stochastic_depth')!.kind).toBe('dropout');
    const a = checkArithmetic(mb, [0, 3, 2, 4]);
    // output = branch + input, the input being the block's own input.
    expect(a.terms[1]!.input).toBe(x.get(0, 3, 2, 4));
    expect(a.terms[0]!.input + a.terms[1]!.input).toBeCloseTo(a.output, 5);
  });

  it('a grouped (not depthwise) conv and each remaining activation: words with the run\'s numbers, arithmetic that matches', async () => {
    const conv = new Conv2d(4, 6, 3, { padding: 1, groups: 2 });
    const net = new Sequential(conv, new ReLU6(), new Sigmoid(), new SiLU(), new Hardsigmoid());
    const x = Tensor.randn([1, 4, 5, 5], { seed: 4, std: 4 }); // wide enough that ReLU6 clips at both ends
    const steps = await collectSteps(net, x);
    expect(steps.map((s) => s.kind)).toEqual(['conv', 'activation', 'activation', 'activation', 'activation']);
    for (const s of steps) for (const idx of sampleIndices(s.output.shape)) checkArithmetic(s, idx);
    // Output channel 4 is in the second group: it reads input channels 2 and 3 only, 2 × 3×3 taps.
    const a = steps[0]!.at([0, 4, 2, 2]);
    expect(a.terms).toHaveLength(18);
    expect(new Set(a.terms.map((t) => t.inputIndex[1]))).toEqual(new Set([2, 3]));
    expect(a.terms.every((t) => t.weightIndex?.[0] === 4 && t.weightIndex[1] === t.inputIndex[1]! - 2)).toBe(true);
    expect(steps[0]!.macs).toBe(6 * 25 * 2 * 9);
    const y0 = Array.from(steps[0]!.output.dataSync());
    expect(steps[1]!.explain()).toContain(`clipped ${y0.filter((v) => v < 0).length} of 150 values`);
    expect(steps[1]!.explain()).toContain(`and ${y0.filter((v) => v > 6).length}`);
    expect(steps[2]!.explain()).toMatch(/^sigmoid \(1\/\(1 \+ e\^−x\)\) squashed 150 values into 0…1/);
    const y2 = Array.from(steps[2]!.output.dataSync());
    expect(steps[3]!.explain()).toContain(`pulled the ${y2.filter((v) => v < 0).length} negative values of 150`);
    expect(steps[4]!.explain()).toMatch(/hard-sigmoid \(min\(max\(0\.1667·x \+ 0\.5, 0\), 1\)\) clipped \d+ of 150 values to 0/);
  });

  it('ONNX Softmax and AveragePool nodes: kinds, words and arithmetic (ONNX node-test graphs)', async () => {
    const core = join(import.meta.dirname, '../fixtures/onnx-node-core');
    for (const [name, kind, words] of [['test_softmax_axis_1', 'softmax', /softmax/i], ['test_averagepool_2d_pads', 'pool', /average/i]] as const) {
      const model = await loadOnnx(join(core, name, 'model.onnx'));
      const x = decodeTensor(readFileSync(join(core, name, 'test_data_set_0/input_0.pb')));
      const [s] = await collectSteps(model, x);
      expect(s!.kind, name).toBe(kind);
      expect(s!.explain(), name).toMatch(words);
      const want = decodeTensor(readFileSync(join(core, name, 'test_data_set_0/output_0.pb')));
      expectClose(s!.output, want, { atol: 1e-6, rtol: 1e-5, what: name });
      for (const idx of sampleIndices(s!.output.shape)) checkArithmetic(s!, idx);
      if (kind === 'softmax') {
        // [3, 4, 5] along axis 1: the words read the first run y[0, :, 0] (strided), which sums to 1.
        const run = [0, 1, 2, 3].map((i) => s!.output.get(0, i, 0));
        expect(run.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        const top = run.indexOf(Math.max(...run));
        expect(s!.explain()).toContain(`each run of 4 values along axis 1 of [3, 4, 5]`);
        expect(s!.explain()).toContain(`along axis 1) are class ${top} ${fmtNum(run[top]!, 3)},`);
      }
    }
  });

  it('an MBConv block without a residual: at() names the projection, not the block input, as the source', async () => {
    const block = new InvertedResidual({ inChannels: 4, kernel: 3, expanded: 8, outChannels: 6, attention: 'none', activation: 'relu', stride: 2, dilation: 1 }, { bn: { eps: 1e-3, momentum: 0.01 }, rng: new Rng(5), se: 'mobilenet' });
    const x = Tensor.randn([1, 4, 6, 6], { seed: 2 });
    const steps = await collectSteps(block, x);
    const mb = steps[steps.length - 1]!;
    expect(mb.kind).toBe('mbconv');
    expect(mb.explain()).toContain('No residual (the stride changes the size)');
    const a = checkArithmetic(mb, [0, 5, 2, 1]);
    // The value comes from the projection's BN, the step just before the block.
    expect(a.terms[0]!.input).toBe(steps[mb.index - 1]!.output.get(0, 5, 2, 1));
    expect(a.text).toContain("is the projection's output[0, 5, 2, 1] unchanged (no residual");
    expect(a.text).not.toMatch(/is input\[/);
  });

  it('batch norm alone and an activation', async () => {
    const bn = new BatchNorm2d(2, { eps: 0.25 });
    bn.loadStateDict({ weight: Tensor.fromArray([2, 1], [2]), bias: Tensor.fromArray([0.5, 0], [2]), running_mean: Tensor.fromArray([1, 0], [2]), running_var: Tensor.fromArray([0.75, 1], [2]) });
    const net = new Sequential(bn, new Hardswish());
    const x = Tensor.fromArray([3, 0, -1, 0, 0, 0, 0, 0], [1, 2, 2, 2]);
    const steps = await collectSteps(net, x);
    // (3 − 1)/√(0.75 + 0.25)·2 + 0.5 = 4.5; hard-swish(4.5) = 4.5 (≥ 3 passes unchanged).
    const b = steps[0]!.at([0, 0, 0, 0]);
    expect(b.terms[0]!.weight).toBe(2);
    expect(b.bias).toBe(0.5 - 1 * 2);
    expect(b.output).toBe(4.5);
    expect(b.text).toContain('(3 − 1) / √(0.75 + 0.25) × 2 + 0.5 = 4.5');
    const h = steps[1]!.at([0, 0, 0, 1]);
    // (0 − 1)·2 + 0.5 = −1.5; hard-swish: −1.5·min(max(1.5, 0), 6)/6 = −0.375.
    expect(h.terms[0]!.input).toBe(-1.5);
    expect(h.output).toBe(-0.375);
    expect(h.post).toEqual([{ op: 'hard-swish', formula: '(−1.5) × min(max((−1.5) + 3, 0), 6) / 6 = −0.375', value: -0.375 }]);
    expect(() => steps[1]!.at([0, 2, 0, 0])).toThrow(/outside its output of shape \[1, 2, 2, 2\]/);
  });
});

describe('browser safety', () => {
  it('the step-through and arithmetic modules import nothing node-only at the top level', () => {
    for (const f of ['step.ts', 'arithmetic.ts', 'activations.ts']) {
      const src = readFileSync(join(import.meta.dirname, '../../src/explain', f), 'utf8');
      const imports = [...src.matchAll(/^import[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);
      expect(imports.length, f).toBeGreaterThan(0);
      for (const i of imports) expect(i, `${f} imports ${i}`).not.toMatch(/^(node:|fs|path|os|worker_threads|child_process)/);
    }
  });
});

describe('stepThrough on a torchvision export', () => {
  it("steps are layers on the image: the exporter's Identity copies of shared weights are left out", async () => {
    // torch's export of MobileNetV3-Small starts with 10 Identity nodes on initializers.
    const model = await loadOnnx(join(import.meta.dirname, '../fixtures/explain/mnv3s.onnx'));
    expect(model.graph.nodes.filter((n) => n.opType === 'Identity')).toHaveLength(10);
    const steps = await collectSteps(model, Tensor.randn([1, 3, 96, 96], { seed: 1 }));
    expect(steps.some((s) => s.name.includes('Identity'))).toBe(false);
    expect(steps[0]!.kind).toBe('conv');
    expect(steps[0]!.input.shape).toEqual([1, 3, 96, 96]);
    // Every graph node that reads the image (directly or through earlier layers) is a step.
    expect(steps).toHaveLength(model.graph.nodes.length - 10);
  });
});
