import { apply } from '../../../core/op.js';
import { fmtShape } from '../../../core/shape.js';
import { Tensor } from '../../../core/tensor.js';
import {
  type IntConvAttrs,
  type QuantDType,
  convIntegerCard,
  dequantizeLinearCard,
  isQuantDType,
  matMulIntegerCard,
  qlinearConvCard,
  qlinearMatMulCard,
  quantizeLinearCard,
} from '../../../kernels/quant.js';
import { type AutoPad, resolveAutoPad } from '../../../kernels/window.js';
import type { OnnxNode, OnnxOpTable } from '../node.js';
import { dtypeFromOnnx, onnxTypeName } from '../tensor_proto.js';

/**
 * Adapters of the quantized ops. Opset 10 introduced them all; QuantizeLinear/DequantizeLinear
 * gained per-axis scales (`axis`) in 13, float8 types (`saturate`) in 19, blocked quantization
 * (`block_size`), 4- and 16-bit types and `output_dtype` in 21. The engine runs the integer
 * forms (int8/uint8, and int16/uint16 from 21) per tensor or per axis; float8, 4-bit types and
 * blocked quantization are refused by name.
 */

/** Opset 21's block_size: 0 means per-tensor or per-axis, anything else blocked quantization. */
function noBlocks(node: OnnxNode): void {
  if (node.opset >= 21 && node.int('block_size', 0) !== 0) throw node.error(`blocked quantization (block_size ${node.int('block_size')}) is not supported`);
}

/** The per-axis axis: an attribute from opset 13; before, only per-tensor scales exist. */
function quantAxis(node: OnnxNode): number | undefined {
  return node.opset >= 13 ? node.int('axis', 1) : undefined;
}

