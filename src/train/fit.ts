import type { SingleBar } from 'cli-progress';
import { noGrad } from '../core/autograd.js';
import { LightconvError, ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { type CheckpointModel, saveCheckpoint } from './checkpoint.js';
import { crossEntropy } from './losses.js';
import { argmax } from '../eval/metrics.js';
import { type Optimizer, clipGradNorm } from './optim.js';
import { type Schedule, setLr } from './schedule.js';

/**
 * What `fit` needs of a model. `Module` (src/layers/module.ts) and `OnnxTrainable`
 * (src/train/onnx_trainable.ts) both have it.
 */
export interface Trainable {
  /** The output (logits) for a batch of inputs. */
  forward(x: Tensor): Tensor;
  /** The tensors the optimizer updates. */
  parameters(): Tensor[];
  /** Train mode (or eval mode with `false`). */
  train(on?: boolean): unknown;
  /** Eval mode. */
  eval(): unknown;
}

/** Inputs [N, …] and one integer label per row. */
export interface LabelledData {
  readonly images: Tensor;
  readonly labels: ArrayLike<number>;
}

/**
 * Data that arrives batch by batch (src/data's ImageLoader: decoded in worker threads, with
 * augmentation): `length` samples per epoch, `batches(epoch)` in that epoch's order.
 */
export interface BatchSource {
  readonly length: number;
  /** The batches of epoch `epoch` (0-based), images [B, …] with their integer labels, in that epoch's order. */
  batches(epoch: number): AsyncIterable<{ images: Tensor; labels: Int32Array }>;
}

/** A validation score from the labels and the softmax probabilities [N × C, row-major], e.g. macro F1. */
export interface ValidationMetric {
  name: string;
  /** The score from the true labels, the probabilities [N × C] and C. */
  fn: (yTrue: Int32Array, probs: Float32Array, numClasses: number) => number;
  /** Whether larger is better (default 'max'). */
  mode?: 'max' | 'min';
}

/** One epoch of training, as `fit` returns it in `history` and passes it to callbacks. */
export interface EpochLog {
  /** 1-based. */
  epoch: number;
  /** Mean training loss over the epoch's batches (weighted by batch size). */
  loss: number;
  /** Training accuracy of the predictions made during the epoch (train mode). */
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  /** FitOptions.validationMetric on the validation data. */
  valMetric?: number;
  /** The first parameter group's lr during the epoch (at its last step). */
  lr: number;
  /** Wall time of the epoch including validation, ms. */
  timeMs: number;
}

/** What a callback sees during `fit`: the model, the optimizer, the history so far, and `stop()`. */
export interface FitContext {
  readonly model: Trainable;
  readonly optimizer: Optimizer<{ lr: number }>;
  readonly history: readonly EpochLog[];
  /** Ends training after the current epoch. */
  stop(): void;
}

/** Hooks that `fit` calls after every batch and every epoch (awaited); `earlyStopping` and `checkpointCallback` are two. */
export interface Callback {
  /** After each optimizer step, with the 1-based epoch, the 0-based batch index and the batch's loss. */
  onBatchEnd?(info: { epoch: number; batch: number; loss: number }, ctx: FitContext): void | Promise<void>;
  /** After each epoch (and its validation), with the epoch's log. */
  onEpochEnd?(log: EpochLog, ctx: FitContext): void | Promise<void>;
}

/** Options of `fit`: `epochs` and `optimizer` are required; batchSize 32, cross-entropy loss, shuffling on, seed 0 by default. */
export interface FitOptions {
  epochs: number;
  optimizer: Optimizer<{ lr: number }>;
  batchSize?: number;
  /** lr multiplier schedule, stepped per epoch (default) or per batch. */
  schedule?: Schedule;
  schedulePer?: 'epoch' | 'step';
  /** Default: cross-entropy from logits. */
  loss?: (output: Tensor, labels: Int32Array) => Tensor;
  validation?: LabelledData | BatchSource;
  /** Scored on the validation data after every epoch (EpochLog.valMetric); `restoreBest` follows it. */
  validationMetric?: ValidationMetric;
  /** Runs before each validation, e.g. precise BN (recalibrateBatchNorm) on training batches. */
  beforeValidation?: (model: Trainable) => Promise<void> | void;
  /**
   * Keeps BatchNorm layers in eval mode while training (their running statistics fixed, their
   * affine weights still trained): for fine-tuning from exports whose BN was folded into the
   * convs, where batch statistics would undo the pretrained features, and for small batches.
   */
  frozenBatchNorm?: boolean;
  /**
   * At the end, load the weights of the epoch with the best validation score (valMetric when
   * given, ties going to the lower valLoss; else valLoss) — Keras' restore_best_weights. Needs
   * validation data and a model with stateDict()/loadStateDict() (Module has them).
   */
  restoreBest?: boolean;
  callbacks?: readonly Callback[];
  /** Aborting stops between batches with a TrainingAbortedError that carries the history so far. */
  signal?: AbortSignal;
  /** Seeds the shuffling. */
  seed?: number;
  shuffle?: boolean;
  /** Clip the global gradient norm before each step. */
  clipGradNorm?: number;
  /** A progress bar on stdout; default: only when stdout is a TTY. */
  progress?: boolean;
}

/** Puts the model in train mode, with BN layers kept in eval mode when asked. */
function trainMode(model: Trainable, frozenBn: boolean): void {
  model.train();
  if (!frozenBn) return;
  const named = (model as Partial<{ namedModules(): [string, { training: boolean; constructor: { name: string } }][] }>).namedModules?.();
  for (const [, m] of named ?? []) if (m.constructor.name === 'BatchNorm2d') m.training = false;
}

/**
 * Thrown by `fit` when its `signal` aborts; `history` holds the epochs that completed.
 *
 * @example
 * ```ts
 * import { Adam, Tensor, TrainingAbortedError, fit, lightCnn } from 'lightconv';
 *
 * const net = lightCnn({ numClasses: 2 });
 * const data = { images: Tensor.randn([8, 3, 64, 64], { seed: 0 }), labels: [0, 1, 0, 1, 0, 1, 0, 1] };
 * const controller = new AbortController();
 * setTimeout(() => controller.abort(), 60_000);
 * try {
 *   await fit(net, data, { epochs: 100, optimizer: new Adam(net.parameters()), signal: controller.signal });
 * } catch (e) {
 *   if (e instanceof TrainingAbortedError) console.log(`stopped after ${e.history.length} epochs`);
 *   else throw e;
 * }
 * ```
 */
export class TrainingAbortedError extends LightconvError {
  constructor(readonly history: readonly EpochLog[]) {
    super(`fit: aborted after ${history.length} complete epoch${history.length === 1 ? '' : 's'}`);
  }
}

/**
 * Rows `idx` of an [N, …] tensor (a copy).
 *
 * @example
 * ```ts
 * import { Tensor, takeRows } from 'lightconv';
 *
 * const x = Tensor.randn([10, 3, 32, 32], { seed: 0 });
 * const batch = takeRows(x, [0, 4, 7]); // [3, 3, 32, 32]
 * ```
 */
export function takeRows(t: Tensor, idx: ArrayLike<number>): Tensor {
  const per = t.size / (t.shape[0] || 1);
  const src = t.dataSync();
  const out = new Float32Array(idx.length * per);
  for (let i = 0; i < idx.length; i++) out.set(src.subarray(idx[i]! * per, (idx[i]! + 1) * per), i * per);
  return new Tensor(out, [idx.length, ...t.shape.slice(1)]);
}

function isSource(d: LabelledData | BatchSource): d is BatchSource {
  return typeof (d as BatchSource).batches === 'function';
}

function checkData(d: LabelledData | BatchSource, what: string): void {
  if (isSource(d)) {
    if (d.length < 1) throw new ValueError(`fit: ${what} is empty`);
    return;
  }
  if (d.images.rank < 1 || d.images.shape[0] !== d.labels.length) {
    throw new ShapeError(`fit: ${what} has ${d.images.shape[0]} inputs but ${d.labels.length} labels`);
  }
}

const yieldToEvents = () => new Promise<void>((r) => setImmediate(r));

/**
 * Softmax probabilities [N × C, row-major] and labels of `model` on `data`, in eval mode without
 * recording, and the mean loss. Works on tensors and on batch sources alike.
 *
 * @example
 * ```ts
 * import { Tensor, lightCnn, predictProbabilities } from 'lightconv';
 *
 * const net = lightCnn({ numClasses: 2 });
 * const data = { images: Tensor.randn([8, 3, 64, 64], { seed: 0 }), labels: [0, 1, 0, 1, 0, 1, 0, 1] };
 * const { probs, numClasses, loss } = await predictProbabilities(net, data); // probs: 8 × 2
 * ```
 */
export async function predictProbabilities(
  model: Trainable,
  data: LabelledData | BatchSource,
  opts: { batchSize?: number; loss?: (o: Tensor, y: Int32Array) => Tensor } = {},
): Promise<{ probs: Float32Array; labels: Int32Array; numClasses: number; loss: number }> {
  const lossFn = opts.loss ?? ((o, y) => crossEntropy(o, y));
  const bs = opts.batchSize ?? 64;
  const batches: AsyncIterable<{ images: Tensor; labels: Int32Array }> | Iterable<{ images: Tensor; labels: Int32Array }> = isSource(data)
    ? data.batches(0)
    : (function* () {
        const n = data.labels.length;
        for (let s = 0; s < n; s += bs) {
          const idx = Array.from({ length: Math.min(bs, n - s) }, (_, i) => s + i);
          yield { images: takeRows(data.images, idx), labels: Int32Array.from(idx, (i) => data.labels[i]!) };
        }
      })();
  model.eval();
  const probs: number[] = [];
  const labels: number[] = [];
  let loss = 0;
  let numClasses = 0;
  for await (const b of batches) {
    const out = noGrad(() => model.forward(b.images));
    if (out.rank !== 2) throw new ShapeError(`predictProbabilities: the model's output must be [N, classes], got [${out.shape}]`);
    numClasses = out.shape[1]!;
    loss += noGrad(() => lossFn(out, b.labels)).dataSync()[0]! * b.labels.length;
    const d = out.dataSync();
    for (let i = 0; i < b.labels.length; i++) {
      const row = d.subarray(i * numClasses, (i + 1) * numClasses);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      for (const v of row) probs.push(Math.exp(v - max) / sum);
      labels.push(b.labels[i]!);
    }
    await yieldToEvents();
  }
  return { probs: Float32Array.from(probs), labels: Int32Array.from(labels), numClasses, loss: labels.length ? loss / labels.length : NaN };
}

function accuracyOf(labels: Int32Array, probs: Float32Array, c: number): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (probs[i * c + j]! > probs[i * c + best]!) best = j;
    if (best === labels[i]) ok++;
  }
  return labels.length ? ok / labels.length : 0;
}

