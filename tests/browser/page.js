// Runs in the browser: loads the browser-safe ESM entries (lightconv/onnx and lightconv/gpu, the
// main one decodes images with pngjs), runs each ONNX test-layout case (model.onnx +
// test_data_set_N/input_K.pb, output_K.pb) through the GPU backend on WebGL2 and compares every
// output with the reference within the case's tolerance (meta.json, else abs 1e-4, rel 1e-3).
// The result goes to window.__result for the runner (tests/browser/run.ts) and to the page.
import { decodeTensor, loadOnnx } from '/lib/onnx.js';
import { GPU_GRADS, GPU_KERNELS, Tensor, cpuBackend, gpu, referenceBackend, useBackend } from '/lib/gpu.js';

const log = (s) => (document.getElementById('log').textContent += `\n${s}`);
const fetchBytes = async (url) => {
  const r = await fetch(url);
  return r.ok ? new Uint8Array(await r.arrayBuffer()) : null;
};

async function runCase(backend, base, setCounts, hasMeta) {
  const meta = hasMeta ? await (await fetch(`${base}/meta.json`)).json() : {};
  const tol = meta.recommended_tolerance ?? { abs: 1e-4, rel: 1e-3 };
  const model = await loadOnnx(await fetchBytes(`${base}/model.onnx`));
  const sets = [];
  for (const [s, counts] of setCounts.entries()) {
    const feeds = {};
    for (let k = 0; k < counts.inputs; k++) {
      feeds[model.inputs[k].name] = decodeTensor(await fetchBytes(`${base}/test_data_set_${s}/input_${k}.pb`));
    }
    useBackend(backend);
    const t0 = performance.now();
    let outs;
    try {
      outs = await model.run(feeds);
    } finally {
      useBackend(cpuBackend);
    }
    let maxAbs = 0;
    let bad = null;
    for (let k = 0; k < counts.outputs; k++) {
      const ref = decodeTensor(await fetchBytes(`${base}/test_data_set_${s}/output_${k}.pb`));
      const out = outs[model.outputs[k].name];
      const y = await out.data(); // the one readback
      const r = ref.dataSync();
      if (out.shape.join() !== ref.shape.join()) bad ??= `output ${k}: shape [${out.shape}] vs [${ref.shape}]`;
      for (let i = 0; i < r.length; i++) {
        if (Number.isNaN(r[i]) && Number.isNaN(y[i])) continue;
        const d = Math.abs(y[i] - r[i]);
        if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
        if (!(d <= tol.abs + tol.rel * Math.abs(r[i])) && r[i] !== y[i]) bad ??= `output ${k} element ${i}: ${y[i]} vs ${r[i]}`;
      }
    }
    const ms = performance.now() - t0;
    Object.values(outs).forEach((t) => t.dispose());
    sets.push({ set: s, maxAbs, ms, pass: bad === null, detail: bad });
  }
  return { sets, pass: sets.length > 0 && sets.every((s) => s.pass) };
}

/**
 * Single kernels on WebGL2 against the reference, on the cases where GL differs from the CPU
 * translations: loops past gpu.js's 1000-iteration limit, float index arithmetic on large
 * textures, broadcasting and window edges.
 */
