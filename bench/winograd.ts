/**
 * Winograd F(2×2, 3×3) against the direct (im2col + GEMM) path for 3×3 stride-1 convs, side by
 * side: as inside a model run (input in the arena of kernel memory, weights constant),
 * one thread, interleaved rounds that alternate which path goes first. Prints medians, the
 * ratio direct ÷ Winograd (> 1: Winograd faster), and each path's largest error against the
 * float64 reference relative to max|y|.
 *
 *   npx tsx bench/winograd.ts [--rounds 9]
 */
import { parseArgs } from 'node:util';
import { referenceBackend, withBackend } from '../src/core/op.js';
import { withOutputArena } from '../src/core/storage.js';
import { Tensor } from '../src/core/tensor.js';
import { conv } from '../src/kernels/conv.js';
import { openArena } from '../src/kernels/wasm/arena.js';
import { markConstant, runtime, withWasmKernels } from '../src/kernels/wasm/runtime.js';
import { winogradEnabled } from '../src/kernels/wasm/winograd.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '9' } } });
const rounds = Number(args.rounds);
if (!runtime()) throw new Error('WebAssembly SIMD kernels are not available here');

const CASES: [string, number, number, number][] = [
  ['ResNet-18/50 stage 1: 64→64 @56', 64, 64, 56],
  ['ResNet stage 2: 128→128 @28', 128, 128, 28],
  ['ResNet stage 3: 256→256 @14', 256, 256, 14],
  ['ResNet stage 4: 512→512 @7', 512, 512, 7],
  ['VGG-11: 128→256 @56', 128, 256, 56],
  ['DenseNet-121 growth: 128→32 @28', 128, 32, 28],
];
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const opts = { pads: [1, 1, 1, 1] };

console.log(`3×3 stride-1 convs, Winograd F(2×2, 3×3) vs im2col + GEMM, one thread, median of ${rounds} rounds`);
for (const [name, c, m, hw] of CASES) {
  const X = Tensor.randn([1, c, hw, hw], { seed: 1 });
  const W = Tensor.randn([m, c, 3, 3], { seed: 2 });
  markConstant(W.dataSync() as Float32Array);
  const arena = openArena()!;
  const d = arena.alloc(X.size);
  d.set(X.dataSync() as Float32Array);
  const x = new Tensor(d, X.shape);
  const once = (wino: boolean) => {
    winogradEnabled.on = wino;
    const t0 = performance.now();
    const y = withWasmKernels(true, () => withOutputArena(arena, () => conv(x, W, null, opts)));
    const ms = performance.now() - t0;
    const out = (y.dataSync() as Float32Array).slice();
    const block = arena.blockOf(y.dataSync());
    if (block >= 0) arena.free(block);
    return { ms, out };
  };
  const ref = withBackend(referenceBackend, () => conv(X, W, null, opts)).dataSync();
  const scale = Array.from(ref).reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const err = (o: Float32Array) => o.reduce((a, v, i) => Math.max(a, Math.abs(v - ref[i]!)), 0) / scale;
  const eDirect = err(once(false).out);
  const eWino = err(once(true).out);
  const t = { direct: [] as number[], wino: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const w of r % 2 ? [true, false] : [false, true]) t[w ? 'wino' : 'direct'].push(once(w).ms);
  }
  winogradEnabled.on = true;
  const [dm, wm] = [median(t.direct), median(t.wino)];
  console.log(`${name.padEnd(34)} direct ${dm.toFixed(2).padStart(7)} ms  winograd ${wm.toFixed(2).padStart(7)} ms  ${(dm / wm).toFixed(2)}×  error/max|y| ${eDirect.toExponential(1)} vs ${eWino.toExponential(1)}`);
}
