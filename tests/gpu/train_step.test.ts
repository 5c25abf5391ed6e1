import { GPU } from 'gpu.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpuBackend, getBackend, withBackend } from '../../src/core/op.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor, tidy } from '../../src/core/tensor.js';
import { type GpuBackend, type GpuMode, gpu } from '../../src/gpu.js';
import { add } from '../../src/kernels/elementwise.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Hardswish, Linear, MaxPool2d, ReLU } from '../../src/layers/index.js';
import { crossEntropy } from '../../src/train/losses.js';
import { SGD } from '../../src/train/optim.js';
import { expectClose, randomTensor } from '../helpers.js';

/**
 * One training step of a small conv net — forward, cross-entropy, backward, SGD — on the GPU
 * backend (gpu.js cpu / webasm modes) against the CPU backend, from the same initial parameters.
 * The backward of conv (dense, depthwise with stride 2, pointwise), training-mode batch norm,
 * the activations, max pooling, the residual add (whose input gradients meet and add up there),
 * global average pooling, Flatten and the classifier Gemm runs on the GPU; the loss's backward
 * (and the forward of training-mode BN and of the loss) fall back to the CPU, visibly.
 *
 * Tolerance: after 3 steps at lr 0.1, each parameter within 2e-5·max(1, max|p|) + 1e-4 relative
 * of the CPU's (float32 sums in another order, through 3 forward / backward passes).
 */
/** conv 3×3 → ReLU → [depthwise stride 2 → BN → hard-swish] + maxpool (a residual add) → 1×1 conv → ReLU → pool → linear. */
function net(seed: number) {
  const rng = new Rng(seed);
  const m = {
    c1: new Conv2d(3, 8, 3, { padding: 1, rng }),
    relu: new ReLU(),
    dw: new Conv2d(8, 8, 3, { stride: 2, padding: 1, groups: 8, rng }),
    bn: new BatchNorm2d(8),
    hs: new Hardswish(),
    pool: new MaxPool2d(2),
    c2: new Conv2d(8, 12, 1, { rng }),
    gap: new AdaptiveAvgPool2d(),
    flat: new Flatten(),
    fc: new Linear(12, 5, { rng }),
  };
  Object.values(m).forEach((mod) => mod.train());
  return {
    parameters: () => Object.values(m).flatMap((mod) => mod.parameters()),
    forward(x: Tensor): Tensor {
      const h1 = m.relu.forward(m.c1.forward(x));
      const r = add(m.hs.forward(m.bn.forward(m.dw.forward(h1))), m.pool.forward(h1));
      return m.fc.forward(m.flat.forward(m.gap.forward(m.relu.forward(m.c2.forward(r)))));
    },
  };
}

/** headlessgl joins where the optional native `gl` package is built (not by the default install). */
const MODES: GpuMode[] = ['cpu', 'webasm', ...(GPU.isHeadlessGLSupported ? (['headlessgl'] as const) : [])];

describe.each(MODES)('a training step on the GPU backend (gpu.js %s mode) matches the CPU backend', (mode) => {
  let g: GpuBackend;
  const messages: string[] = [];
  beforeAll(async () => {
    g = await gpu({ mode, log: (m) => messages.push(m) });
  });
  afterAll(() => g.destroy());

  it('parameters after 3 SGD steps agree; no GPU buffer outlives a step', () => {
    const x = randomTensor([4, 3, 8, 8], 7);
    const labels = Tensor.fromArray([0, 3, 1, 4], [4], 'int64');
    const cpuNet = net(1);
    const gpuNet = net(1);
    const cpuOpt = new SGD(cpuNet.parameters(), { lr: 0.1, momentum: 0.9 });
    const gpuOpt = new SGD(gpuNet.parameters(), { lr: 0.1, momentum: 0.9 });
    const step = (m: ReturnType<typeof net>, opt: SGD): number => {
      opt.zeroGrad();
      const loss = tidy(() => {
        const l = crossEntropy(m.forward(x), labels);
        const live = g.stats().liveBuffers;
        l.backward();
        // Backward frees each device gradient once used (leaf gradients are host copies).
        if (getBackend() === g) expect(g.stats().liveBuffers, 'GPU buffers left by backward').toBe(live);
        return l.dataSync()[0]!;
      });
      opt.step();
      return loss;
    };
    const kernels: number[] = [];
    for (let s = 0; s < 3; s++) {
      const lc = withBackend(cpuBackend, () => step(cpuNet, cpuOpt));
      const lg = withBackend(g, () => step(gpuNet, gpuOpt));
      expect(Math.abs(lg - lc), `loss at step ${s}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(lc)));
      expect(g.stats().liveBuffers, `live GPU buffers after step ${s}`).toBe(0);
      kernels.push(g.stats().kernels);
    }
    expect(kernels[2], 'no new kernels after the first step (cached per op and shape)').toBe(kernels[0]);
    const pc = cpuNet.parameters();
    const pg = gpuNet.parameters();
    expect(pg.length).toBe(pc.length);
    pc.forEach((p, i) => {
      expect(pg[i]!.device, 'parameters stay on the host').toBeNull();
      expectClose(pg[i]!, p, { atol: 2e-5, rtol: 1e-4, what: `parameter ${i} ${JSON.stringify(p.shape)}` });
    });
    const cov = g.coverage();
    for (const op of ['Conv backward', 'Gemm backward', 'GlobalAveragePool backward', 'BatchNormalizationTraining backward', 'MaxPool backward', 'Binary backward', 'Unary backward', 'Flatten backward']) {
      expect(cov[op], op).toBeDefined();
      expect(cov[op]!.cpu, op).toBe(0);
      expect(cov[op]!.gpu, op).toBeGreaterThan(0);
    }
    // h1 feeds both the depthwise conv and the max pool: its two gradients add up on the device.
    expect(cov['gradient accumulation']).toEqual({ gpu: 3, cpu: 0, reasons: [] });
    // Only the loss's backward runs on the CPU.
    expect(Object.keys(cov).filter((k) => k.endsWith(' backward') && cov[k]!.cpu > 0)).toEqual(['CrossEntropy backward']);
    expect(messages).toContain('lightconv/gpu: CrossEntropy backward runs on the CPU: no gpu.js backward kernel');
  });
});