const AUTO_PADS: readonly AutoPad[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** The conv window attributes (Conv's, read the same way) and a runner that resolves auto_pad per input size. */
function convAttrs(node: OnnxNode): (x: { shape: readonly number[] }, w: { shape: readonly number[]; rank: number }) => IntConvAttrs {
  const autoPad = node.string('auto_pad', 'NOTSET') as AutoPad;
  if (!AUTO_PADS.includes(autoPad)) throw node.error(`auto_pad must be one of ${AUTO_PADS.join(', ')}, got '${autoPad}'`);
  const list = (name: string, min: number) => {
    if (!node.has(name)) return undefined;
    const v = node.ints(name);
    const bad = v.findIndex((x) => x < min);
    if (bad >= 0) throw node.error(`${name}[${bad}] = ${v[bad]}, expected ≥ ${min}`);
    return v;
  };
  const kernelShape = list('kernel_shape', 1);
  const strides = list('strides', 1);
  const dilations = list('dilations', 1);
  const pads = list('pads', 0);
  const group = node.int('group', 1);
  if (group < 1) throw node.error(`group must be ≥ 1, got ${group}`);
  if (pads && pads.length % 2 !== 0) throw node.error(`pads has ${pads.length} values; expected 2 per spatial axis`);
  if (pads && autoPad !== 'NOTSET' && pads.some((p) => p !== 0)) throw node.error(`pads [${pads.join(', ')}] cannot be combined with auto_pad ${autoPad}`);
  const label = node.label;
  // One attrs object per input geometry, so the conv geometry cache keeps hitting.
  let last: { key: string; attrs: IntConvAttrs } | undefined;
  return (x, w) => {
    const r = w.rank - 2;
    if (r !== 1 && r !== 2) throw node.error(`weight ${fmtShape(w.shape)}: only 1-D and 2-D convolutions are supported`);
    const kernel = w.shape.slice(2);
    if (kernelShape && (kernelShape.length !== r || kernelShape.some((k, i) => k !== kernel[i]))) {
      throw node.error(`kernel_shape [${kernelShape.join(', ')}] does not match weight ${fmtShape(w.shape)}`);
    }
    for (const [name, v, n] of [['strides', strides, r], ['dilations', dilations, r], ['pads', pads, 2 * r]] as const) {
      if (v && v.length !== n) throw node.error(`${name} has ${v.length} values but weight ${fmtShape(w.shape)} has ${r} spatial axes`);
    }
    const s = strides ?? new Array<number>(r).fill(1);
    const d = dilations ?? new Array<number>(r).fill(1);
    const p = pads ?? new Array<number>(2 * r).fill(0);
    const resolved = x.shape.length === r + 2 ? resolveAutoPad(autoPad, x.shape.slice(2), kernel, s, d, p) : p;
    const key = `${r}|${resolved.join()}`;
    if (last?.key !== key) last = { key, attrs: { strides: s, pads: resolved, dilations: d, group, label } };
    return last.attrs;
  };
}

/** ONNX adapters for the quantized op cards. */
export const quantOps: OnnxOpTable = {
  QuantizeLinear: {
    sinceVersion: 10,
    compile(node) {
      noBlocks(node);
      const axis = quantAxis(node);
      // Opset 21: without a zero point, output_dtype names the type (default uint8).
      let declared: QuantDType | undefined;
      if (node.opset >= 21 && node.has('output_dtype') && node.int('output_dtype') !== 0) {
        const t = node.int('output_dtype');
        const d = dtypeFromOnnx(t);
        if (!d || !isQuantDType(d)) throw node.error(`output_dtype ${onnxTypeName(t)} is not supported (int8, uint8, int16 or uint16)`);
        declared = d;
      }
      const label = node.label;
      return (inputs) => {
        const x = node.input(inputs, 0, 'x');
        const scale = node.input(inputs, 1, 'y_scale');
        const zero = inputs[2];
        let dtype: QuantDType = declared ?? 'uint8';
        if (zero) {
          if (!isQuantDType(zero.dtype)) throw node.error(`y_zero_point is ${zero.dtype}; supported are int8, uint8, int16 and uint16`);
          if (declared && zero.dtype !== declared) throw node.error(`y_zero_point is ${zero.dtype} but output_dtype is ${declared}`);
          dtype = zero.dtype;
        }
        return [apply(quantizeLinearCard, zero ? [x, scale, zero] : [x, scale], { axis, dtype, label })];
      };
    },
  },

  DequantizeLinear: {
    sinceVersion: 10,
    compile(node) {
      noBlocks(node);
      const attrs = { axis: quantAxis(node), label: node.label };
      return (inputs) => {
        const x = node.input(inputs, 0, 'x');
        const scale = node.input(inputs, 1, 'x_scale');
        const zero = inputs[2];
        return [apply(dequantizeLinearCard, zero ? [x, scale, zero] : [x, scale], attrs)];
      };
    },
  },

  ConvInteger: {
    sinceVersion: 10,
    compile(node) {
      const attrsFor = convAttrs(node);
      return (inputs) => {
        const x = node.input(inputs, 0, 'x');
        const w = node.input(inputs, 1, 'w');
        const [, , xzp, wzp] = inputs;
        const list = wzp ? [x, w, xzp ?? zeroOf(x), wzp] : xzp ? [x, w, xzp] : [x, w];
        return [apply(convIntegerCard, list, attrsFor(x, w))];
      };
    },
  },

  QLinearConv: {
    sinceVersion: 10,
    compile(node) {
      const attrsFor = convAttrs(node);
      return (inputs) => {
        const names = ['x', 'x_scale', 'x_zero_point', 'w', 'w_scale', 'w_zero_point', 'y_scale', 'y_zero_point'];
        const req = names.map((n, i) => node.input(inputs, i, n));
        const bias = inputs[8];
        return [apply(qlinearConvCard, bias ? [...req, bias] : req, attrsFor(req[0]!, req[3]!))];
      };
    },
  },

  MatMulInteger: {
    sinceVersion: 10,
    compile(node) {
      const attrs = { label: node.label };
      return (inputs) => {
        const a = node.input(inputs, 0, 'A');
        const b = node.input(inputs, 1, 'B');
        const [, , azp, bzp] = inputs;
        const list = bzp ? [a, b, azp ?? zeroOf(a), bzp] : azp ? [a, b, azp] : [a, b];
        return [apply(matMulIntegerCard, list, attrs)];
      };
    },
  },

  QLinearMatMul: {
    sinceVersion: 10,
    compile(node) {
      const attrs = { label: node.label };
      return (inputs) => {
        const names = ['a', 'a_scale', 'a_zero_point', 'b', 'b_scale', 'b_zero_point', 'y_scale', 'y_zero_point'];
        return [apply(qlinearMatMulCard, names.map((n, i) => node.input(inputs, i, n)), attrs)];
      };
    },
  },
};

/** An omitted zero point before a present one: 0 of the operand's type. */
function zeroOf(t: Tensor): Tensor {
  return Tensor.zeros([], t.dtype);
}
