import { normAxis } from '../../../core/shape.js';
import type { Tensor } from '../../../core/tensor.js';
import { convTranspose } from '../../../kernels/conv_transpose.js';
import { type GeluApproximate, gelu } from '../../../kernels/gelu.js';
import { COORDINATE_MODES, type CoordinateMode, NEAREST_MODES, type NearestMode, RESIZE_MODES, type ResizeMode, resize } from '../../../kernels/resize.js';
import type { AutoPad } from '../../../kernels/window.js';
import { type OnnxNode, type OnnxOpTable, readInts } from '../node.js';

type Inputs = ReadonlyArray<Tensor | undefined>;

/** A string attribute that must be one of `allowed`. */
function oneOf<T extends string>(node: OnnxNode, name: string, allowed: readonly T[], def: T): T {
  const v = node.string(name, def);
  if (!(allowed as readonly string[]).includes(v)) throw node.error(`${name} '${v}' is not one of ${allowed.join(', ')}`);
  return v as T;
}

/** Refuses attributes the node's opset does not define (they would be silently ignored otherwise). */
function onlySince(node: OnnxNode, names: readonly string[], version: number): void {
  for (const n of names) if (node.has(n) && node.opset < version) throw node.error(`attribute '${n}' needs opset ≥ ${version} (the model imports ${node.opset})`);
}

/** A present, non-empty optional input (ONNX passes '' or an empty tensor for "not given"). */
function given(inputs: Inputs, i: number): Tensor | undefined {
  const t = inputs[i];
  return t && t.size > 0 ? t : undefined;
}

/** numpy's round (half to even), as ONNX's reference rounds keep_aspect_ratio_policy sizes. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

interface ResizeSettings {
  mode: ResizeMode;
  coordinateMode: CoordinateMode;
  nearestMode: NearestMode;
  cubicA: number;
  excludeOutside: boolean;
  extrapolationValue: number;
  antialias: boolean;
  axes?: number[];
  policy: 'stretch' | 'not_larger' | 'not_smaller';
}

/**
 * Resolves scales / sizes / roi given for `axes` (or all axes) into full-rank scales, output
 * sizes and roi, then runs the kernel.
 */
function runResize(node: OnnxNode, x: Tensor, s: ResizeSettings, scalesT: Tensor | undefined, sizesT: Tensor | undefined, roiT: Tensor | undefined): Tensor {
  const r = x.rank;
  const axes = s.axes ? s.axes.map((a) => normAxis(a, r, node.label)) : x.shape.map((_, i) => i);
  if (new Set(axes).size !== axes.length) throw node.error(`axes [${s.axes!.join(', ')}] lists an axis twice`);
  if (scalesT && sizesT) throw node.error('give scales or sizes, not both');
  if (!scalesT && !sizesT) throw node.error('needs scales or sizes (both are missing or empty)');
  const scales = x.shape.map(() => 1);
  const sizes = [...x.shape];
  if (scalesT) {
    const v = [...scalesT.dataSync()];
    if (v.length !== axes.length) throw node.error(`${v.length} scales for ${axes.length} axes (input shape [${x.shape.join(', ')}])`);
    axes.forEach((a, i) => (scales[a] = v[i]!));
    scales.forEach((v, i) => {
      if (!(Number.isFinite(v) && v > 0)) throw node.error(`scale ${v} on axis ${i} must be positive`);
    });
  } else {
    const v = readInts(node, sizesT!, 'sizes');
    if (v.length !== axes.length) throw node.error(`${v.length} sizes for ${axes.length} axes (input shape [${x.shape.join(', ')}])`);
    if (v.some((d) => d < 0)) throw node.error(`sizes [${v.join(', ')}] must be non-negative`);
    if (s.policy === 'stretch') axes.forEach((a, i) => (sizes[a] = v[i]!));
    else {
      // One scale for all the listed axes, the largest that fits (not_larger) or the smallest that covers.
      const ratios = axes.map((a, i) => v[i]! / x.shape[a]!);
      const k = s.policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a) => (sizes[a] = roundHalfEven(k * x.shape[a]!)));
      axes.forEach((a) => (scales[a] = k));
    }
    if (s.policy === 'stretch') axes.forEach((a) => (scales[a] = x.shape[a] === 0 ? 1 : sizes[a]! / x.shape[a]!));
  }
  let roi: number[] | undefined;
  if (s.coordinateMode === 'tf_crop_and_resize') {
    if (!roiT) throw node.error('tf_crop_and_resize needs the roi input');
    const v = [...roiT.dataSync()];
    if (v.length !== 2 * axes.length) throw node.error(`roi has ${v.length} values; expected ${2 * axes.length} (start and end per axis)`);
    roi = [...x.shape.map(() => 0), ...x.shape.map(() => 1)];
    axes.forEach((a, i) => {
      roi![a] = v[i]!;
      roi![a + r] = v[i + axes.length]!;
    });
  }
  if (scalesT) {
    // floor(in · scale), the crop's extent included for tf_crop_and_resize (ONNX's output size rule).
    x.shape.forEach((d, i) => (sizes[i] = Math.floor(d * (roi ? roi[i + r]! - roi[i]! : 1) * scales[i]!)));
  }
  return resize(x, { ...s, scales, sizes, ...(roi ? { roi } : {}) });
}

