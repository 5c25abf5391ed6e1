import { LightconvError, ValueError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { ImageList } from '../data/datasets.js';
import { ImageLoader } from '../data/loader.js';
import { classificationMetrics } from '../eval/metrics.js';
import { bootstrapCI } from '../eval/stats.js';
import { type TrainedModel, loadTrainedModel } from '../train/trained_model.js';
import { type PredictionRow, evaluationPlots, predictionsCsv, writeAtomic } from './outputs.js';
import { headlineLine, listData } from './train_run.js';
import { writeReport } from '../report/report.js';

export { type TrainedModel, loadTrainedModel };

/**
 * Softmax probabilities of a model over a loader's batches, in the loader's order.
 *
 * @example
 * ```ts
 * import { ImageLoader, listImageFolder, loadTrainedModel, modelProbabilities } from 'lightconv';
 *
 * const m = await loadTrainedModel('runs/exp1/model.onnx');
 * const loader = new ImageLoader(await listImageFolder('data/test'), { preprocess: m.preprocess, batchSize: 32 });
 * const { probs, labels } = await modelProbabilities(m, loader);
 * await loader.close();
 * ```
 */
export async function modelProbabilities(m: TrainedModel, loader: ImageLoader, onBatch?: (done: number) => void): Promise<{ probs: Float32Array; labels: Int32Array; indices: number[] }> {
  const C = m.classes.length;
  const probs: number[] = [];
  const labels: number[] = [];
  const indices: number[] = [];
  for await (const b of loader.batches(0)) {
    const out = Object.values(await m.model.run(b.images))[0] as Tensor;
    if (out.rank !== 2 || out.shape[1] !== C) throw new ValueError(`${m.file}: output is [${out.shape}], expected [N, ${C}]`);
    const d = out.dataSync();
    for (let i = 0; i < b.labels.length; i++) {
      const row = Array.from(d.subarray(i * C, (i + 1) * C));
      const max = Math.max(...row);
      const e = row.map((v) => Math.exp(v - max));
      const s = e.reduce((a, v) => a + v, 0);
      probs.push(...e.map((v) => v / s));
      labels.push(b.labels[i]!);
      indices.push(b.indices[i]!);
    }
    onBatch?.(indices.length);
  }
  return { probs: Float32Array.from(probs), labels: Int32Array.from(labels), indices };
}

/** Options of `evalRun`, the flags of `lightconv eval`: the model, the labelled data (a folder, or a flat folder with `csv`), the output folder; batch 32, 1000 bootstrap resamples by default. */
export interface EvalRunOptions {
  model: string;
  data: string;
  csv?: string;
  imageCol?: string;
  labelCol?: string;
  out: string;
  batch?: number;
  workers?: number;
  bootstrap?: number;
  seed?: number;
  /** One line per event; default console.log. */
  log?: (line: string) => void;
}

/**
 * `lightconv eval`: a trained model on a labelled folder → metrics with CIs, plots, predictions,
 * report.
 *
 * @example
 * ```ts
 * import { evalRun } from 'lightconv';
 *
 * await evalRun({ model: 'runs/exp1/model.onnx', data: 'data/external-test', out: 'runs/exp1-external' });
 * ```
 */
export async function evalRun(o: EvalRunOptions) {
  const log = o.log ?? ((l: string) => console.log(l));
  const m = await loadTrainedModel(o.model);
  if (!m.described) log(`${o.model}: no lightconv metadata; using ${m.preprocess.inputSize}×${m.preprocess.inputSize} ImageNet preprocessing and classes 0…${m.classes.length - 1}`);
  const list = await listData({ ...o, classes: m.described ? m.classes : undefined });
  const mapped = mapClasses(list, m, o.data);
  const loader = new ImageLoader(mapped, { preprocess: m.preprocess, batchSize: o.batch ?? 32, shuffle: false, ...(o.workers !== undefined ? { workers: o.workers } : {}) });
  try {
    const r = await modelProbabilities(m, loader);
    const metrics = classificationMetrics(r.labels, r.probs, m.classes);
    const ci95 = bootstrapCI(r.labels, r.probs, m.classes, { n: o.bootstrap ?? 1000, seed: o.seed ?? 1 });
    const rows: PredictionRow[] = r.indices.map((i, k) => ({ file: mapped.items[i]!.file, split: 'eval', label: r.labels[k]!, probs: Array.from(r.probs.subarray(k * m.classes.length, (k + 1) * m.classes.length)) }));
    const figures = await evaluationPlots(o.out, rows, m.classes, metrics);
    const body = { version: 1, status: 'complete', created: new Date().toISOString(), model: o.model, evaluated_on: 'eval', dataset: { root: list.root, layout: list.layout, n: list.items.length, classes: m.classes }, ...metrics, ci95, files: { predictions: 'predictions.csv', report: 'report.md', plots: figures } };
    await writeAtomic(`${o.out}/predictions.csv`, predictionsCsv(rows, m.classes));
    await writeAtomic(`${o.out}/metrics.json`, JSON.stringify(body, null, 2));
    await writeReport(o.out, body as never, { title: `Evaluation of ${o.model}`, figures });
    log(`${list.items.length} images: ${headlineLine(metrics)}`);
    return body;
  } finally {
    await loader.close();
  }
}

/** The dataset's labels renumbered to the model's class order (by name). */
function mapClasses(list: ImageList, m: TrainedModel, where: string): ImageList {
  const index = new Map(m.classes.map((c, i) => [c, i]));
  const unknown = list.classes.filter((c) => !index.has(c));
  if (unknown.length) throw new ValueError(`${where}: class${unknown.length > 1 ? 'es' : ''} ${unknown.map((c) => `'${c}'`).join(', ')} not known to the model (its classes: ${m.classes.join(', ')})`);
  return { ...list, classes: m.classes, items: list.items.map((it) => ({ ...it, label: index.get(list.classes[it.label]!)! })) };
}

/**
 * `lightconv predict`: class and probabilities for images or folders of images (unlabelled).
 *
 * @example
 * ```ts
 * import { predictFiles } from 'lightconv';
 *
 * const { rows } = await predictFiles({ model: 'runs/exp1/model.onnx', inputs: ['new-images/'] });
 * for (const r of rows) console.log(r.file, r.predicted, r.probability);
 * ```
 */
export async function predictFiles(o: { model: string; inputs: string[]; batch?: number; workers?: number }): Promise<{ classes: string[]; rows: { file: string; predicted: string; probability: number; probs: number[] }[] }> {
  const m = await loadTrainedModel(o.model);
  const { realpath, stat } = await import('node:fs/promises');
  const { resolve } = await import('node:path');
  const { listImageFiles } = await import('../data/datasets.js');
  const files: string[] = [];
  const paths: string[] = [];
  for (const p of o.inputs) {
    const s = await stat(p).catch(() => {
      throw new LightconvError(`predict: '${p}' does not exist`);
    });
    if (s.isDirectory()) {
      // The datasets' walk: symbolic links are followed only within the folder, FIFOs refused.
      for (const f of await listImageFiles(p, 'predict')) {
        files.push(f.file);
        paths.push(resolve(f.path));
      }
    } else {
      // A file named on the command line is read where it really is (links followed once, here).
      files.push(p);
      paths.push(await realpath(p));
    }
  }
  if (files.length === 0) throw new ValueError(`predict: no images (.png, .jpg, .jpeg, .dcm) in ${o.inputs.join(', ')}`);
  const list: ImageList = { root: '', layout: 'folder', classes: m.classes, items: files.map((f, i) => ({ path: paths[i]!, file: f, label: 0 })) };
  const loader = new ImageLoader(list, { preprocess: m.preprocess, batchSize: o.batch ?? 16, shuffle: false, ...(o.workers !== undefined ? { workers: o.workers } : {}) });
  try {
    const r = await modelProbabilities(m, loader);
    const C = m.classes.length;
    const rows = r.indices.map((i, k) => {
      const probs = Array.from(r.probs.subarray(k * C, (k + 1) * C));
      const best = probs.reduce((b, v, j) => (v > probs[b]! ? j : b), 0);
      return { file: files[i]!, predicted: m.classes[best]!, probability: probs[best]!, probs };
    });
    return { classes: m.classes, rows };
  } finally {
    await loader.close();
  }
}
