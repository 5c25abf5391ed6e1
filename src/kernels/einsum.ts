import { type DType, DTYPES, castValue, f64Array } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { matmulCard } from './gemm.js';
import { isFloat } from './grad.js';
import { transposeCard } from './movement.js';

/**
 * Einsum of one or two operands: transposes ('ij->ji'), sums ('ij->i', 'i,i'), diagonals
 * ('ii->i', '...ii->...i'), outer products and the batch matrix products of attention heads
 * ('bij,bjk->bik', 'bhid,bhjd->bhij'), with '...' for leading dims (broadcast between the
 * operands as numpy does) and numpy's implicit output (the subscripts used once, in alphabetical
 * order, after the '...' dims) when there is no '->'.
 *
 * The reference is one loop over every combination of subscripts, accumulating products in
 * float64. The CPU kernel runs a two-operand float32 contraction as a batched GEMM (the MatMul
 * card's kernel) on operands transposed to [batch, m, k] × [batch, k, n], and everything else
 * as the reference. The gradient to an operand is itself such a contraction: of the output's
 * gradient with the other operand, onto the operand's subscripts.
 */
export interface EinsumAttrs {
  readonly equation: string;
}

/** Subscripts a–z are 0–25, A–Z 26–51; the dims covered by '...' get 52, 53, … (right-aligned). */
const ELLIPSIS_BASE = 52;

/** One side of an equation: its subscripts, with the position of '...' (−1 when absent). */
interface Term {
  readonly ids: readonly number[];
  readonly ellipsisAt: number;
}

interface Parsed {
  readonly inputs: readonly Term[];
  /** null: implicit output. */
  readonly output: Term | null;
}

const idOf = (c: string): number => {
  const code = c.charCodeAt(0);
  return code >= 97 ? code - 97 : code - 65 + 26;
};
const charOf = (id: number): string => (id < 26 ? String.fromCharCode(97 + id) : id < ELLIPSIS_BASE ? String.fromCharCode(65 + id - 26) : '...');

function parseTerm(eq: string, s: string): Term {
  const ids: number[] = [];
  let ellipsisAt = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '.') {
      if (s.slice(i, i + 3) !== '...' || ellipsisAt >= 0) throw new ValueError(`Einsum '${eq}': '${s}' has a stray '.' or more than one '...'`);
      ellipsisAt = ids.length;
      i += 2;
    } else if (/^[a-zA-Z]$/.test(c)) ids.push(idOf(c));
    else throw new ValueError(`Einsum '${eq}': '${c}' is not a subscript (letters a–z, A–Z and '...' only)`);
  }
  return { ids, ellipsisAt };
}

/**
 * Parses an equation (spaces ignored). Throws a ValueError naming the equation for a malformed
 * one; any number of operands parses (the kernels refuse more than two).
 */
export function parseEinsum(equation: string): Parsed {
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  if (arrow !== eq.lastIndexOf('->')) throw new ValueError(`Einsum '${equation}': more than one '->'`);
  const lhs = arrow >= 0 ? eq.slice(0, arrow) : eq;
  const inputs = lhs.split(',').map((t) => parseTerm(equation, t));
  if (arrow < 0) return { inputs, output: null };
  const output = parseTerm(equation, eq.slice(arrow + 2));
  const seen = new Set<number>();
  const used = new Set(inputs.flatMap((t) => t.ids));
  for (const id of output.ids) {
    if (seen.has(id)) throw new ValueError(`Einsum '${equation}': output subscript '${charOf(id)}' appears twice`);
    if (!used.has(id)) throw new ValueError(`Einsum '${equation}': output subscript '${charOf(id)}' is in no input`);
    seen.add(id);
  }
  if (output.ellipsisAt >= 0 && !inputs.some((t) => t.ellipsisAt >= 0)) throw new ValueError(`Einsum '${equation}': the output has '...' but no input does`);
  return { inputs, output };
}

/** An equation applied to shapes: every axis's subscript id, each id's size, the output's ids and shape. */
interface Plan {
  readonly inputs: readonly (readonly number[])[];
  readonly output: readonly number[];
  readonly sizes: ReadonlyMap<number, number>;
  readonly outShape: number[];
}