/** ONNX adapters for Resize, Upsample, ConvTranspose and Gelu. */
export const layerOps: OnnxOpTable = {
  Resize: {
    sinceVersion: 10,
    compile(node) {
      const mode = oneOf(node, 'mode', node.opset < 11 ? (['nearest', 'linear'] as const) : RESIZE_MODES, 'nearest');
      if (node.opset < 11) {
        // Resize-10 has only mode: asymmetric coordinates, nearest rounding down (as Upsample).
        onlySince(node, ['coordinate_transformation_mode', 'nearest_mode', 'cubic_coeff_a', 'exclude_outside', 'extrapolation_value'], 11);
        const s: ResizeSettings = { mode, coordinateMode: 'asymmetric', nearestMode: 'floor', cubicA: -0.75, excludeOutside: false, extrapolationValue: 0, antialias: false, policy: 'stretch' };
        return (inputs) => [runResize(node, node.input(inputs, 0, 'X'), s, node.input(inputs, 1, 'scales'), undefined, undefined)];
      }
      onlySince(node, ['antialias', 'axes', 'keep_aspect_ratio_policy'], 18);
      const coordModes = COORDINATE_MODES.filter((m) => m !== 'half_pixel_symmetric' || node.opset >= 19);
      const s: ResizeSettings = {
        mode,
        coordinateMode: oneOf(node, 'coordinate_transformation_mode', coordModes, 'half_pixel'),
        nearestMode: oneOf(node, 'nearest_mode', NEAREST_MODES, 'round_prefer_floor'),
        cubicA: node.float('cubic_coeff_a', -0.75),
        excludeOutside: node.int('exclude_outside', 0) !== 0,
        extrapolationValue: node.float('extrapolation_value', 0),
        antialias: node.int('antialias', 0) !== 0,
        policy: oneOf(node, 'keep_aspect_ratio_policy', ['stretch', 'not_larger', 'not_smaller'] as const, 'stretch'),
        ...(node.has('axes') ? { axes: node.ints('axes') } : {}),
      };
      return (inputs) => {
        const x = node.input(inputs, 0, 'X');
        const sizes = given(inputs, 3);
        if (sizes && s.policy !== 'stretch' && given(inputs, 2)) throw node.error('keep_aspect_ratio_policy applies to sizes; scales are given too');
        return [runResize(node, x, s, given(inputs, 2), sizes, given(inputs, 1))];
      };
    },
  },

  // Upsample-7 (scales attribute) and -9 (scales input); removed at opset 10 in favour of Resize.
  Upsample: {
    sinceVersion: 7,
    untilVersion: 9,
    compile(node) {
      const mode = oneOf(node, 'mode', ['nearest', 'linear'] as const, 'nearest');
      const s: ResizeSettings = { mode, coordinateMode: 'asymmetric', nearestMode: 'floor', cubicA: -0.75, excludeOutside: false, extrapolationValue: 0, antialias: false, policy: 'stretch' };
      const fixed = node.opset < 9 ? node.floats('scales') : undefined;
      return (inputs) => {
        const x = node.input(inputs, 0, 'X');
        const scales = fixed ?? [...node.input(inputs, 1, 'scales').dataSync()];
        if (scales.length !== x.rank) throw node.error(`${scales.length} scales for input of rank ${x.rank}`);
        if (scales.some((v) => !(v >= 1 && Number.isFinite(v)))) throw node.error(`scales [${scales.join(', ')}] must all be finite and ≥ 1`);
        const sizes = x.shape.map((d, i) => Math.floor(d * scales[i]!));
        return [resize(x, { ...s, scales, sizes })];
      };
    },
  },

  ConvTranspose: {
    sinceVersion: 1,
    compile(node) {
      const autoPad = oneOf(node, 'auto_pad', ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'] as const, 'NOTSET') as AutoPad;
      const opt = (name: string, min: number) => {
        if (!node.has(name)) return undefined;
        const v = node.ints(name);
        const bad = v.findIndex((e) => e < min);
        if (bad >= 0) throw node.error(`${name}[${bad}] = ${v[bad]}, expected ≥ ${min}`);
        return v;
      };
      const kernelShape = opt('kernel_shape', 1);
      const strides = opt('strides', 1);
      const dilations = opt('dilations', 1);
      const pads = opt('pads', 0);
      const outputPadding = opt('output_padding', 0);
      const outputShape = opt('output_shape', 0);
      const group = node.int('group', 1);
      if (group < 1) throw node.error(`group must be ≥ 1, got ${group}`);
      if (pads && pads.length % 2 !== 0) throw node.error(`pads has ${pads.length} values; expected 2 per spatial axis`);
      return (inputs) => {
        const x = node.input(inputs, 0, 'X');
        const w = node.input(inputs, 1, 'W');
        const r = w.rank - 2;
        if (r < 1 || r > 3) throw node.error(`weight [${w.shape.join(', ')}]: only 1-D, 2-D and 3-D transposed convolutions are supported`);
        const kernel = w.shape.slice(2);
        if (kernelShape && (kernelShape.length !== r || kernelShape.some((k, i) => k !== kernel[i]))) {
          throw node.error(`kernel_shape [${kernelShape.join(', ')}] does not match weight [${w.shape.join(', ')}]`);
        }
        for (const [name, v, len] of [['strides', strides, r], ['dilations', dilations, r], ['output_padding', outputPadding, r], ['pads', pads, 2 * r]] as const) {
          if (v && v.length !== len) throw node.error(`${name} has ${v.length} values; the weight has ${r} spatial axes`);
        }
        // As PyTorch and onnxruntime: extra output cells beyond a stride (or dilation) step are
        // not an output padding but a malformed attribute (output_shape is the way to ask for size).
        const badPad = outputPadding?.findIndex((p, i) => p >= Math.max(strides?.[i] ?? 1, dilations?.[i] ?? 1)) ?? -1;
        if (badPad >= 0) {
          throw node.error(`output_padding[${badPad}] = ${outputPadding![badPad]} must be smaller than its stride (${strides?.[badPad] ?? 1}) or dilation (${dilations?.[badPad] ?? 1})`);
        }
        return [
          convTranspose(x, w, inputs[2], {
            strides,
            dilations,
            group,
            outputPadding,
            autoPad,
            ...(pads ? { pads } : {}),
            ...(outputShape ? { outputShape } : {}),
          }),
        ];
      };
    },
  },

  Gelu: {
    sinceVersion: 20,
    compile(node) {
      const approximate = oneOf<GeluApproximate>(node, 'approximate', ['none', 'tanh'], 'none');
      return (inputs) => [gelu(node.input(inputs, 0, 'X'), approximate)];
    },
  },
};
