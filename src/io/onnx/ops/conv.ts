import { apply } from '../../../core/op.js';
import { fmtShape } from '../../../core/shape.js';
import { type Activation, NO_ACTIVATION } from '../../../kernels/activation.js';
import { convCard } from '../../../kernels/conv.js';
import { type AutoPad, resolveAutoPad } from '../../../kernels/window.js';
import type { OnnxNode, OnnxOpTable } from '../node.js';

const AUTO_PADS: readonly AutoPad[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/**
 * Internal fusion attributes. They are not ONNX: the graph optimiser sets them when it folds a
 * following activation node into a Conv (or Gemm), and the leading underscore keeps them apart
 * from real attributes.
 *   _activation  one of Activation's kinds: 'none' | 'relu' | 'leaky_relu' | 'clip' | 'sigmoid'
 *                | 'hard_sigmoid' | 'hard_swish' | 'silu' | 'tanh'
 *   _alpha       leaky_relu slope (default 0.01) or hard_sigmoid alpha (default 0.2)
 *   _beta        hard_sigmoid beta (default 0.5)
 *   _min, _max   clip bounds (default −∞, +∞)
 * Defaults are those of the ONNX ops the activation came from.
 */
export function fusedActivation(node: OnnxNode): Activation {
  if (!node.has('_activation')) {
    for (const name of ['_alpha', '_beta', '_min', '_max']) {
      if (node.has(name)) throw node.error(`fusion attribute '${name}' is set without '_activation'`);
    }
    return NO_ACTIVATION;
  }
  const kind = node.string('_activation');
  switch (kind) {
    case 'none':
    case 'relu':
    case 'sigmoid':
    case 'hard_swish':
    case 'silu':
    case 'tanh':
      return { kind };
    case 'leaky_relu':
      return { kind, alpha: node.float('_alpha', 0.01) };
    case 'hard_sigmoid':
      return { kind, alpha: node.float('_alpha', 0.2), beta: node.float('_beta', 0.5) };
    case 'clip':
      return { kind, min: node.float('_min', -Infinity), max: node.float('_max', Infinity) };
    default:
      throw node.error(`unknown fused activation '_activation' = '${kind}'`);
  }
}

/** Reads an optional list of integers, each at least `min`. */
function intsAtLeast(node: OnnxNode, name: string, min: number): number[] | undefined {
  if (!node.has(name)) return undefined;
  const v = node.ints(name);
  const bad = v.findIndex((x) => x < min);
  if (bad >= 0) throw node.error(`${name}[${bad}] = ${v[bad]}, expected ≥ ${min}`);
  return v;
}

/** ONNX adapters for the conv op cards. */
export const convOps: OnnxOpTable = {
  Conv: {
    sinceVersion: 1,
    compile(node) {
      const autoPad = node.string('auto_pad', 'NOTSET') as AutoPad;
      if (!AUTO_PADS.includes(autoPad)) throw node.error(`auto_pad must be one of ${AUTO_PADS.join(', ')}, got '${autoPad}'`);
      const kernelShape = intsAtLeast(node, 'kernel_shape', 1);
      const strides = intsAtLeast(node, 'strides', 1);
      const dilations = intsAtLeast(node, 'dilations', 1);
      const pads = intsAtLeast(node, 'pads', 0);
      const group = node.int('group', 1);
      if (group < 1) throw node.error(`group must be ≥ 1, got ${group}`);
      if (pads && autoPad !== 'NOTSET' && pads.some((p) => p !== 0)) {
        throw node.error(`pads [${pads.join(', ')}] cannot be combined with auto_pad ${autoPad}`);
      }
      // The spatial rank, where the attributes already tell it; otherwise the weight does at run time.
      const ranks = new Set<number>();
      if (kernelShape) ranks.add(kernelShape.length);
      if (strides) ranks.add(strides.length);
      if (dilations) ranks.add(dilations.length);
      if (pads) {
        if (pads.length % 2 !== 0) throw node.error(`pads has ${pads.length} values; expected 2 per spatial axis`);
        ranks.add(pads.length / 2);
      }
      if (ranks.size > 1) throw node.error(`kernel_shape, strides, dilations and pads disagree on the number of spatial axes`);
      const declared = ranks.size === 1 ? [...ranks][0]! : undefined;
      if (declared !== undefined && declared !== 1 && declared !== 2) {
        throw node.error(`only 1-D and 2-D convolutions are supported; the attributes describe ${declared} spatial axes`);
      }
      const activation = fusedActivation(node);

      return (inputs) => {
        const [x, w, b] = inputs;
        if (!x || !w) throw node.error('needs the inputs X and W');
        const r = w.rank - 2;
        if (r !== 1 && r !== 2) throw node.error(`weight ${fmtShape(w.shape)}: only 1-D and 2-D convolutions are supported`);
        if (declared !== undefined && declared !== r) {
          throw node.error(`attributes describe ${declared} spatial axes but weight ${fmtShape(w.shape)} has ${r}`);
        }
        const kernel = w.shape.slice(2);
        if (kernelShape && kernelShape.some((k, i) => k !== kernel[i])) {
          throw node.error(`kernel_shape [${kernelShape.join(', ')}] does not match weight ${fmtShape(w.shape)}`);
        }
        const s = strides ?? new Array<number>(r).fill(1);
        const d = dilations ?? new Array<number>(r).fill(1);
        const p = pads ?? new Array<number>(2 * r).fill(0);
        // SAME_* depends on the input size, so it is resolved here rather than at compile time.
        const resolved = x.rank === r + 2 ? resolveAutoPad(autoPad, x.shape.slice(2), kernel, s, d, p) : p;
        return [apply(convCard, b ? [x, w, b] : [x, w], { strides: s, pads: resolved, dilations: d, group, activation })];
      };
    },
  },
};
