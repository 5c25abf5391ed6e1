import type { SingleBar } from 'cli-progress';
import { noGrad } from '../core/autograd.js';
import { LightconvError, ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { type CheckpointModel, saveCheckpoint } from './checkpoint.js';
import { crossEntropy } from './losses.js';
import { argmax } from './metrics.js';
import { type Optimizer, clipGradNorm } from './optim.js';
import { type Schedule, setLr } from './schedule.js';

/**
 * What `fit` needs of a model. `Module` (src/layers/module.ts) and `OnnxTrainable`
 * (src/train/onnx_trainable.ts) both have it.
 */
export interface Trainable {
  forward(x: Tensor): Tensor;
  parameters(): Tensor[];
  train(on?: boolean): unknown;
  eval(): unknown;
}

/** Inputs [N, …] and one integer label per row. */
export interface LabelledData {
  readonly images: Tensor;
  readonly labels: ArrayLike<number>;
}

export interface EpochLog {
  /** 1-based. */
  epoch: number;
  /** Mean training loss over the epoch's batches (weighted by batch size). */
  loss: number;
  /** Training accuracy of the predictions made during the epoch (train mode). */
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  /** The first parameter group's lr during the epoch (at its last step). */
  lr: number;
  /** Wall time of the epoch including validation, ms. */
  timeMs: number;
}

export interface FitContext {
  readonly model: Trainable;
  readonly optimizer: Optimizer<{ lr: number }>;
  readonly history: readonly EpochLog[];
  /** Ends training after the current epoch. */
  stop(): void;
}

export interface Callback {
  onBatchEnd?(info: { epoch: number; batch: number; loss: number }, ctx: FitContext): void | Promise<void>;
  onEpochEnd?(log: EpochLog, ctx: FitContext): void | Promise<void>;
}

export interface FitOptions {
  epochs: number;
  optimizer: Optimizer<{ lr: number }>;
  batchSize?: number;
  /** lr multiplier schedule, stepped per epoch (default) or per batch. */
  schedule?: Schedule;
  schedulePer?: 'epoch' | 'step';
  /** Default: cross-entropy from logits. */
  loss?: (output: Tensor, labels: Int32Array) => Tensor;
  validation?: LabelledData;
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

export class TrainingAbortedError extends LightconvError {
  constructor(readonly history: readonly EpochLog[]) {
    super(`fit: aborted after ${history.length} complete epoch${history.length === 1 ? '' : 's'}`);
  }
}

/** Rows `idx` of an [N, …] tensor (a copy). */
export function takeRows(t: Tensor, idx: ArrayLike<number>): Tensor {
  const per = t.size / (t.shape[0] || 1);
  const src = t.dataSync();
  const out = new Float32Array(idx.length * per);
  for (let i = 0; i < idx.length; i++) out.set(src.subarray(idx[i]! * per, (idx[i]! + 1) * per), i * per);
  return new Tensor(out, [idx.length, ...t.shape.slice(1)]);
}

function checkData(d: LabelledData, what: string): void {
  if (d.images.rank < 1 || d.images.shape[0] !== d.labels.length) {
    throw new ShapeError(`fit: ${what} has ${d.images.shape[0]} inputs but ${d.labels.length} labels`);
  }
}

const yieldToEvents = () => new Promise<void>((r) => setImmediate(r));

/** Mean loss and accuracy of `model` on `data`, in eval mode without recording. */
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
 * the schedule applied to every parameter group. Returns the per-epoch history.
 */
export async function fit(model: Trainable, train: LabelledData, opts: FitOptions): Promise<{ history: EpochLog[]; stoppedEarly: boolean }> {
  checkData(train, 'the training data');
  if (opts.validation) checkData(opts.validation, 'the validation data');
  if (!(Number.isInteger(opts.epochs) && opts.epochs >= 0)) throw new ValueError(`fit: epochs must be a non-negative integer, got ${opts.epochs}`);
  const bs = opts.batchSize ?? 32;
  if (!(Number.isInteger(bs) && bs >= 1)) throw new ValueError(`fit: batchSize must be a positive integer, got ${bs}`);
  const { optimizer } = opts;
  const lossFn = opts.loss ?? ((o, y) => crossEntropy(o, y));
  const rng = new Rng(opts.seed ?? 0);
  const n = train.labels.length;
  const batches = Math.ceil(n / bs);
  const history: EpochLog[] = [];
  let stop = false;
  const ctx: FitContext = { model, optimizer, history, stop: () => (stop = true) };
  // cli-progress is loaded only when a bar is shown (the module stays usable without a terminal).
  const showBar = opts.progress ?? Boolean(typeof process !== 'undefined' && process.stdout?.isTTY);
  const bar: SingleBar | null = showBar
    ? new (await import('cli-progress')).SingleBar({ format: 'epoch {epoch} [{bar}] {value}/{total} batches  loss {loss}  lr {lr}', hideCursor: true })
    : null;
  let step = 0;
  try {
    for (let epoch = 1; epoch <= opts.epochs && !stop; epoch++) {
      const t0 = performance.now();
      if (opts.schedule && (opts.schedulePer ?? 'epoch') === 'epoch') setLr(optimizer, opts.schedule, epoch - 1);
      const order = [...Array(n).keys()];
      if (opts.shuffle ?? true) rng.shuffle(order);
      model.train();
      let lossSum = 0;
      let correct = 0;
      bar?.start(batches, 0, { epoch, loss: '-', lr: optimizer.groups[0]?.options.lr.toExponential(2) });
      for (let b = 0; b < batches; b++) {
        if (opts.signal?.aborted) throw new TrainingAbortedError(history);
        if (opts.schedule && opts.schedulePer === 'step') setLr(optimizer, opts.schedule, step);
        const idx = order.slice(b * bs, (b + 1) * bs);
        const y = Int32Array.from(idx, (i) => train.labels[i]!);
        optimizer.zeroGrad();
        const out = model.forward(takeRows(train.images, idx));
        const loss = lossFn(out, y);
        const lv = loss.dataSync()[0]!;
        if (!Number.isFinite(lv)) throw new ValueError(`fit: the loss became ${lv} at epoch ${epoch}, batch ${b + 1} (lr too high?)`);
        loss.backward();
        if (opts.clipGradNorm !== undefined) clipGradNorm(model.parameters(), opts.clipGradNorm);
        optimizer.step();
        step++;
        lossSum += lv * idx.length;
        argmax(out).forEach((p, i) => p === y[i] && correct++);
        bar?.update(b + 1, { epoch, loss: lv.toFixed(4), lr: optimizer.groups[0]?.options.lr.toExponential(2) });
        for (const c of opts.callbacks ?? []) await c.onBatchEnd?.({ epoch, batch: b + 1, loss: lv }, ctx);
        await yieldToEvents(); // lets an AbortSignal fire between batches
      }
      bar?.stop();
      const log: EpochLog = { epoch, loss: lossSum / n, accuracy: correct / n, lr: optimizer.groups[0]?.options.lr ?? 0, timeMs: 0 };
      if (opts.validation) {
        const v = evaluate(model, opts.validation, { batchSize: bs, loss: lossFn });
        log.valLoss = v.loss;
        log.valAccuracy = v.accuracy;
      }
      log.timeMs = performance.now() - t0;
      history.push(log);
      for (const c of opts.callbacks ?? []) await c.onEpochEnd?.(log, ctx);
    }
  } finally {
    bar?.stop();
    model.train();
  }
  return { history, stoppedEarly: stop };
}

type Monitor = 'loss' | 'accuracy' | 'valLoss' | 'valAccuracy';

function better(mode: 'min' | 'max', a: number, best: number, minDelta: number): boolean {
  return mode === 'min' ? a < best - minDelta : a > best + minDelta;
}

/** Stops when `monitor` has not improved by more than minDelta for `patience` epochs. */
export function earlyStopping(opts: { monitor?: Monitor; patience?: number; minDelta?: number; mode?: 'min' | 'max' } = {}): Callback & { bestEpoch: number } {
  const monitor = opts.monitor ?? 'valLoss';
  const mode = opts.mode ?? (monitor.toLowerCase().includes('acc') ? 'max' : 'min');
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

/** Saves a checkpoint after every epoch, or only when `monitor` improves (bestOnly). */
export function checkpointCallback(path: string, opts: { monitor?: Monitor; mode?: 'min' | 'max'; bestOnly?: boolean } = {}): Callback {
  const named = (m: Trainable): CheckpointModel => {
    const c = m as unknown as Partial<CheckpointModel>;
    if (typeof c.namedParameters !== 'function' || typeof c.namedBuffers !== 'function') {
      throw new ValueError('checkpointCallback: the model needs namedParameters() and namedBuffers() (Module and OnnxTrainable have them)');
    }
    return c as CheckpointModel;
  };
  const monitor = opts.monitor ?? 'valLoss';
  const mode = opts.mode ?? (monitor.toLowerCase().includes('acc') ? 'max' : 'min');
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
