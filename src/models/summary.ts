import { fmtShape, type Shape, sizeOf } from '../core/shape.js';
import type { Module } from '../layers/module.js';

/** Options of `summarize` / `Classifier.summary`. */
export interface SummaryOptions {
  /** Input shape, default the network's (e.g. [1, 3, 224, 224]). */
  input?: Shape;
  /** Print the table (default true). */
  print?: boolean;
  /** Where to print (default console.log). */
  log?: (line: string) => void;
}

/** One row of a summary: a leaf module, its output shape, parameters and MACs. */
export interface SummaryLayer {
  /** Dotted module name, e.g. 'features.3.block.1.0'. */
  name: string;
  type: string;
  output: number[];
  /** Parameters of this module itself (not its children). */
  params: number;
  trainable: number;
  macs: number;
}

/** The result of `summarize`: totals (snake_case, as in the JSON the CLI writes) and one row per leaf module. */
export interface SummaryResult {
  input: number[];
  output: number[];
  params: number;
  trainable_params: number;
  frozen_params: number;
  /** Non-trainable state such as BN running statistics. */
  buffers: number;
  /** Multiply-accumulates of Conv and Linear layers for the given input (batch included). */
  macs: number;
  /** 2 · MACs. */
  flops: number;
  /** float32 parameters + buffers, in bytes. */
  size_bytes: number;
  layers: SummaryLayer[];
}

/**
 * Shapes, parameters and MACs of every leaf module, found by shape inference alone (no weights are
 * allocated and nothing is computed), so even EfficientNet-B7 at 600×600 is instant.
 *
 * MACs count the multiply-accumulates of convolutions and linear layers, as torchvision's model
 * tables do: what torchvision calls "GFLOPS" (0.39 for EfficientNet-B0) are these MACs.
 * FLOPs here are 2 · MACs.
 *
 * @example
 * ```ts
 * import { efficientNet, summarize } from 'lightconv';
 *
 * const r = summarize(efficientNet('b0'), { input: [1, 3, 224, 224], print: false });
 * console.log(r.params, r.macs / 1e9); // 5288548 0.39…
 * ```
 */
export function summarize(net: Module, opts: SummaryOptions & { input: Shape }): SummaryResult {
  const names = new Map(net.namedModules().map(([n, m]) => [m, n]));
  const layers: SummaryLayer[] = [];
  const output = net.infer(opts.input, (m, input, out) => {
    if (m.children().length > 0) return; // leaves only: containers' totals are their leaves'
    const own = m.ownParameterCount();
    layers.push({ name: names.get(m) ?? '?', type: m.describe(), output: [...out], params: own.total, trainable: own.trainable, macs: m.macs(input) });
  });
  const count = net.parameterCount();
  const buffers = net.bufferShapes().reduce((a, b) => a + sizeOf(b.shape), 0);
  const macs = layers.reduce((a, l) => a + l.macs, 0);
  const result: SummaryResult = {
    input: [...opts.input],
    output: [...output],
    params: count.total,
    trainable_params: count.trainable,
    frozen_params: count.total - count.trainable,
    buffers,
    macs,
    flops: 2 * macs,
    size_bytes: 4 * (count.total + buffers),
    layers,
  };
  if (opts.print ?? true) for (const line of formatSummary(result)) (opts.log ?? console.log)(line);
  return result;
}

const num = (n: number) => n.toLocaleString('en-US');

/**
 * The summary as a table, one string per line (header, a row per layer, totals).
 *
 * @example
 * ```ts
 * import { formatSummary, lightCnn, summarize } from 'lightconv';
 *
 * const r = summarize(lightCnn(), { input: [1, 3, 64, 64], print: false });
 * console.log(formatSummary(r).join('\n'));
 * ```
 */
export function formatSummary(r: SummaryResult): string[] {
  const rows = r.layers.map((l) => [l.name, l.type, fmtShape(l.output), l.params ? num(l.params) + (l.trainable < l.params ? ' (frozen)' : '') : '', l.macs ? num(l.macs) : '']);
  const head = ['layer', 'type', 'output', 'params', 'MACs'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ');
  const g = (x: number) => (x / 1e9).toFixed(3);
  return [
    fmt(head),
    '-'.repeat(w.reduce((a, b) => a + b + 2, -2)),
    ...rows.map(fmt),
    '',
    `input ${fmtShape(r.input)} → output ${fmtShape(r.output)}`,
    `parameters: ${num(r.params)} (trainable ${num(r.trainable_params)}, frozen ${num(r.frozen_params)}); buffers ${num(r.buffers)}`,
    `MACs: ${num(r.macs)} (${g(r.macs)} G) — torchvision's "GFLOPS" column counts these MACs`,
    `FLOPs: ${num(r.flops)} (${g(r.flops)} G) = 2 · MACs`,
    `size: ${(r.size_bytes / 2 ** 20).toFixed(2)} MiB (float32 parameters + buffers)`,
  ];
}
