import { OnnxError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { dropoutCardFn } from './dropout_node.js';
import type { OnnxGraph } from '../io/onnx/graph.js';
import type { NodeRunner, OnnxNode } from '../io/onnx/node.js';
import { lookupOp } from '../io/onnx/ops/index.js';
import { batchNorm, batchNormTrain, updateRunningStats } from '../kernels/normalization.js';

/**
 * An ONNX graph run as a trainable model: the graph is interpreted node by node (unoptimised,
 * so BN is not folded), through the same op cards as inference, so the autograd tape records
 * every op. Float initializers feeding weight slots (Conv W/B, Gemm/MatMul operands, BN
 * scale/bias, non-scalar Add/Mul/Sub/Div operands) are the parameters — copies, updated in place by the
 * optimizers — and BN running statistics are buffers.
 *
 * In train mode (the default) every BatchNormalization node normalises with the batch's own
 * statistics and updates its running mean/var PyTorch's way (momentum m in PyTorch's sense,
 * new = (1 − m)·old + m·batch, with the *unbiased* batch variance; m = 1 − the node's ONNX
 * momentum attribute, 0.1 when absent), even though the file is an eval-mode export; in eval
 * mode it uses the running statistics. Dropout nodes drop with a seeded generator in train
 * mode only.
 *
 * The constructor throws OnnxError naming the first node whose op the engine does not support.
 *
 * @example
 * ```ts
 * import { Adam, OnnxTrainable, Tensor, crossEntropy } from 'lightconv';
 * import { readOnnx } from 'lightconv/onnx';
 *
 * const model = new OnnxTrainable(await readOnnx('model.onnx'), { seed: 0 });
 * const optimizer = new Adam(model.parameters(), { lr: 1e-4 });
 * const loss = crossEntropy(model.forward(Tensor.randn([4, 3, 224, 224], { seed: 1 })), [0, 1, 2, 3]);
 * optimizer.zeroGrad();
 * loss.backward();
 * optimizer.step();
 * model.eval(); // BN from the running statistics, no dropout
 * ```
 */
export class OnnxTrainable {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly constants = new Map<string, Tensor>();
  private readonly steps: { node: OnnxNode; run: NodeRunner }[];
  private readonly rng: Rng;
  /** PyTorch-sense BN momentum per node, overriding the node's attribute when set. */
  bnMomentum: number | undefined;

  constructor(
    readonly graph: OnnxGraph,
    opts: { seed?: number; bnMomentum?: number } = {},
  ) {
    this.rng = new Rng(opts.seed ?? 0);
    this.bnMomentum = opts.bnMomentum;
    const slots: Record<string, number[]> = { Conv: [1, 2], ConvTranspose: [1, 2], Gemm: [0, 1, 2], MatMul: [0, 1], BatchNormalization: [1, 2], Add: [0, 1], Sub: [0, 1], Mul: [0, 1], Div: [0, 1], PRelu: [1], LayerNormalization: [1, 2], InstanceNormalization: [1, 2] };
    const bufferNames = new Set<string>();
    const paramNames = new Set<string>();
    for (const node of graph.nodes) {
      if (node.opType === 'BatchNormalization') [3, 4].forEach((k) => node.inputs[k] && bufferNames.add(node.inputs[k]!));
      for (const k of slots[node.opType] ?? []) {
        const v = node.inputs[k];
        const t = v ? graph.initializers.get(v) : undefined;
        // Scalar operands of arithmetic (the 6 of x/6, the 3 of x + 3) are constants, not weights.
        const arithmetic = node.opType === 'Add' || node.opType === 'Sub' || node.opType === 'Mul' || node.opType === 'Div';
        if (t && (t.dtype === 'float32' || t.dtype === 'float64') && !(arithmetic && t.size <= 1)) paramNames.add(v!);
      }
    }
    for (const [name, t] of graph.initializers) {
      if (bufferNames.has(name)) this.buffers.set(name, t.clone());
      else if (paramNames.has(name)) this.params.set(name, t.clone().requireGrad());
      else this.constants.set(name, t);
    }
    for (const node of graph.nodes) {
      if (node.opType !== 'BatchNormalization') continue;
      const base = node.inputs[3]?.replace(/running_mean$|mean$/, '') ?? node.name;
      this.buffers.set(`${base}num_batches_tracked`, Tensor.scalar(0, 'int64'));
    }
    this.steps = graph.nodes.map((node) => {
      const op = lookupOp(node.opType);
      if (!op) throw new OnnxError(`${node.label}: unsupported op`);
      return { node, run: op.compile(node) };
    });
  }

  /** The first graph output for a one-input graph (`x` feeds the first declared input). */
  forward(x: Tensor): Tensor {
    const outs = this.run({ [this.graph.inputs[0]!.name]: x });
    return outs[this.graph.outputs[0]!.name]!;
  }

  /** Every graph output, by name. */
  run(feeds: Record<string, Tensor>): Record<string, Tensor> {
    const values = new Map<string, Tensor>([...this.constants, ...this.params, ...this.buffers]);
    for (const [k, v] of Object.entries(feeds)) values.set(k, v);
    for (const { node, run } of this.steps) {
      const args = node.inputs.map((v) => (v ? values.get(v) : undefined));
      let outs: Tensor[];
      if (node.opType === 'BatchNormalization') outs = this.batchNorm(node, args);
      else if (node.opType === 'Dropout' && this.training) outs = dropoutCardFn(node, args, this.rng);
      else outs = run(args);
      node.outputs.forEach((v, i) => v && outs[i] && values.set(v, outs[i]!));
    }
    const result: Record<string, Tensor> = Object.create(null); // outputs may be named '__proto__'
    for (const o of this.graph.outputs) result[o.name] = values.get(o.name)!;
    return result;
  }

  private batchNorm(node: OnnxNode, args: (Tensor | undefined)[]): Tensor[] {
    const [x, scale, bias, mean, variance] = args.map((t, i) => t ?? (() => { throw node.error(`input ${i} is missing`); })()) as Tensor[];
    const epsilon = node.float('epsilon', 1e-5);
    if (!this.training) return [batchNorm(x!, scale!, bias!, mean!, variance!, { epsilon })];
    const { y, mean: bm, variance: bv } = batchNormTrain(x!, scale!, bias!, { epsilon });
    const m = this.bnMomentum ?? 1 - node.float('momentum', 0.9);
    const count = x!.size / x!.shape[1]!;
    const next = updateRunningStats(mean!.detach(), variance!.detach(), bm, bv, { momentum: 1 - m, unbiasedCount: count });
    const [mName, vName] = [node.inputs[3]!, node.inputs[4]!];
    for (const [name, t] of [[mName, next.mean], [vName, next.variance]] as const) {
      const buf = this.buffers.get(name);
      if (!buf) continue;
      buf.dataSync().set(t.dataSync());
      buf.version++;
    }
    const nbt = this.buffers.get(`${mName.replace(/running_mean$|mean$/, '')}num_batches_tracked`);
    if (nbt) nbt.dataSync()[0]! += 1;
    return [y];
  }

  /** Switches train mode on (default) or off: batch statistics and dropout in train mode. Returns this. */
  train(on = true): this {
    this.training = on;
    return this;
  }

  /** Switches to eval mode (running BN statistics, no dropout); the same as `train(false)`. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** The trainable tensors (copies of the weight initializers, requiresGrad set), for an optimizer. */
  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /** The parameters with their initializer names. */
  namedParameters(): [string, Tensor][] {
    return [...this.params];
  }

  /** The BN running means and variances, and a `…num_batches_tracked` counter per BN node, by name. */
  namedBuffers(): [string, Tensor][] {
    return [...this.buffers];
  }

  /** Parameters and buffers by name (the tensors themselves, not copies); `loadStateDict` reads it back. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.params, ...this.buffers]);
  }

  /** Copies values into the parameters and buffers of the same names (shapes must match). */
  loadStateDict(sd: Record<string, Tensor>): this {
    for (const [k, v] of Object.entries(sd)) {
      const t = this.params.get(k) ?? this.buffers.get(k);
      if (!t) continue;
      if (t.shape.join() !== v.shape.join()) throw new OnnxError(`loadStateDict: '${k}' has shape [${v.shape}], the model's is [${t.shape}]`);
      t.dataSync().set(v.dataSync());
      t.version++;
    }
    return this;
  }
}