function kernelChecks(backend) {
  const card = (name) => [...GPU_KERNELS.keys()].find((c) => c.name === name);
  let seed = 1;
  const rnd = (shape, low = -1, high = 1) => Tensor.rand(shape, { seed: seed++, low, high });
  const conv = (strides, pads, dilations, group, activation = { kind: 'none' }) => ({ strides, pads, dilations, group, activation });
  const cases = [
    ['Conv 1×1 1152→7 (loop past 1000)', 'Conv', [rnd([1, 1152, 3, 4]), rnd([7, 1152, 1, 1]), rnd([7])], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
    ['Conv depthwise 5×5 stride 2 + hard-swish', 'Conv', [rnd([1, 8, 11, 9]), rnd([8, 1, 5, 5]), rnd([8])], conv([2, 2], [2, 2, 2, 2], [1, 1], 8, { kind: 'hard_swish' })],
    ['Conv 3×3 stride 2 dilation 2', 'Conv', [rnd([2, 4, 13, 12]), rnd([5, 4, 3, 3]), rnd([5])], conv([2, 2], [2, 2, 2, 2], [2, 2], 1, { kind: 'silu' })],
    ['Conv grouped, kernel larger than input', 'Conv', [rnd([1, 4, 2, 3]), rnd([6, 2, 4, 4])], conv([1, 1], [2, 2, 2, 2], [1, 1], 2)],
    ['Gemm K 1100, transB', 'Gemm', [rnd([3, 1100]), rnd([5, 1100]), rnd([5])], { alpha: 1, beta: 1, transA: false, transB: true, activation: { kind: 'relu' } }],
    ['MatMul batched', 'MatMul', [rnd([2, 3, 40]), rnd([2, 40, 6])], undefined],
    ['Softmax over 1000', 'Softmax', [rnd([2, 1000], -20, 20)], { axis: -1 }],
    ['ReduceMean over 1200', 'ReduceMean', [rnd([3, 1200])], { axes: [1], keepdims: true }],
    ['GlobalAveragePool 40×40', 'GlobalAveragePool', [rnd([1, 3, 40, 40])], undefined],
    ['AveragePool ceil + count_include_pad', 'AveragePool', [rnd([1, 2, 6, 6])], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true, countIncludePad: true }],
    ['MaxPool stride 2 dilation 2', 'MaxPool', [rnd([1, 2, 9, 11])], { kernel: [3, 3], strides: [2, 2], dilations: [2, 2], pads: [2, 1, 2, 1] }],
    ['BatchNormalization + clip', 'BatchNormalization', [rnd([2, 5, 4, 3]), rnd([5]), rnd([5]), rnd([5]), rnd([5], 0.1, 2)], { epsilon: 1e-3, activation: { kind: 'clip', min: 0, max: 6 } }],
    ['Binary Mul broadcast [2,3,4,5]∘[3,1,1]', 'Binary', [rnd([2, 3, 4, 5]), rnd([3, 1, 1])], 'Mul'],
    ['Binary Div broadcast [3,1,5]∘[1,4,1]', 'Binary', [rnd([3, 1, 5]), rnd([1, 4, 1], 0.5, 2)], 'Div'],
    ['Transpose NCHW→NHWC', 'Transpose', [rnd([2, 3, 4, 5])], { perm: [0, 2, 3, 1] }],
    ['Concat 3 inputs axis 1', 'Concat', [rnd([2, 3, 4]), rnd([2, 5, 4]), rnd([2, 1, 4])], { axis: 1 }],
    ['Unary sigmoid on 4.2 M elements (large texture indices)', 'Unary', [rnd([1, 16, 512, 512], -6, 6)], { kind: 'sigmoid' }],
    ['Binary Add on 4.2 M elements', 'Binary', [rnd([1, 16, 512, 512]), rnd([1, 16, 1, 1])], 'Add'],
  ];
  const results = [];
  for (const [name, cardName, inputs, attrs] of cases) {
    const c = card(cardName);
    const out = backend.run(c, inputs, attrs);
    const ref = referenceBackend.run(c, inputs, attrs).dataSync();
    const y = out.dataSync();
    let scale = 0;
    for (const v of ref) scale = Math.max(scale, Math.abs(v));
    let maxAbs = 0;
    let bad = null;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(y[i] - ref[i]);
      maxAbs = Math.max(maxAbs, d);
      if (!(d <= 1e-4 * Math.max(1, scale) + 1e-4 * Math.abs(ref[i])) && bad === null) bad = `element ${i}: ${y[i]} vs ${ref[i]}`;
    }
    if (y.length !== ref.length) bad = `length ${y.length} vs ${ref.length}`;
    out.dispose();
    results.push({ name: `kernel: ${name}`, pass: bad === null, sets: [{ set: 0, maxAbs, ms: 0, pass: bad === null, detail: bad }] });
    log(`${bad === null ? 'PASS' : 'FAIL'} kernel ${name} max abs ${maxAbs.toExponential(1)}${bad ? ` — ${bad}` : ''}`);
  }
  return results;
}

/**
 * Backward kernels on WebGL2 against each card's CPU `grad` (every input requires grad): the
 * gather-style index arithmetic of conv and pooling, reductions past 1000 iterations, chains of
 * launches (batch-norm statistics, broadcasting sums).
 */
