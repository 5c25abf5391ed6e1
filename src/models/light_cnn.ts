import { ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../layers/layers.js';
import type { Module } from '../layers/module.js';
import { Network } from './network.js';

/** Options of `lightCnn`: 7 classes, 64×64 input, 196 hidden units by default. */
export interface LightCnnOptions {
  numClasses?: number;
  /** Square input size, a multiple of 16 (default 64). */
  resolution?: number;
  hidden?: number;
  /** BN epsilon (PyTorch's default 1e-5). */
  bnEps?: number;
  seed?: number;
}

/**
 * A compact CNN in the spirit of the HAM10000 skin-lesion paper (690,887 parameters at 64×64 and
 * 7 classes): conv3×3-BN-ReLU ×2 (32) → pool → ×2 (64) → pool → 128 → pool → 128 → pool, each
 * pool followed by Dropout 0.25, then Flatten → Linear(→196) → ReLU → Dropout 0.5 → Linear.
 * Layer names match the PyTorch definition in the fixture's meta.json (features.0 … classifier.4).
 *
 * @example
 * ```ts
 * import { Tensor, lightCnn } from 'lightconv';
 *
 * const net = lightCnn({ numClasses: 7, resolution: 64 });
 * const logits = net.eval().forward(Tensor.zeros([1, 3, 64, 64])); // [1, 7]
 * ```
 */
export function lightCnn(opts: LightCnnOptions = {}): Network {
  const r = opts.resolution ?? 64;
  if (!Number.isSafeInteger(r) || r < 16 || r % 16 !== 0) throw new ValueError(`light_cnn: resolution must be a multiple of 16, got ${r}`);
  const rng = new Rng(opts.seed ?? 0);
  const layers: Module[] = [];
  const block = (i: number, o: number) => layers.push(new Conv2d(i, o, 3, { padding: 1, rng }), new BatchNorm2d(o, { eps: opts.bnEps ?? 1e-5 }), new ReLU());
  const pool = () => layers.push(new MaxPool2d(2), new Dropout(0.25, { seed: rng.nextU32() }));
  block(3, 32);
  block(32, 32);
  pool();
  block(32, 64);
  block(64, 64);
  pool();
  block(64, 128);
  pool();
  block(128, 128);
  pool();
  const flat = 128 * (r / 16) * (r / 16);
  const hidden = opts.hidden ?? 196;
  const classifier = new Sequential(new Flatten(), new Linear(flat, hidden, { rng }), new ReLU(), new Dropout(0.5, { seed: rng.nextU32() }), new Linear(hidden, opts.numClasses ?? 7, { rng }));
  return new Network({ arch: 'light_cnn', input: [1, 3, r, r] }, new Sequential(...layers), classifier, { avgpool: false });
}
