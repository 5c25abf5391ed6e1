import { OnnxError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';

/** A decoded attribute value. Ints are plain numbers (checked safe integers). */
export type AttrValue = number | string | Tensor | number[] | string[] | Tensor[];

/**
 * One graph node as the op adapters see it: names, opset and typed attribute getters.
 *
 * @example
 * ```ts
 * import { loadOnnx } from 'lightconv/onnx';
 *
 * const model = await loadOnnx('model.onnx');
 * for (const node of model.plan) if (node.opType === 'Conv') console.log(node.name, node.ints('strides', [1, 1]), node.int('group', 1));
 * ```
 */
export class OnnxNode {
  constructor(
    readonly name: string,
    readonly opType: string,
    readonly domain: string,
    /** The opset version of this node's domain that the model imports. */
    readonly opset: number,
    /** Input value names; '' marks an omitted optional input. */
    readonly inputs: readonly string[],
    readonly outputs: readonly string[],
    readonly attrs: ReadonlyMap<string, AttrValue>,
  ) {}

  /** "Conv 'name'" — for error messages. */
  get label(): string {
    return `${this.opType} node '${this.name}'`;
  }

  /** Whether the node sets attribute `name`. */
  has(name: string): boolean {
    return this.attrs.has(name);
  }

  /** Integer attribute `name`, or `def` when absent; an OnnxError naming the node when it is absent without a default or not an int. */
  int(name: string, def?: number): number {
    const v = this.attrs.get(name);
    if (v === undefined) return this.need(name, def);
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.bad(name, 'an integer', v);
    return v;
  }

  /** Float attribute `name`, or `def` when absent; an OnnxError naming the node otherwise. */
  float(name: string, def?: number): number {
    const v = this.attrs.get(name);
    if (v === undefined) return this.need(name, def);
    if (typeof v !== 'number') throw this.bad(name, 'a float', v);
    return v;
  }

  /** String attribute `name`, or `def` when absent; an OnnxError naming the node otherwise. */
  string(name: string, def?: string): string {
    const v = this.attrs.get(name);
    if (v === undefined) return this.need(name, def);
    if (typeof v !== 'string') throw this.bad(name, 'a string', v);
    return v;
  }

  /** Integer-list attribute `name`, or `def` when absent; an OnnxError naming the node otherwise. */
  ints(name: string, def?: number[]): number[] {
    const v = this.attrs.get(name);
    if (v === undefined) return this.need(name, def);
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isInteger(x))) throw this.bad(name, 'a list of integers', v);
    return v as number[];
  }

  /** Float-list attribute `name`, or `def` when absent; an OnnxError naming the node otherwise. */
  floats(name: string, def?: number[]): number[] {
    const v = this.attrs.get(name);
    if (v === undefined) return this.need(name, def);
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw this.bad(name, 'a list of floats', v);
    return v as number[];
  }

  /** Tensor attribute `name` (Constant's value), or undefined when absent. */
  tensor(name: string): Tensor | undefined {
    const v = this.attrs.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw this.bad(name, 'a tensor', v);
    return v;
  }

  /** Input `i`, or an OnnxError naming the node when that (required) input is missing. */
  input(inputs: ReadonlyArray<Tensor | undefined>, i: number, what: string): Tensor {
    const t = inputs[i];
    if (!t) throw this.error(`input ${i} (${what}) is missing`);
    return t;
  }

  /** The single value of a one-element input such as Clip's min or Dropout's ratio. */
  scalar(t: Tensor, what: string): number {
    if (t.size !== 1) throw this.error(`${what} must hold one value, got ${t.size}`);
    return t.dataSync()[0]!;
  }

  /** An OnnxError naming this node. */
  error(message: string): OnnxError {
    return new OnnxError(`${this.label}: ${message}`);
  }

  private need<T>(name: string, def: T | undefined): T {
    if (def === undefined) throw this.error(`required attribute '${name}' is missing`);
    return def;
  }

  private bad(name: string, want: string, got: unknown): OnnxError {
    const shown = Array.isArray(got) ? `[${got.slice(0, 8).join(', ')}]` : typeof got === 'object' ? 'a tensor' : String(got);
    return this.error(`attribute '${name}' must be ${want}, got ${shown}`);
  }
}

/** Runs one compiled node: optional inputs that were omitted arrive as undefined. */
export type NodeRunner = (inputs: ReadonlyArray<Tensor | undefined>) => Tensor[];

/**
 * How the engine runs one ONNX op type. `compile` reads and validates the node's attributes
 * once, at load (throwing an OnnxError naming the node for bad ones), and returns the runner.
 */
export interface OnnxOp {
  /** The lowest opset version this adapter implements (older nodes are reported unsupported). */
  readonly sinceVersion?: number;
  /** The last opset version that defines the op, for ops ONNX removed (newer nodes are reported unsupported). */
  readonly untilVersion?: number;
  /** Validates the node's attributes and returns its runner. */
  compile(node: OnnxNode): NodeRunner;
}

/** Op type → how the engine runs it (`ONNX_OPS`, for the default domain). */
export type OnnxOpTable = Readonly<Record<string, OnnxOp>>;

/**
 * Reads a small integer tensor that an op takes as data (Reshape's shape, Unsqueeze's axes,
 * Pad's pads): every value must be a safe integer.
 */
export function readInts(node: OnnxNode, t: Tensor, what: string): number[] {
  if (t.size > 1024) throw node.error(`${what} has ${t.size} values; expected a short list`);
  const d = t.dataSync();
  const out = new Array<number>(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (!Number.isSafeInteger(v)) throw node.error(`${what}[${i}] = ${v} is not an integer`);
    out[i] = v;
  }
  return out;
}
