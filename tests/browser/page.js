// Runs in the browser: loads the browser-safe ESM entries (lightconv/onnx and lightconv/gpu, the
// main one decodes images with pngjs), runs each ONNX test-layout case (model.onnx +
// test_data_set_N/input_K.pb, output_K.pb) through the GPU backend on WebGL2 and compares every
// output with the reference within the case's tolerance (meta.json, else abs 1e-4, rel 1e-3).
// Then, on the CPU backend's WebAssembly kernels, it runs model fixtures with one thread and
// with two (a Web Worker on the shared memory; the page is cross-origin isolated) and checks
// that both give the same bits, that these match the reference, and that the worker took part.
// The result goes to window.__result for the runner (tests/browser/run.ts) and to the page.
import { decodeTensor, loadOnnx, setThreads, wasmKernelsEnabled } from '/lib/onnx.js';
import { GPU_GRADS, GPU_KERNELS, Tensor, cpuBackend, gpu, referenceBackend, useBackend } from '/lib/gpu.js';
import { runtime, tuning } from '/lib/testing.js';

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

/** Models run on the CPU with setThreads(1) and setThreads(2); with `twoFirst`, two threads run first. */
const THREAD_MODELS = [
  { name: 'effnet_mini', twoFirst: false },
  { name: 'mnv3_mini', twoFirst: true },
  { name: 'eca_mini', twoFirst: true },
];

/**
 * The WebAssembly kernels with a Web Worker: per model and test set, one run with one thread
 * (checked against the reference), then with two threads one run that starts the worker, a
 * pause so that it is up, and several more runs (replayed from the third: see KernelPlan) —
 * every output must have the same bits as the one-thread run. The kernels' work thresholds are lowered so that these small models are cut
 * into chunks at all.
 */
async function threadChecks(cases) {
  const results = [];
  const check = (name, bad, sets = [{ set: 0, maxAbs: 0, ms: 0 }]) => {
    results.push({ name, pass: bad === null, sets: sets.map((s) => ({ ...s, pass: bad === null, detail: bad })) });
    log(`${bad === null ? 'PASS' : 'FAIL'} ${name}${bad ? ` — ${bad}` : ''}`);
  };
  check('cpu threads: crossOriginIsolated', self.crossOriginIsolated === true ? null : `crossOriginIsolated is ${self.crossOriginIsolated}`);
  const rt = runtime();
  const setup = !wasmKernelsEnabled() || !rt ? 'no WebAssembly kernels' : !rt.shared ? 'the kernel memory is not shared' : typeof Atomics.waitAsync !== 'function' ? 'no Atomics.waitAsync' : null;
  check('cpu threads: shared WebAssembly memory', setup);
  if (setup) return results;
  const saved = { ...tuning };
  const workerChunks0 = rt.pool.workerChunks;
  try {
    Object.assign(tuning, { minParallelNs: 0, minChunkNs: 0, chunksPerThread: 6 });
    for (const { name, twoFirst } of THREAD_MODELS) {
      const c = cases.find((k) => k.path === `0/${name}`);
      if (!c) {
        check(`cpu threads: ${name}`, 'fixture not served');
        continue;
      }
      const base = `/fixture/${c.path}`;
      const meta = c.meta ? await (await fetch(`${base}/meta.json`)).json() : {};
      const tol = meta.recommended_tolerance ?? { abs: 1e-4, rel: 1e-3 };
      const model = await loadOnnx(await fetchBytes(`${base}/model.onnx`));
      const sets = [];
      let bad = null;
      const before = rt.pool.workerChunks;
      for (const [s, counts] of c.sets.entries()) {
        const feeds = {};
        for (let k = 0; k < counts.inputs; k++) feeds[model.inputs[k].name] = decodeTensor(await fetchBytes(`${base}/test_data_set_${s}/input_${k}.pb`));
        const run = async () => {
          const outs = await model.run(feeds);
          const ys = [];
          for (let k = 0; k < counts.outputs; k++) ys.push(new Uint32Array(Float32Array.from(await outs[model.outputs[k].name].data()).buffer));
          Object.values(outs).forEach((t) => t.dispose());
          return ys;
        };
        // Threads first for some models: their kernels are then compiled (and handed to the
        // worker) while it is running jobs.
        let two0 = null;
        if (twoFirst) {
          setThreads(2);
          two0 = await run();
        }
        setThreads(1);
        const t0 = performance.now();
        const one = await run();
        const ms = performance.now() - t0;
        if (two0) for (let k = 0; k < counts.outputs; k++) if (two0[k].some((b, j) => b !== one[k][j])) bad ??= `set ${s} output ${k}: two threads (first run) gave different bits`;
        let maxAbs = 0;
        for (let k = 0; k < counts.outputs; k++) {
          const r = decodeTensor(await fetchBytes(`${base}/test_data_set_${s}/output_${k}.pb`)).dataSync();
          const y = new Float32Array(one[k].buffer);
          if (y.length !== r.length) bad ??= `set ${s} output ${k}: ${y.length} elements vs ${r.length}`;
          for (let i = 0; i < r.length; i++) {
            const d = Math.abs(y[i] - r[i]);
            maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
            if (!(d <= tol.abs + tol.rel * Math.abs(r[i]))) bad ??= `set ${s} output ${k} element ${i}: ${y[i]} vs ${r[i]} (one thread)`;
          }
        }
        setThreads(2);
        for (let rep = 0; rep < 9; rep++) {
          const two = await run();
          for (let k = 0; k < counts.outputs; k++) {
            const i = two[k].findIndex((b, j) => b !== one[k][j]);
            if (i >= 0 || two[k].length !== one[k].length) bad ??= `set ${s} output ${k} element ${i}: two threads gave different bits (run ${rep + 1})`;
          }
          if (rep === 0) await new Promise((ok) => setTimeout(ok, 300)); // the worker starts
        }
        // From the third run at a shape a model replays its recorded kernel calls.
        const replay = model.replayStatus(feeds);
        if (!replay.replaying) bad ??= `set ${s}: not replaying (${replay.reason})`;
        sets.push({ set: s, maxAbs, ms });
      }
      const byWorker = rt.pool.workerChunks - before;
      if (byWorker === 0) bad ??= 'the worker ran no chunk';
      check(`cpu threads: ${name} (1 vs 2 threads, ${byWorker} chunks run by the worker)`, bad, sets);
    }
  } finally {
    Object.assign(tuning, saved);
    setThreads(1);
  }
  let stopped = null;
  try {
    rt.pool.stop(); // terminates the worker
  } catch (e) {
    stopped = `${e.name}: ${e.message}`;
  }
  check(`cpu threads: pool stopped (${rt.pool.workerChunks - workerChunks0} chunks run by the worker in all)`, stopped);
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
  const coverage = backend.coverage();
  backend.destroy();
  results.push(...(await threadChecks(cases)));
  return { info: backend.info, results, coverage, stats, messages, pass: results.every((r) => r.pass) && stats.liveBuffers === 0 };
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