function gradChecks(backend) {
  const card = (name) => [...GPU_GRADS.keys()].find((c) => c.name === name);
  let seed = 100;
  const rnd = (shape, low = -1, high = 1) => Tensor.rand(shape, { seed: seed++, low, high }).requireGrad();
  const conv = (strides, pads, dilations, group, activation = { kind: 'none' }) => ({ strides, pads, dilations, group, activation });
  const cases = [
    ['Conv 3×3 stride 2 dilation 2', 'Conv', [rnd([2, 4, 13, 12]), rnd([5, 4, 3, 3]), rnd([5])], conv([2, 2], [2, 2, 2, 2], [2, 2], 1)],
    ['Conv depthwise 5×5 stride 2 + hard-swish', 'Conv', [rnd([1, 8, 11, 9]), rnd([8, 1, 5, 5]), rnd([8])], conv([2, 2], [2, 2, 2, 2], [1, 1], 8, { kind: 'hard_swish' })],
    ['Conv 1×1, 1200-term weight gradient', 'Conv', [rnd([3, 6, 20, 20]), rnd([4, 6, 1, 1]), rnd([4])], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
    ['BatchNormalizationTraining, 1200 per channel', 'BatchNormalizationTraining', [rnd([3, 4, 20, 20], -2, 3), rnd([4]), rnd([4])], { epsilon: 1e-5 }],
    ['BatchNormalization (inference)', 'BatchNormalization', [rnd([2, 5, 4, 3]), rnd([5]), rnd([5]), rnd([5]), rnd([5], 0.1, 2)], { epsilon: 1e-3 }],
    ['MaxPool k3 s2 p1', 'MaxPool', [rnd([2, 3, 9, 9])], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['AveragePool ceil + count_include_pad', 'AveragePool', [rnd([1, 2, 6, 6])], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true, countIncludePad: true }],
    ['GlobalAveragePool 40×40', 'GlobalAveragePool', [rnd([1, 3, 40, 40])], undefined],
    ['Gemm K 1100, transB, relu', 'Gemm', [rnd([3, 1100]), rnd([5, 1100]), rnd([5])], { alpha: 1, beta: 1, transA: false, transB: true, activation: { kind: 'relu' } }],
    ['MatMul M 1100', 'MatMul', [rnd([1100, 3]), rnd([3, 4])], undefined],
    ['Binary Mul broadcast [2,3,4,5]∘[3,1,1]', 'Binary', [rnd([2, 3, 4, 5]), rnd([3, 1, 1])], 'Mul'],
    ['Binary Div broadcast [3,1,5]∘[1,4,1]', 'Binary', [rnd([3, 1, 5]), rnd([1, 4, 1], 0.5, 2)], 'Div'],
    ['Unary hard-swish', 'Unary', [rnd([2, 3, 8, 8], -5, 5)], { kind: 'hard_swish' }],
    ['Transpose NHWC→NCHW', 'Transpose', [rnd([2, 4, 5, 3])], { perm: [0, 3, 1, 2] }],
    ['Softmax over 1100', 'Softmax', [rnd([2, 1100], -5, 5)], { axis: 1 }],
    ['ReduceMean over H, W', 'ReduceMean', [rnd([2, 3, 4, 5])], { axes: [2, 3], keepdims: true }],
    ['Concat 3 inputs axis 1', 'Concat', [rnd([2, 3, 4]), rnd([2, 5, 4]), rnd([2, 1, 4])], { axis: 1 }],
    ['Pad constant with a crop', 'Pad', [rnd([2, 3, 6, 5])], { pads: [0, 1, -1, 0, 0, 0, 2, -2], mode: 'constant', value: 0 }],
  ];
  const results = [];
  for (const [name, cardName, inputs, attrs] of cases) {
    const c = card(cardName);
    let bad = null;
    let maxAbs = 0;
    try {
      const y = c.cpu ? c.cpu(inputs, attrs) : c.reference(inputs, attrs);
      const g = Tensor.rand(y.shape, { seed: seed++, low: -1, high: 1 });
      const ref = c.grad(inputs, attrs, y, g);
      const got = backend.grad(c, inputs, attrs, y, g);
      if (!got) bad = 'ran on the CPU';
      else {
        got.forEach((t, k) => {
          if (!t || !ref[k]) return;
          const a = t.dataSync();
          const r = ref[k].dataSync();
          let scale = 0;
          for (const v of r) scale = Math.max(scale, Math.abs(v));
          for (let i = 0; i < r.length; i++) {
            const d = Math.abs(a[i] - r[i]);
            maxAbs = Math.max(maxAbs, d);
            if (!(d <= 2e-4 * Math.max(1, scale) + 1e-4 * Math.abs(r[i])) && bad === null) bad = `∂input ${k} element ${i}: ${a[i]} vs ${r[i]}`;
          }
          t.dispose();
        });
      }
    } catch (e) {
      bad = `${e.name}: ${e.message}`;
    }
    results.push({ name: `backward: ${name}`, pass: bad === null, sets: [{ set: 0, maxAbs, ms: 0, pass: bad === null, detail: bad }] });
    log(`${bad === null ? 'PASS' : 'FAIL'} backward ${name} max abs ${maxAbs.toExponential(1)}${bad ? ` — ${bad}` : ''}`);
  }
  return results;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const cases = await (await fetch('/cases.json')).json();
  const mode = params.get('mode') ?? 'webgl2';
  const messages = [];
  const backend = await gpu({ mode, log: (m) => messages.push(m) });
  const results = params.get('kernels') === '0' ? [] : [...kernelChecks(backend), ...gradChecks(backend)];
  for (const c of cases) {
    let r;
    try {
      r = await runCase(backend, `/fixture/${c.path}`, c.sets, c.meta);
    } catch (e) {
      r = { sets: [], pass: false, error: `${e.name}: ${e.message}` };
    }
    results.push({ name: c.path, ...r });
    log(`${r.pass ? 'PASS' : 'FAIL'} ${c.path} ${r.error ?? r.sets.map((s) => `set ${s.set} max abs ${s.maxAbs.toExponential(1)} ${s.ms.toFixed(0)} ms${s.detail ? ` — ${s.detail}` : ''}`).join('; ')}`);
  }
  const stats = backend.stats();
  const result = { info: backend.info, results, coverage: backend.coverage(), stats, messages, pass: results.every((r) => r.pass) && stats.liveBuffers === 0 };
  backend.destroy();
  return result;
}

main().then(
  (r) => {
    window.__result = r;
  },
  (e) => {
    window.__result = { pass: false, error: `${e && e.name}: ${e && e.message}\n${e && e.stack}` };
    log(window.__result.error);
  },
);
