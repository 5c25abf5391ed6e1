import { ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type AttentionKind, type BnOptions, ConvBNAct, InvertedResidual, type InvertedResidualConfig, makeDivisible } from '../layers/blocks.js';
import { type ActivationName, Dropout, Hardswish, Linear, Sequential } from '../layers/layers.js';
import { Network } from './network.js';

/**
 * One MobileNetV3 block, torchvision's bneck_conf row:
 * (input, kernel, expanded, out, use_se, activation 'RE' | 'HS', stride, dilation).
 */
export type MobileNetV3Row = readonly [number, number, number, number, boolean, 'RE' | 'HS', number, number];

/** torchvision's `_mobilenet_v3_conf` tables (before width scaling) and last_channel. */
export const MOBILENET_V3_TABLES: Readonly<Record<'small' | 'large', { rows: readonly MobileNetV3Row[]; lastChannel: number }>> = {
  small: {
    rows: [
      [16, 3, 16, 16, true, 'RE', 2, 1],
      [16, 3, 72, 24, false, 'RE', 2, 1],
      [24, 3, 88, 24, false, 'RE', 1, 1],
      [24, 5, 96, 40, true, 'HS', 2, 1],
      [40, 5, 240, 40, true, 'HS', 1, 1],
      [40, 5, 240, 40, true, 'HS', 1, 1],
      [40, 5, 120, 48, true, 'HS', 1, 1],
      [48, 5, 144, 48, true, 'HS', 1, 1],
      [48, 5, 288, 96, true, 'HS', 2, 1],
      [96, 5, 576, 96, true, 'HS', 1, 1],
      [96, 5, 576, 96, true, 'HS', 1, 1],
    ],
    lastChannel: 1024,
  },
  large: {
    rows: [
      [16, 3, 16, 16, false, 'RE', 1, 1],
      [16, 3, 64, 24, false, 'RE', 2, 1],
      [24, 3, 72, 24, false, 'RE', 1, 1],
      [24, 5, 72, 40, true, 'RE', 2, 1],
      [40, 5, 120, 40, true, 'RE', 1, 1],
      [40, 5, 120, 40, true, 'RE', 1, 1],
      [40, 3, 240, 80, false, 'HS', 2, 1],
      [80, 3, 200, 80, false, 'HS', 1, 1],
      [80, 3, 184, 80, false, 'HS', 1, 1],
      [80, 3, 184, 80, false, 'HS', 1, 1],
      [80, 3, 480, 112, true, 'HS', 1, 1],
      [112, 3, 672, 112, true, 'HS', 1, 1],
      [112, 5, 672, 160, true, 'HS', 2, 1],
      [160, 5, 960, 160, true, 'HS', 1, 1],
      [160, 5, 960, 160, true, 'HS', 1, 1],
    ],
    lastChannel: 1280,
  },
};

/** Options of `mobileNetV3`; defaults are torchvision's (1000 classes, width 1, SE, ReLU). */
export interface MobileNetV3Options {
  numClasses?: number;
  /** torchvision's width_mult: every channel count scaled and made divisible by 8. */
  widthMult?: number;
  /** 'se' keeps the table's squeeze-excitation; 'eca' puts ECA where the table has SE; 'none' drops it. */
  attention?: 'se' | 'eca' | 'none';
  /** The table's ReLU ('RE') blocks: 'relu' (default) or 'leaky_relu' (slope `slope`, 0.01). */
  activation?: 'relu' | 'leaky_relu';
  slope?: number;
  /** Dilation 2 in the depthwise convs of the stride-1 blocks of the last stage (the paper's variant). */
  dilation?: boolean;
  dropout?: number;
  /** Input resolution for summaries (default 224). */
  resolution?: number;
  /** Seed of the weight initialisation and of the dropout masks. */
  seed?: number;
  /** Custom rows instead of a table (already width-scaled), with their last_channel. */
  rows?: readonly MobileNetV3Row[];
  lastChannel?: number;
  /** BN settings; default eps 1e-3, momentum 0.01 (torchvision's MobileNetV3). */
  bn?: BnOptions;
}

/**
 * The block configs after the options' transformations: the improved MobileNetV3-Small is `small` +
 * eca + leaky_relu + dilation.
 *
 * @example
 * ```ts
 * import { mobileNetV3Configs } from 'lightconv';
 *
 * const { blocks, lastChannel } = mobileNetV3Configs('small', { attention: 'eca' });
 * ```
 */