/**
 * Mean loss and accuracy of `model` on `data`, in eval mode without recording.
 *
 * @example
 * ```ts
 * import { Tensor, evaluate, lightCnn } from 'lightconv';
 *
 * const net = lightCnn({ numClasses: 2 });
 * const test = { images: Tensor.randn([8, 3, 64, 64], { seed: 0 }), labels: [0, 1, 0, 1, 0, 1, 0, 1] };
 * const { loss, accuracy, predictions } = evaluate(net, test, { batchSize: 4 });
 * ```
 */
export function evaluate(model: Trainable, data: LabelledData, opts: { batchSize?: number; loss?: (o: Tensor, y: Int32Array) => Tensor } = {}): { loss: number; accuracy: number; predictions: number[] } {
  const bs = opts.batchSize ?? 64;
  const lossFn = opts.loss ?? ((o, y) => crossEntropy(o, y));
  model.eval();
  const n = data.labels.length;
  let loss = 0;
  let correct = 0;
  const predictions: number[] = [];
  noGrad(() => {
    for (let s = 0; s < n; s += bs) {
      const idx = Array.from({ length: Math.min(bs, n - s) }, (_, i) => s + i);
      const y = Int32Array.from(idx, (i) => data.labels[i]!);
      const out = model.forward(takeRows(data.images, idx));
      loss += lossFn(out, y).dataSync()[0]! * idx.length;
      for (const [i, p] of argmax(out).entries()) {
        predictions.push(p);
        if (p === y[i]) correct++;
      }
    }
  });
  return { loss: loss / n, accuracy: correct / n, predictions };
}

