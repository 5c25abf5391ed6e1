import { ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type BnOptions, ConvBNAct, InvertedResidual, makeDivisible } from '../layers/blocks.js';
import { Dropout, Linear, Sequential } from '../layers/layers.js';
import { Network } from './network.js';

/** One EfficientNet stage: (expand_ratio, kernel, stride, input, out, layers), torchvision's MBConvConfig. */
export type MBConvRow = readonly [number, number, number, number, number, number];

/** The B0 table; B1…B7 scale it. */
export const EFFICIENTNET_TABLE: readonly MBConvRow[] = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];

/** The EfficientNet family members, B0 (224 px) to B7 (600 px). */
export type EfficientNetVariant = 'b0' | 'b1' | 'b2' | 'b3' | 'b4' | 'b5' | 'b6' | 'b7';

/** Width and depth multipliers, resolution and classifier dropout per variant (torchvision). */
export const EFFICIENTNET_VARIANTS: Readonly<Record<EfficientNetVariant, { width: number; depth: number; resolution: number; dropout: number }>> = {
  b0: { width: 1.0, depth: 1.0, resolution: 224, dropout: 0.2 },
  b1: { width: 1.0, depth: 1.1, resolution: 240, dropout: 0.2 },
  b2: { width: 1.1, depth: 1.2, resolution: 260, dropout: 0.3 },
  b3: { width: 1.2, depth: 1.4, resolution: 300, dropout: 0.3 },
  b4: { width: 1.4, depth: 1.8, resolution: 380, dropout: 0.4 },
  b5: { width: 1.6, depth: 2.2, resolution: 456, dropout: 0.4 },
  b6: { width: 1.8, depth: 2.6, resolution: 528, dropout: 0.5 },
  b7: { width: 2.0, depth: 3.1, resolution: 600, dropout: 0.5 },
};

/** Options of `efficientNet`; everything defaults to torchvision's values for the variant (1000 classes). */
export interface EfficientNetOptions {
  numClasses?: number;
  /** Override the variant's multipliers (torchvision's _efficientnet_conf accepts any). */
  widthMult?: number;
  depthMult?: number;
  dropout?: number;
  /** Stochastic depth at the last block; grows linearly from 0 with the block index. Default 0.2. */
  stochasticDepth?: number;
  resolution?: number;
  seed?: number;
  /** Custom stages, already scaled (overrides the table and multipliers). */
  stages?: readonly MBConvRow[];
}

/**
 * The stages after width/depth scaling: channels made divisible by 8, layers ceil(n · depth).
 *
 * @example
 * ```ts
 * import { efficientNetStages } from 'lightconv';
 *
 * const rows = efficientNetStages('b3'); // [expand, kernel, stride, in, out, layers] per stage
 * ```
 */
export function efficientNetStages(variant: EfficientNetVariant, opts: EfficientNetOptions = {}): MBConvRow[] {
  if (opts.stages) return [...opts.stages];
  const v = EFFICIENTNET_VARIANTS[variant];
  if (!v) throw new ValueError(`efficientnet: unknown variant '${variant}' (b0…b7)`);
  const w = opts.widthMult ?? v.width;
  const d = opts.depthMult ?? v.depth;
  const adj = (c: number) => makeDivisible(c * w, 8);
  return EFFICIENTNET_TABLE.map(([e, k, s, i, o, n]) => [e, k, s, adj(i), adj(o), Math.ceil(n * d)] as const);
}

/**
 * Builds an EfficientNet (torchvision's structure and names) from stages.
 *
 * @example
 * ```ts
 * import { buildEfficientNet, efficientNetStages } from 'lightconv';
 *
 * const stages = efficientNetStages('b0').slice(0, 4); // a shallower B0
 * const net = buildEfficientNet('efficientnet_b0_small', stages, {
 *   numClasses: 2, bn: { eps: 1e-5, momentum: 0.1 }, dropout: 0.2, resolution: 224,
 * });
 * ```
 */
export function buildEfficientNet(arch: string, stages: readonly MBConvRow[], opts: EfficientNetOptions & { bn: BnOptions; dropout: number; resolution: number }): Network {
  const rng = new Rng(opts.seed ?? 0);
  const { bn } = opts;
  const features = new Sequential(new ConvBNAct(3, stages[0]![3], 3, { stride: 2, activation: 'silu', bn, rng }));
  const total = stages.reduce((a, r) => a + r[5], 0);
  const sd = opts.stochasticDepth ?? 0.2;
  let id = 0;
  for (const [e, k, s, i, o, n] of stages) {
    const stage = new Sequential();
    for (let j = 0; j < n; j++) {
      const inC = j === 0 ? i : o;
      const cfg = { inChannels: inC, kernel: k, expanded: makeDivisible(inC * e, 8), outChannels: o, attention: 'se' as const, activation: 'silu' as const, stride: j === 0 ? s : 1, dilation: 1 };
      stage.append(new InvertedResidual(cfg, { bn, rng, se: 'efficientnet', stochasticDepth: (sd * id) / total, seed: rng.nextU32() }));
      id++;
    }
    features.append(stage);
  }
  const lastIn = stages[stages.length - 1]![4];
  features.append(new ConvBNAct(lastIn, 4 * lastIn, 1, { activation: 'silu', bn, rng }));
  const classifier = new Sequential(new Dropout(opts.dropout, { seed: rng.nextU32() }), new Linear(4 * lastIn, opts.numClasses ?? 1000, { rng, init: 'efficientnet' }));
  return new Network({ arch, input: [1, 3, opts.resolution, opts.resolution] }, features, classifier);
}

/**
 * EfficientNet B0…B7. BN: eps 1e-5 / momentum 0.1 for B0–B4, eps 1e-3 / momentum 0.01 for B5–B7
 * (as torchvision builds them).
 *
 * @example
 * ```ts
 * import { Tensor, efficientNet } from 'lightconv';
 *
 * const net = efficientNet('b0', { numClasses: 3, seed: 0 }).eval();
 * const logits = net.forward(Tensor.randn([2, 3, 224, 224], { seed: 1 })); // [2, 3]
 * ```
 */
export function efficientNet(variant: EfficientNetVariant = 'b0', opts: EfficientNetOptions = {}): Network {
  const v = EFFICIENTNET_VARIANTS[variant];
  if (!v) throw new ValueError(`efficientnet: unknown variant '${variant}' (b0…b7)`);
  const bn: BnOptions = ['b5', 'b6', 'b7'].includes(variant) ? { eps: 1e-3, momentum: 0.01 } : { eps: 1e-5, momentum: 0.1 };
  return buildEfficientNet(`efficientnet_${variant}`, efficientNetStages(variant, opts), {
    ...opts,
    bn,
    dropout: opts.dropout ?? v.dropout,
    resolution: opts.resolution ?? v.resolution,
  });
}