function expand(term: Term, ellipsisDims: number, total: number): number[] {
  if (term.ellipsisAt < 0) return [...term.ids];
  const dots = Array.from({ length: ellipsisDims }, (_, j) => ELLIPSIS_BASE + total - ellipsisDims + j);
  return [...term.ids.slice(0, term.ellipsisAt), ...dots, ...term.ids.slice(term.ellipsisAt)];
}

function planOf(equation: string, shapes: readonly Shape[]): Plan {
  const parsed = parseEinsum(equation);
  const what = `Einsum '${equation}'`;
  if (parsed.inputs.length !== shapes.length) throw new ShapeError(`${what}: the equation has ${parsed.inputs.length} operands but ${shapes.length} inputs were given`);
  if (shapes.length > 2) throw new ValueError(`${what}: ${shapes.length} operands; only one or two are supported`);
  const dotsOf = parsed.inputs.map((t, p) => {
    const r = shapes[p]!.length;
    if (t.ellipsisAt < 0 ? r !== t.ids.length : r < t.ids.length) {
      throw new ShapeError(`${what}: operand ${p} ${fmtShape(shapes[p]!)} has rank ${r}, but its subscripts name ${t.ids.length} dims${t.ellipsisAt >= 0 ? ' (plus ...)' : ''}`);
    }
    return r - t.ids.length;
  });
  const total = Math.max(0, ...dotsOf);
  const inputs = parsed.inputs.map((t, p) => expand(t, dotsOf[p]!, total));
  const sizes = new Map<number, number>();
  const where = new Map<number, string>();
  inputs.forEach((ids, p) =>
    ids.forEach((id, axis) => {
      const d = shapes[p]![axis]!;
      const here = `axis ${axis} of operand ${p} ${fmtShape(shapes[p]!)}`;
      const prev = sizes.get(id);
      if (prev === undefined || (id >= ELLIPSIS_BASE && prev === 1)) {
        sizes.set(id, d);
        where.set(id, here);
      } else if (prev !== d && !(id >= ELLIPSIS_BASE && d === 1)) {
        const name = id >= ELLIPSIS_BASE ? `a '...' dim` : `subscript '${charOf(id)}'`;
        throw new ShapeError(`${what}: ${name} is ${d} on ${here} but ${prev} on ${where.get(id)}`);
      }
    }),
  );
  let output: number[];
  if (parsed.output) output = expand(parsed.output, total, total);
  else {
    // numpy's implicit mode: the '...' dims, then the subscripts used exactly once, by character code.
    const count = new Map<number, number>();
    for (const t of parsed.inputs) for (const id of t.ids) count.set(id, (count.get(id) ?? 0) + 1);
    const once = [...count].filter(([, c]) => c === 1).map(([id]) => id);
    once.sort((a, b) => charOf(a).charCodeAt(0) - charOf(b).charCodeAt(0));
    output = [...Array.from({ length: total }, (_, j) => ELLIPSIS_BASE + j), ...once];
  }
  return { inputs, output, sizes, outShape: output.map((id) => sizes.get(id)!) };
}

// ---------------------------------------------------------------------------------------------
// Contractions

interface Operand {
  readonly t: Tensor;
  readonly ids: readonly number[];
}

/**
 * Strides of one tensor per subscript in `letters`: the sum over its axes with that subscript
 * (a repeated subscript walks the diagonal), 0 for a size-1 axis broadcast to a larger size.
 */
function letterStrides(shape: Shape, ids: readonly number[], letters: readonly number[], sizes: ReadonlyMap<number, number>): number[] {
  const strides = stridesOf(shape);
  const out = new Array<number>(letters.length).fill(0);
  ids.forEach((id, axis) => {
    if (shape[axis] === 1 && sizes.get(id) !== 1) return;
    out[letters.indexOf(id)] += strides[axis]!;
  });
  return out;
}

/**
 * The definition: for every combination of subscript values, the product of the operands'
 * elements is added into the output element, in float64. Output subscripts that no operand has
 * take every value (the gradient of a sum); a repeated output subscript writes a diagonal; a
 * size-1 output axis under a larger subscript sums over it (the gradient of a broadcast).
 */