/**
 * Trains `model` for `epochs` passes over `train` in shuffled mini-batches (seeded):
 * zeroGrad → forward (train mode) → loss → backward → optional clipping → optimizer.step, with
 * the schedule applied to every parameter group. `train` and `validation` are tensors or batch
 * sources (src/data's ImageLoader). Returns the per-epoch history and, with validation data, the
 * best epoch (by valMetric when given, else valLoss).
 *
 * @example
 * ```ts
 * import { Adam, Tensor, cosineSchedule, earlyStopping, fit, mobileNetV3 } from 'lightconv';
 *
 * const net = mobileNetV3('small', { numClasses: 2, seed: 0 });
 * const train = { images: Tensor.randn([16, 3, 96, 96], { seed: 1 }), labels: Array.from({ length: 16 }, (_, i) => i % 2) };
 * const val = { images: Tensor.randn([8, 3, 96, 96], { seed: 2 }), labels: [0, 1, 0, 1, 0, 1, 0, 1] };
 * const { history, bestEpoch } = await fit(net, train, {
 *   epochs: 5,
 *   batchSize: 8,
 *   optimizer: new Adam(net.parameters(), { lr: 1e-3 }),
 *   schedule: cosineSchedule({ total: 5 }),
 *   validation: val,
 *   callbacks: [earlyStopping({ monitor: 'valLoss', patience: 2 })],
 * });
 * ```
 */
