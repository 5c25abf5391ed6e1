/**
 * Training throughput: images/s of full training steps (zeroGrad → forward in train mode →
 * cross-entropy → backward → SGD step with momentum) for MobileNetV3-Small (1000 classes,
 * src/models, torchvision's architecture) at batch 16, 64×64 and 224×224.
 *
 *   npx tsx bench/train.ts [--batch 16] [--sizes 64,224] [--steps 3] [--onnx model.onnx] [--no-gemm-blocking]
 *
 * `--onnx` trains an ONNX graph instead (BN kept, e.g. the shared mobilenet_v3_small_bn fixture),
 * through OnnxTrainable. One warm-up step, then the median of the timed steps, as wall time and
 * as this process's CPU time (user + system: steadier than wall time on a machine shared with
 * other work). bench/train_torch.py is the PyTorch counterpart. `--no-gemm-blocking` turns the
 * GEMM's cache blocking off (gemmBlocking), to measure what it gives.
 */
import { Rng } from '../src/core/rng.js';
import { Tensor } from '../src/core/tensor.js';
import { readOnnx } from '../src/io/onnx/model.js';
import { gemmBlocking } from '../src/kernels/wasm/conv.js';
import { mobileNetV3 } from '../src/models/index.js';
import { crossEntropy } from '../src/train/losses.js';
import { OnnxTrainable } from '../src/train/onnx_trainable.js';
import { SGD } from '../src/train/optim.js';
import type { Trainable } from '../src/train/fit.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

const batch = Number(arg('batch', '16'));
const sizes = arg('sizes', '64,224').split(',').map(Number);
const steps = Number(arg('steps', '3'));
const onnx = process.argv.includes('--onnx') ? arg('onnx', '') : '';
if (process.argv.includes('--no-gemm-blocking')) Object.assign(gemmBlocking, { kc: 1 << 30, mcPanels: 1 << 30, pack: false });

const model: Trainable = onnx ? new OnnxTrainable(await readOnnx(onnx)) : mobileNetV3('small', { numClasses: 1000 });
const what = onnx ? `ONNX graph ${onnx} (OnnxTrainable)` : 'MobileNetV3-Small (src/models, 1000 classes)';
const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
const rng = new Rng(0);
console.log(`training throughput — ${what}, batch ${batch}, SGD momentum, ${steps} timed steps after 1 warm-up`);
for (const size of sizes) {
  const x = Tensor.randn([batch, 3, size, size], { seed: size });
  const labels = Array.from({ length: batch }, () => rng.int(1000));
  const times: number[] = [];
  const cpu: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    model.train();
    optimizer.zeroGrad();
    const loss = crossEntropy(model.forward(x), labels);
    loss.backward();
    optimizer.step();
    const c = process.cpuUsage(c0);
    if (s > 0) {
      times.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
  const ms = median(times);
  console.log(`${String(size).padStart(3)}×${size}: ${ms.toFixed(0).padStart(6)} ms/step  ${((batch * 1000) / ms).toFixed(1).padStart(7)} images/s  (CPU ${median(cpu).toFixed(0)} ms/step)`);
}