function contractLoop(ops: readonly Operand[], outIds: readonly number[], outShape: Shape, sizes: ReadonlyMap<number, number>): Float64Array {
  const letters = [...new Set([...outIds, ...ops.flatMap((o) => o.ids)])];
  const dims = letters.map((id) => sizes.get(id)!);
  const acc = f64Array(sizeOf(outShape));
  if (dims.some((d) => d === 0) || acc.length === 0) return acc;
  const data = ops.map((o) => o.t.dataSync());
  const st = ops.map((o) => letterStrides(o.t.shape, o.ids, letters, sizes));
  const ost = letterStrides(outShape, outIds, letters, sizes);
  const offs = new Array<number>(ops.length).fill(0);
  const idx = new Array<number>(letters.length).fill(0);
  const L = letters.length;
  let outOff = 0;
  for (;;) {
    let v = 1;
    for (let p = 0; p < data.length; p++) v *= data[p]![offs[p]!]!;
    acc[outOff] += v;
    let l = L - 1;
    for (; l >= 0; l--) {
      if (++idx[l]! < dims[l]!) {
        for (let p = 0; p < offs.length; p++) offs[p] += st[p]![l]!;
        outOff += ost[l]!;
        break;
      }
      idx[l] = 0;
      for (let p = 0; p < offs.length; p++) offs[p] -= st[p]![l]! * (dims[l]! - 1);
      outOff -= ost[l]! * (dims[l]! - 1);
    }
    if (l < 0) return acc;
  }
}

/** x with its axes reordered so that axis k of the result is axis perm[k] of x (no copy for the identity). */
function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.every((a, k) => a === k)) return x;
  return (transposeCard.cpu ?? transposeCard.reference)([x], { perm });
}

/**
 * A two-operand float32 contraction as a batched GEMM, or null when it is not one: every
 * subscript must occur once per term and in exactly two of (A, B, output) — m (A, out), n
 * (B, out), k (A, B) — or in all three (batch), with no broadcast axis.
 */
function contractGemm(a: Operand, b: Operand, outIds: readonly number[], outShape: Shape, sizes: ReadonlyMap<number, number>): Tensor | null {
  if (a.t.dtype !== 'float32' || b.t.dtype !== 'float32') return null;
  const uniq = (ids: readonly number[]) => new Set(ids).size === ids.length;
  if (!uniq(a.ids) || !uniq(b.ids) || !uniq(outIds)) return null;
  const full = (shape: Shape, ids: readonly number[]) => ids.every((id, i) => shape[i] === sizes.get(id));
  if (!full(a.t.shape, a.ids) || !full(b.t.shape, b.ids) || !full(outShape, outIds)) return null;
  const inA = new Set(a.ids);
  const inB = new Set(b.ids);
  const inOut = new Set(outIds);
  for (const id of new Set([...inA, ...inB, ...inOut])) if (Number(inA.has(id)) + Number(inB.has(id)) + Number(inOut.has(id)) < 2) return null;
  const batch = outIds.filter((id) => inA.has(id) && inB.has(id));
  const m = outIds.filter((id) => inA.has(id) && !inB.has(id));
  const n = outIds.filter((id) => inB.has(id) && !inA.has(id));
  const k = a.ids.filter((id) => inB.has(id) && !inOut.has(id));
  const size = (ids: readonly number[]) => ids.reduce((p, id) => p * sizes.get(id)!, 1);
  const [bt, M, N, K] = [size(batch), size(m), size(n), size(k)];
  const A = permute(a.t, [...batch, ...m, ...k].map((id) => a.ids.indexOf(id)));
  const B = permute(b.t, [...batch, ...k, ...n].map((id) => b.ids.indexOf(id)));
  const y = matmulCard.cpu!([new Tensor(A.dataSync(), [bt, M, K]), new Tensor(B.dataSync(), [bt, K, N])], undefined);
  const yIds = [...batch, ...m, ...n];
  const Y = new Tensor(y.dataSync(), yIds.map((id) => sizes.get(id)!));
  const out = permute(Y, outIds.map((id) => yIds.indexOf(id)));
  return new Tensor(out.dataSync(), outShape);
}