export async function fit(
  model: Trainable,
  train: LabelledData | BatchSource,
  opts: FitOptions,
): Promise<{ history: EpochLog[]; stoppedEarly: boolean; bestEpoch: number }> {
  checkData(train, 'the training data');
  if (opts.validation) checkData(opts.validation, 'the validation data');
  if (!(Number.isInteger(opts.epochs) && opts.epochs >= 0)) throw new ValueError(`fit: epochs must be a non-negative integer, got ${opts.epochs}`);
  const bs = opts.batchSize ?? 32;
  if (!(Number.isInteger(bs) && bs >= 1)) throw new ValueError(`fit: batchSize must be a positive integer, got ${bs}`);
  if (opts.restoreBest && !opts.validation) throw new ValueError('fit: restoreBest needs validation data');
  const { optimizer } = opts;
  const lossFn = opts.loss ?? ((o, y) => crossEntropy(o, y));
  const rng = new Rng(opts.seed ?? 0);
  const n = isSource(train) ? train.length : train.labels.length;
  const batches = Math.ceil(n / bs);
  const history: EpochLog[] = [];
  let stop = false;
  const ctx: FitContext = { model, optimizer, history, stop: () => (stop = true) };
  const stateful = model as unknown as Partial<{ stateDict(): Record<string, Tensor>; loadStateDict(s: Record<string, Tensor>): void }>;
  if (opts.restoreBest && (typeof stateful.stateDict !== 'function' || typeof stateful.loadStateDict !== 'function')) {
    throw new ValueError('fit: restoreBest needs a model with stateDict() and loadStateDict()');
  }
  const metricMode = opts.validationMetric?.mode ?? 'max';
  let best = { epoch: 0, score: NaN, loss: Infinity, state: null as Record<string, Tensor> | null };
  // cli-progress is loaded only when a bar is shown (the module stays usable without a terminal).
  const showBar = opts.progress ?? Boolean(typeof process !== 'undefined' && process.stdout?.isTTY);
  const bar: SingleBar | null = showBar
    ? new (await import('cli-progress')).SingleBar({ format: 'epoch {epoch} [{bar}] {value}/{total} batches  loss {loss}  lr {lr}  eta {eta_formatted}', hideCursor: true })
    : null;
  const epochBatches = (epoch: number): AsyncIterable<{ images: Tensor; labels: Int32Array }> | Iterable<{ images: Tensor; labels: Int32Array }> => {
    if (isSource(train)) return train.batches(epoch);
    const order = [...Array(n).keys()];
    if (opts.shuffle ?? true) rng.shuffle(order);
    return (function* () {
      for (let b = 0; b < batches; b++) {
        const idx = order.slice(b * bs, (b + 1) * bs);
        yield { images: takeRows(train.images, idx), labels: Int32Array.from(idx, (i) => train.labels[i]!) };
      }
    })();
  };
  let step = 0;
  try {
    for (let epoch = 1; epoch <= opts.epochs && !stop; epoch++) {
      const t0 = performance.now();
      if (opts.schedule && (opts.schedulePer ?? 'epoch') === 'epoch') setLr(optimizer, opts.schedule, epoch - 1);
      trainMode(model, opts.frozenBatchNorm ?? false);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let b = 0;
      bar?.start(batches, 0, { epoch, loss: '-', lr: optimizer.groups[0]?.options.lr.toExponential(2) });
      for await (const batch of epochBatches(epoch)) {
        if (opts.signal?.aborted) throw new TrainingAbortedError(history);
        if (opts.schedule && opts.schedulePer === 'step') setLr(optimizer, opts.schedule, step);
        const y = batch.labels;
        optimizer.zeroGrad();
        const out = model.forward(batch.images);
        const loss = lossFn(out, y);
        const lv = loss.dataSync()[0]!;
        if (!Number.isFinite(lv)) throw new ValueError(`fit: the loss became ${lv} at epoch ${epoch}, batch ${b + 1} (lr too high?)`);
        loss.backward();
        if (opts.clipGradNorm !== undefined) clipGradNorm(model.parameters(), opts.clipGradNorm);
        optimizer.step();
        step++;
        b++;
        seen += y.length;
        lossSum += lv * y.length;
        argmax(out).forEach((p, i) => p === y[i] && correct++);
        bar?.update(b, { epoch, loss: lv.toFixed(4), lr: optimizer.groups[0]?.options.lr.toExponential(2) });
        for (const c of opts.callbacks ?? []) await c.onBatchEnd?.({ epoch, batch: b, loss: lv }, ctx);
        await yieldToEvents(); // lets an AbortSignal fire between batches
      }
      bar?.stop();
      if (opts.signal?.aborted) throw new TrainingAbortedError(history);
      const log: EpochLog = { epoch, loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen), lr: optimizer.groups[0]?.options.lr ?? 0, timeMs: 0 };
      if (opts.validation) {
        await opts.beforeValidation?.(model);
        const v = await predictProbabilities(model, opts.validation, { batchSize: bs, loss: lossFn });
        log.valLoss = v.loss;
        log.valAccuracy = accuracyOf(v.labels, v.probs, v.numClasses);
        if (opts.validationMetric) log.valMetric = opts.validationMetric.fn(v.labels, v.probs, v.numClasses);
        const score = opts.validationMetric ? log.valMetric! : log.valLoss;
        // A tie on the metric goes to the lower validation loss: on a few dozen validation images
        // F1 often reaches 1.0 in the first epochs and stays there while the loss keeps falling.
        const tie = opts.validationMetric !== undefined && score === best.score && v.loss < best.loss;
        const improved = Number.isNaN(best.score) || tie || (opts.validationMetric && metricMode === 'max' ? score > best.score : score < best.score);
        if (improved && Number.isFinite(score)) {
          best = { epoch, score, loss: v.loss, state: opts.restoreBest ? cloneState(stateful.stateDict!()) : null };
        }
      }
      log.timeMs = performance.now() - t0;
      history.push(log);
      for (const c of opts.callbacks ?? []) await c.onEpochEnd?.(log, ctx);
    }
  } finally {
    bar?.stop();
    model.train();
  }
  if (opts.restoreBest && best.state) stateful.loadStateDict!(best.state);
  return { history, stoppedEarly: stop, bestEpoch: best.epoch };
}

