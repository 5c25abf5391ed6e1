/**
 * The WebAssembly GEMM's cache blocking (`gemmBlocking` in src/kernels/wasm/conv.ts) side by
 * side: off, K/M blocks only, and blocks with far-apart B panels copied together (the default): convolutions as inside a model run (input in the arena of kernel memory,
 * weights constant and packed once), one thread, interleaved rounds in which the two modes
 * alternate which goes first. Prints medians, the ratio off ÷ default (> 1: blocking
 * faster) and the default's GMAC/s. Blocking does not change a bit of any result (tests/kernels/gemm_blocking.test.ts).
 *
 *   npx tsx bench/gemm_blocking.ts [--rounds 9]
 */
import { parseArgs } from 'node:util';
import { withOutputArena } from '../src/core/storage.js';
import { Tensor } from '../src/core/tensor.js';
import { type ConvAttrs, conv, convCard } from '../src/kernels/conv.js';
import { openArena } from '../src/kernels/wasm/arena.js';
import { gemmBlocking } from '../src/kernels/wasm/conv.js';
import { markConstant, runtime, withWasmKernels } from '../src/kernels/wasm/runtime.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '9' } } });
const rounds = Number(args.rounds);
if (!runtime()) throw new Error('WebAssembly SIMD kernels are not available here');

const pad1 = { pads: [1, 1, 1, 1] };
const CASES: [string, number[], number[], Partial<ConvAttrs>][] = [
  ['1×1 96→384 @56 (ConvNeXt-T MLP, stage 1)', [1, 96, 56, 56], [384, 96, 1, 1], {}],
  ['1×1 384→96 @56 (ConvNeXt-T MLP, stage 1)', [1, 384, 56, 56], [96, 384, 1, 1], {}],
  ['1×1 768→3072 @7 (ConvNeXt-T MLP, stage 4)', [1, 768, 7, 7], [3072, 768, 1, 1], {}],
  ['1×1 1024→1024 @32', [1, 1024, 32, 32], [1024, 1024, 1, 1], {}],
  ['3×3 64→64 @56 (ResNet stage 1)', [1, 64, 56, 56], [64, 64, 3, 3], pad1],
  ['3×3 256→256 @14 (ResNet stage 3)', [1, 256, 14, 14], [256, 256, 3, 3], pad1],
  ['3×3 512→512 @7 (ResNet stage 4)', [1, 512, 7, 7], [512, 512, 3, 3], pad1],
  ['1×1 320→1280 @7 (EfficientNet-B0 head)', [1, 320, 7, 7], [1280, 320, 1, 1], {}],
  ['1×1 96→576 @7 b16 (MobileNetV3-Small)', [16, 96, 7, 7], [576, 96, 1, 1], {}],
  ['1×1 40→240 @28 (EfficientNet-B0)', [1, 40, 28, 28], [240, 40, 1, 1], {}],
];

const ON = { ...gemmBlocking };
const MODES = { off: { ...ON, kc: 1 << 30, mcPanels: 1 << 30, pack: false }, blocks: { ...ON, pack: false }, on: ON };
type Mode = keyof typeof MODES;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

console.log(`GEMM cache blocking (kc ${ON.kc}, ${ON.mcPanels} A panels), one thread, median of ${rounds} rounds`);
for (const [name, xs, ws, opts] of CASES) {
  const X = Tensor.randn(xs, { seed: 1 });
  const W = Tensor.randn(ws, { seed: 2 });
  markConstant(W.dataSync() as Float32Array);
  const attrs: ConvAttrs = { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: { kind: 'none' }, ...opts };
  const arena = openArena()!;
  const d = arena.alloc(X.size);
  d.set(X.dataSync() as Float32Array);
  const x = new Tensor(d, X.shape);
  const once = (mode: Mode) => {
    Object.assign(gemmBlocking, MODES[mode]);
    const t0 = performance.now();
    const y = withWasmKernels(true, () => withOutputArena(arena, () => conv(x, W, null, opts)));
    const ms = performance.now() - t0;
    const block = arena.blockOf(y.dataSync());
    if (block >= 0) arena.free(block);
    return ms;
  };
  const modes = Object.keys(MODES) as Mode[];
  for (const m of modes) once(m);
  const t = { off: [] as number[], blocks: [] as number[], on: [] as number[] };
  for (let r = 0; r < rounds; r++) for (let i = 0; i < modes.length; i++) {
    const m = modes[(i + r) % modes.length]!; // each mode first in turn
    t[m].push(once(m));
  }
  Object.assign(gemmBlocking, ON);
  const macs = convCard.macs!([X.shape, W.shape], attrs);
  const [off, blocks, on] = [median(t.off), median(t.blocks), median(t.on)];
  console.log(`${name.padEnd(44)} off ${off.toFixed(2).padStart(7)} ms  blocks ${blocks.toFixed(2).padStart(7)} ms  +pack ${on.toFixed(2).padStart(7)} ms  off/on ${(off / on).toFixed(2)}  ${(macs / on / 1e6).toFixed(1)} GMAC/s`);
}
