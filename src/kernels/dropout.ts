import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import type { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { gradArray, gradOf } from './grad.js';

/**
 * Inverted dropout (training mode): y = x·mask/(1 − ratio), mask[i] ∈ {0, 1} drawn from a
 * seeded Rng by `dropout` (kept where rng.next() ≥ ratio), so a run is reproducible. The mask is
 * an attribute, so the gradient, dy·mask/(1 − ratio), uses exactly the forward's mask.
 */
export interface DropoutAttrs {
  readonly ratio: number;
  readonly mask: Uint8Array;
}

/** The card of training-mode Dropout (`dropout`). */
export const dropoutCard: OpCard<DropoutAttrs> = {
  name: 'Dropout',
  shape([x], { mask }) {
    if (mask.length !== x!.reduce((a, b) => a * b, 1)) throw new ShapeError(`Dropout: mask has ${mask.length} elements for input [${x!.join(', ')}]`);
    return x!;
  },
  reference([x], { ratio, mask }) {
    const src = x!.dataSync();
    const out = gradArray(x!);
    const scale = 1 / (1 - ratio);
    for (let i = 0; i < out.length; i++) out[i] = mask[i] ? src[i]! * scale : 0;
    return gradOf(x!, out);
  },
  grad([x], { ratio, mask }, _y, g) {
    const gd = g.dataSync();
    const out = gradArray(x!);
    const scale = 1 / (1 - ratio);
    for (let i = 0; i < out.length; i++) out[i] = mask[i] ? gd[i]! * scale : 0;
    return [gradOf(x!, out)];
  },
};

/**
 * Training-mode dropout with a seeded generator; ratio 0 (or eval mode: do not call it) is the
 * identity.
 *
 * @example
 * ```ts
 * import { Rng, Tensor, dropout } from 'lightconv';
 *
 * const y = dropout(Tensor.ones([4, 8]), 0.5, new Rng(0)); // zeros, and 2s where kept
 * ```
 */
export function dropout(x: Tensor, ratio: number, rng: Rng): Tensor {
  if (!(ratio >= 0 && ratio < 1)) throw new ValueError(`dropout: ratio must be in [0, 1), got ${ratio}`);
  const mask = new Uint8Array(x.size);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() >= ratio ? 1 : 0;
  return apply(dropoutCard, [x], { ratio, mask });
}