/** A deep copy of a state dict (the optimizer updates parameters in place). */
function cloneState(s: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(s).map(([k, t]) => [k, new Tensor(Float32Array.from(t.dataSync()), t.shape)]));
}

type Monitor = 'loss' | 'accuracy' | 'valLoss' | 'valAccuracy' | 'valMetric';

function better(mode: 'min' | 'max', a: number, best: number, minDelta: number): boolean {
  return mode === 'min' ? a < best - minDelta : a > best + minDelta;
}

/**
 * Stops when `monitor` has not improved by more than minDelta for `patience` epochs.
 *
 * @example
 * ```ts
 * import { earlyStopping, type FitOptions } from 'lightconv';
 *
 * const stopper = earlyStopping({ monitor: 'valAccuracy', patience: 5 });
 * const callbacks: FitOptions['callbacks'] = [stopper]; // after fit: stopper.bestEpoch
 * ```
 */
export function earlyStopping(opts: { monitor?: Monitor; patience?: number; minDelta?: number; mode?: 'min' | 'max' } = {}): Callback & { bestEpoch: number } {
  const monitor = opts.monitor ?? 'valLoss';
  // valMetric: 'max', as fit's validationMetric defaults to; pass `mode` for a metric to minimise.
  const mode = opts.mode ?? (monitor.toLowerCase().includes('acc') || monitor === 'valMetric' ? 'max' : 'min');
  const patience = opts.patience ?? 3;
  let best = mode === 'min' ? Infinity : -Infinity;
  let wait = 0;
  const cb = {
    bestEpoch: 0,
    onEpochEnd(log: EpochLog, ctx: FitContext) {
      const v = log[monitor];
      if (v === undefined) throw new ValueError(`earlyStopping: the epoch log has no '${monitor}' (no validation data?)`);
      if (better(mode, v, best, opts.minDelta ?? 0)) {
        best = v;
        wait = 0;
        cb.bestEpoch = log.epoch;
      } else if (++wait >= patience) ctx.stop();
    },
  };
  return cb;
}