export function mobileNetV3Configs(variant: 'small' | 'large' | 'custom', opts: MobileNetV3Options = {}): { blocks: InvertedResidualConfig[]; lastChannel: number } {
  const wm = opts.widthMult ?? 1;
  let rows: readonly MobileNetV3Row[];
  let lastChannel: number;
  if (opts.rows) {
    rows = opts.rows;
    lastChannel = opts.lastChannel ?? makeDivisible(MOBILENET_V3_TABLES.small.lastChannel * wm);
  } else {
    if (variant === 'custom') throw new ValueError(`mobilenetV3('custom') needs rows`);
    const t = MOBILENET_V3_TABLES[variant];
    const adj = (c: number) => makeDivisible(c * wm, 8);
    rows = t.rows.map(([i, k, e, o, se, a, s, d]) => [adj(i), k, adj(e), adj(o), se, a, s, d] as const);
    lastChannel = opts.lastChannel ?? adj(t.lastChannel);
  }
  const att: AttentionKind = opts.attention ?? 'se';
  const re: ActivationName = opts.activation === 'leaky_relu' ? 'leaky_relu' : 'relu';
  const lastStride2 = rows.reduce((last, r, i) => (r[6] === 2 ? i : last), -1);
  const blocks = rows.map(([i, k, e, o, se, a, s, d], idx): InvertedResidualConfig => ({
    inChannels: i,
    kernel: k,
    expanded: e,
    outChannels: o,
    attention: se ? (att === 'se' ? 'se' : att) : 'none',
    activation: a === 'HS' ? 'hardswish' : re,
    stride: s,
    dilation: opts.dilation && idx > lastStride2 && s === 1 ? 2 : d,
  }));
  return { blocks, lastChannel };
}

/** MobileNetV3 BN: eps 1e-3, momentum 0.01 (torchvision). */
export const MOBILENET_BN: BnOptions = { eps: 1e-3, momentum: 0.01 };

/**
 * Builds a MobileNetV3 (torchvision's structure and names) from block configs.
 *
 * @example
 * ```ts
 * import { buildMobileNetV3, mobileNetV3Configs } from 'lightconv';
 *
 * const { blocks, lastChannel } = mobileNetV3Configs('small', { widthMult: 0.5 });
 * const net = buildMobileNetV3('mobilenet_v3_small_050', blocks, lastChannel, { numClasses: 2 });
 * ```
 */
export function buildMobileNetV3(arch: string, blocks: readonly InvertedResidualConfig[], lastChannel: number, opts: MobileNetV3Options = {}): Network {
  if (blocks.length === 0) throw new ValueError('MobileNetV3: no blocks');
  const rng = new Rng(opts.seed ?? 0);
  const bn = opts.bn ?? MOBILENET_BN;
  const slope = opts.slope ?? 0.01;
  const features = new Sequential(new ConvBNAct(3, blocks[0]!.inChannels, 3, { stride: 2, activation: 'hardswish', bn, rng }));
  for (const cfg of blocks) features.append(new InvertedResidual(cfg, { bn, rng, se: 'mobilenet', slope }));
  const lastIn = blocks[blocks.length - 1]!.outChannels;
  const lastOut = 6 * lastIn;
  features.append(new ConvBNAct(lastIn, lastOut, 1, { activation: 'hardswish', bn, rng }));
  const classifier = new Sequential(
    new Linear(lastOut, lastChannel, { rng, init: 'mobilenet' }),
    new Hardswish(),
    new Dropout(opts.dropout ?? 0.2, { seed: rng.nextU32() }),
    new Linear(lastChannel, opts.numClasses ?? 1000, { rng, init: 'mobilenet' }),
  );
  const r = opts.resolution ?? 224;
  return new Network({ arch, input: [1, 3, r, r] }, features, classifier);
}

/**
 * MobileNetV3 Small or Large, torchvision's layout; `{ attention: 'eca', activation: 'leaky_relu',
 * dilation: true }` on 'small' gives the improved MobileNetV3-Small (ECA, Leaky-ReLU 0.01,
 * dilated last stage).
 *
 * @example
 * ```ts
 * import { mobileNetV3 } from 'lightconv';
 *
 * const improved = mobileNetV3('small', { attention: 'eca', activation: 'leaky_relu', dilation: true, numClasses: 4 });
 * improved.summary({ input: [1, 3, 224, 224] });
 * ```
 */
export function mobileNetV3(variant: 'small' | 'large' = 'small', opts: MobileNetV3Options = {}): Network {
  const { blocks, lastChannel } = mobileNetV3Configs(variant, opts);
  const improved = variant === 'small' && opts.attention === 'eca' && opts.activation === 'leaky_relu' && opts.dilation;
  const arch = improved ? 'eca_mobilenet_v3_small' : `mobilenet_v3_${variant}`;
  return buildMobileNetV3(arch, blocks, lastChannel, opts);
}