/** The contraction in `dtype`: the batched GEMM where it applies (fast = true), else the float64 loop. */
function contract(ops: readonly Operand[], outIds: readonly number[], outShape: Shape, sizes: ReadonlyMap<number, number>, dtype: DType, fast: boolean): Tensor {
  if (fast && dtype === 'float32' && ops.length === 2) {
    const y = contractGemm(ops[0]!, ops[1]!, outIds, outShape, sizes);
    if (y) return y;
  }
  const acc = contractLoop(ops, outIds, outShape, sizes);
  if (dtype === 'float64') return new Tensor(acc, outShape, 'float64');
  const out = DTYPES[dtype].make(acc.length);
  for (let i = 0; i < acc.length; i++) out[i] = castValue(dtype, acc[i]!);
  return new Tensor(out, outShape, dtype);
}

function checkDtypes(equation: string, xs: readonly Tensor[]): void {
  for (const x of xs) {
    if (x.dtype !== xs[0]!.dtype) throw new ValueError(`Einsum '${equation}': the operands' dtypes differ (${xs.map((t) => t.dtype).join(', ')})`);
  }
}

function run(inputs: readonly Tensor[], { equation }: EinsumAttrs, fast: boolean): Tensor {
  checkDtypes(equation, inputs);
  const plan = planOf(
    equation,
    inputs.map((t) => t.shape),
  );
  const ops = inputs.map((t, p) => ({ t, ids: plan.inputs[p]! }));
  return contract(ops, plan.output, plan.outShape, plan.sizes, inputs[0]!.dtype, fast);
}

/**
 * The Einsum op card (attributes: {@link EinsumAttrs}, the equation); {@link einsum} applies
 * it. One or two operands; differentiable in each float operand.
 */
export const einsumCard: OpCard<EinsumAttrs> = {
  name: 'Einsum',
  label: ({ equation }) => `Einsum '${equation}'`,
  shape: (inputs, { equation }) => planOf(equation, inputs).outShape,
  /** One multiply-accumulate per combination of subscript values (the reference loop's count). */
  macs: (inputs, { equation }) => [...planOf(equation, inputs).sizes.values()].reduce((p, d) => p * d, 1),
  reference: (inputs, attrs) => run(inputs, attrs, false),
  cpu: (inputs, attrs) => run(inputs, attrs, true),
  grad(inputs, { equation }, _y, g) {
    const plan = planOf(
      equation,
      inputs.map((t) => t.shape),
    );
    // A float64 gradient (a gradient check) takes the loop; float32 training the GEMM where it can.
    return inputs.map((x, p) => {
      if (!isFloat(x) || !x.requiresGrad) return null;
      const others = inputs.map((t, q) => ({ t, ids: plan.inputs[q]! })).filter((_, q) => q !== p);
      const dtype = x.dtype === 'float64' ? 'float64' : 'float32';
      const gT = g.dtype === dtype ? g : new Tensor(Float64Array.from(g.dataSync()), g.shape, 'float64');
      return contract([{ t: gT, ids: plan.output }, ...others], plan.inputs[p]!, x.shape, plan.sizes, dtype, true);
    });
  },
};

/**
 * numpy-style einsum of one or two tensors (see {@link EinsumAttrs}): subscripts a–z and A–Z,
 * '...' for broadcast leading dims, numpy's implicit output without '->'. Throws ValueError for
 * a malformed equation or more than two operands, ShapeError when the operands' ranks or sizes
 * do not match the subscripts.
 *
 * @example
 * ```ts
 * import { Tensor, einsum } from 'lightconv';
 *
 * const q = Tensor.randn([2, 4, 8, 16], { seed: 0 });
 * const k = Tensor.randn([2, 4, 8, 16], { seed: 1 });
 * const scores = einsum('bhid,bhjd->bhij', q, k); // shape [2, 4, 8, 8]
 * einsum('ij->i', Tensor.fromArray([1, 2, 3, 4], [2, 2])).toArray(); // [3, 7]
 * ```
 */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return apply(einsumCard, operands, { equation });
}