/**
 * Saves a checkpoint after every epoch, or only when `monitor` improves (bestOnly).
 *
 * @example
 * ```ts
 * import { checkpointCallback, earlyStopping, type FitOptions } from 'lightconv';
 *
 * const callbacks: FitOptions['callbacks'] = [
 *   checkpointCallback('runs/best.lcckpt', { monitor: 'valLoss', bestOnly: true }),
 *   earlyStopping(),
 * ];
 * ```
 */
export function checkpointCallback(path: string, opts: { monitor?: Monitor; mode?: 'min' | 'max'; bestOnly?: boolean } = {}): Callback {
  const named = (m: Trainable): CheckpointModel => {
    const c = m as unknown as Partial<CheckpointModel>;
    if (typeof c.namedParameters !== 'function' || typeof c.namedBuffers !== 'function') {
      throw new ValueError('checkpointCallback: the model needs namedParameters() and namedBuffers() (Module and OnnxTrainable have them)');
    }
    return c as CheckpointModel;
  };
  const monitor = opts.monitor ?? 'valLoss';
  // valMetric: 'max', as fit's validationMetric defaults to; pass `mode` for a metric to minimise.
  const mode = opts.mode ?? (monitor.toLowerCase().includes('acc') || monitor === 'valMetric' ? 'max' : 'min');
  let best = mode === 'min' ? Infinity : -Infinity;
  return {
    async onEpochEnd(log, ctx) {
      const v = log[monitor];
      if (opts.bestOnly) {
        if (v === undefined || !better(mode, v, best, 0)) return;
        best = v;
      }
      await saveCheckpoint(path, named(ctx.model), { optimizer: ctx.optimizer, meta: { ...log } });
    },
  };
}
