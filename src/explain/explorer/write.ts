import { ValueError } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import type { RgbImage } from '../../data/image.js';
import type { Preprocess } from '../../data/transforms.js';
import type { OnnxGraph, ValueInfo } from '../../io/onnx/graph.js';
import { OnnxModel } from '../../io/onnx/model.js';
import { Module } from '../../layers/module.js';
import { crossEntropy } from '../../train/losses.js';
import { OnnxTrainable } from '../../train/onnx_trainable.js';
import type { TrainedModel } from '../../train/trained_model.js';
import { type CamMethod, gradCam, prepareInput, probabilities, resolveSubject, runModel, subjectPreprocess } from '../cam.js';
import { type ColormapName, blendHeat, colormapLut } from '../overlay.js';
import { checkLoopback, servePage } from '../page_server.js';
import { pageScript } from '../page_script.js';
import { onnxScope } from '../step.js';
import { DATA_GLOBAL, type ExplorerCam, type ExplorerData, type ExplorerGradients } from './data.js';
import { PAGE_CSS, pageHtml } from './template.js';

export type { ExplorerData } from './data.js';
export { checkLoopback };

/** Options of the explorer page (`explorerData`, `writeExplorer`): top 10 classes, Grad-CAM by default. */
export interface ExplorerOptions {
  /** Grad-CAM and gradients for this many of the most probable classes (default 10; all when fewer). */
  classes?: number;
  /** The CAM method (default 'gradcam'). */
  method?: CamMethod;
  /** The CAM layer (default: the last spatial conv, as gradCam chooses). */
  layer?: string;
  /** Colour map of the feature maps (default 'viridis') and of the CAM (default 'inferno'). */
  colormap?: ColormapName;
  camColormap?: ColormapName;
  /** The page's title (default: the model file's name or the architecture). */
  title?: string;
}

/** A model the explorer can show: a native module, a trained model, or the path of an ONNX file. */
export type ExplorerModel = Module | TrainedModel | string;

/** The files of the page: name → contents. */
export type ExplorerFiles = Map<string, string>;

/**
 * The explorer's data for a model and one image. The page runs the model itself (the engine is
 * bundled into it), so it gets the model as ONNX: a trained model's file as it is, a native module
 * exported (BN and activations kept as their own nodes, node names carrying the module paths).
 *
 * @example
 * ```ts
 * import { explorerData, explorerFiles, mobileNetV3 } from 'lightconv';
 *
 * const data = await explorerData(mobileNetV3('small'), 'cat.png', { classes: 5 });
 * const files = await explorerFiles(data); // index.html, style.css, explorer.js, data.js
 * ```
 */
export async function explorerData(model: ExplorerModel, image: RgbImage | string, opts: ExplorerOptions = {}): Promise<ExplorerData> {
  let bytes: Uint8Array;
  let subjectModel: Module | TrainedModel | OnnxModel;
  let title: string;
  if (typeof model === 'string' || isTrained(model)) {
    const { loadTrainedModel } = await import('../../train/trained_model.js');
    const tm = typeof model === 'string' ? await loadTrainedModel(model) : model;
    const { readFile } = await import('node:fs/promises');
    bytes = new Uint8Array(await readFile(tm.file));
    subjectModel = tm;
    title = tm.file.split(/[\\/]/).pop() ?? tm.file;
  } else if (model instanceof Module) {
    const s0 = await resolveSubject(model);
    const pre = await subjectPreprocess(s0);
    const { exportOnnxBytes } = await import('../../io/onnx/export.js');
    bytes = exportOnnxBytes(model, { input: [1, pre.channels, pre.inputSize, pre.inputSize] });
    // The page runs the export; the CAMs and gradients here use the same graph, so every
    // number on the page comes from one model.
    subjectModel = new OnnxModel((await import('../../io/onnx/graph.js')).OnnxGraph.decode(bytes, 'the exported module'));
    title = s0.what;
  } else if ((model as unknown) instanceof OnnxModel) {
    throw new ValueError('explorer: pass the ONNX file\'s path (or loadTrainedModel(file)) rather than a loaded OnnxModel: the page needs the file\'s bytes');
  } else {
    throw new ValueError('explorer: the model must be a Module, a trained model (loadTrainedModel) or the path of an ONNX file');
  }
  const s = await resolveSubject(subjectModel);
  if (!s.preprocess && model instanceof Module) s.preprocess = await subjectPreprocess(await resolveSubject(model));
  const prepared = await prepareInput(s, image, 'explorer');
  const x = prepared.x;
  const pre = prepared.preprocess ?? (await subjectPreprocess(s));
  const y = runModel(s, x, 'explorer');
  const probs = Array.from(probabilities(s, y).subarray(0, y.shape[1]!));
  const k = probs.length;
  // Unnamed classes read as 'class 3' rather than a bare number.
  const classes = s.classes ? [...s.classes] : Array.from({ length: k }, (_, i) => `class ${i}`);
  const order = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!);
  const shown = order.slice(0, Math.max(1, Math.min(k, opts.classes ?? 10)));
  const seen = denormalise(x, pre);
  const camLut = colormapLut(opts.camColormap ?? 'inferno');
  const { encodePng } = await import('../../data/image.js');
  const png = (img: RgbImage) => `data:image/png;base64,${Buffer.from(encodePng(img.rgb, img.width, img.height)).toString('base64')}`;

  const cams: ExplorerCam[] = [];
  let method = opts.method ?? 'gradcam';
  for (const c of shown) {
    const camOf = () => gradCam(subjectModel, x, { target: c, method, ...(opts.layer ? { layer: opts.layer } : {}) });
    let cam;
    try {
      cam = await camOf();
    } catch (e) {
      // No layer to weight (a model without spatial maps, e.g. an MLP): gradient saliency
      // needs none, and the page says which method it shows.
      if (!(e instanceof ValueError) || opts.layer || (method !== 'gradcam' && method !== 'gradcam++')) throw e;
      method = 'saliency';
      cam = await camOf();
    }
    // The CAM of a tensor input is at the input's resolution: the same pixels as `seen`.
    const overlay = blendHeat(seen, cam.map, [0, 1], camLut, 0.5);
    let peak = 0;
    for (const v of cam.map) if (v > peak) peak = v;
    cams.push({ classIndex: c, className: classes[c]!, probability: probs[c]!, method: cam.method, layer: cam.layer, peak, overlay: png(overlay) });
  }
  const graph = (subjectModel instanceof OnnxModel ? subjectModel : (subjectModel as TrainedModel).model).graph;
  const gradients = layerGradients(graph, x, shown);
  return {
    version: 1,
    title: opts.title ?? title,
    model: Buffer.from(bytes).toString('base64'),
    input: { shape: [...x.shape], data: Buffer.from(new Uint8Array(x.f32().slice().buffer)).toString('base64') },
    image: png(seen),
    preprocess: preprocessWords(pre, prepared.region ? { width: prepared.region.imageWidth, height: prepared.region.imageHeight } : undefined),
    classes,
    probabilities: probs,
    predicted: order[0]!,
    cams,
    gradients,
    lut: { maps: Array.from(colormapLut(opts.colormap ?? 'viridis')), cam: Array.from(camLut), mapsName: opts.colormap ?? 'viridis', camName: opts.camColormap ?? 'inferno' },
  };
}

function isTrained(m: unknown): m is TrainedModel {
  return typeof m === 'object' && m !== null && (m as TrainedModel).model instanceof OnnxModel && typeof (m as TrainedModel).file === 'string';
}

/** The model input back in 0…255 RGB (what the model sees after resize and crop). */
function denormalise(x: Tensor, p: Preprocess): RgbImage {
  const [, c, h, w] = x.shape as [number, number, number, number];
  const d = x.f32();
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    for (let k = 0; k < 3; k++) {
      const ch = c === 1 ? 0 : k;
      const v = d[ch * w * h + i]! * p.std[ch]! + p.mean[ch]!;
      rgb[i * 3 + k] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
  }
  return { width: w, height: h, rgb };
}

function preprocessWords(p: Preprocess, original?: { width: number; height: number }): string {
  const f = (v: number[]) => v.map((n) => n.toFixed(3)).join(', ');
  return `${original ? `the ${original.width}×${original.height} image ` : 'the image '}was resized (shorter side ${p.resize}), centre-cropped to ${p.crop}×${p.crop}${p.crop !== p.inputSize ? ` and resized to ${p.inputSize}×${p.inputSize}` : ''}, and each channel normalised as (value − mean) / std with mean ${f(p.mean)} and std ${f(p.std)}`;
}

/**
 * For each class: the cross-entropy of the image labelled with that class, one backward through
 * the graph on the tape (eval mode: BN uses its running statistics), and the L2 norm of each
 * node's parameter gradients — how strongly one training step on this image would push each layer.
 */
function layerGradients(graph: OnnxGraph, x: Tensor, classes: readonly number[]): ExplorerGradients[] {
  const out = graph.outputs[0]!.name;
  // A graph ending in Softmax: the loss needs the logits (the softmax's input) as an output.
  const soft = graph.nodes.find((n) => n.opType === 'Softmax' && n.outputs[0] === out);
  const logitsName = soft ? soft.inputs[0]! : out;
  const extra: ValueInfo = { name: logitsName, kind: 'tensor', dtype: 'float32', elemType: 'FLOAT', shape: undefined };
  const view = soft ? (Object.assign(Object.create(Object.getPrototypeOf(graph) as object) as object, graph, { outputs: [...graph.outputs, extra] }) as OnnxGraph) : graph;
  const t = new OnnxTrainable(view).eval();
  const params = new Map(t.namedParameters());
  // Each parameter belongs to the first node that reads it.
  const owner = new Map<string, { output: string; layer: string }>();
  for (const n of graph.nodes) {
    for (const v of n.inputs) {
      if (v && params.has(v) && !owner.has(v)) owner.set(v, { output: n.outputs[0]!, layer: `${onnxScope(n.name) || n.name || n.outputs[0]} (${n.opType})` });
    }
  }
  const inputName = graph.inputs[0]!.name;
  return classes.map((c) => {
    for (const p of params.values()) p.grad = null;
    const logits = t.run({ [inputName]: x })[logitsName]!;
    const loss = crossEntropy(logits, [c]);
    loss.backward();
    const layers = new Map<string, { output: string; layer: string; sq: number; params: number }>();
    for (const [name, p] of params) {
      const o = owner.get(name);
      if (!o) continue;
      let e = layers.get(o.output);
      if (!e) layers.set(o.output, (e = { ...o, sq: 0, params: 0 }));
      e.params += p.size;
      if (p.grad) for (const g of p.grad.dataSync()) e.sq += g * g;
    }
    // The loss shown: −log p_c in float64 from the logits, so a confident model's 1e-20 does not read as 0.
    const z = Array.from(logits.dataSync().subarray(0, logits.shape[1]!));
    const rest = z.reduce((acc, v, j) => (j === c ? acc : acc + Math.exp(v - z[c]!)), 0);
    return { classIndex: c, loss: Math.log1p(rest), layers: [...layers.values()].map((e) => ({ output: e.output, layer: e.layer, norm: Math.sqrt(e.sq), params: e.params })) };
  });
}

// ---------------------------------------------------------------------------------------------
// The page's files

/**
 * The page's script: the prebuilt bundle beside this module when the package ships one, else
 * bundled from src/explain/explorer/page.ts (../page_script.ts).
 */
export function explorerScript(): Promise<string> {
  return pageScript('explorer', new URL('./explorer_page.js', import.meta.url), new URL('./page.ts', import.meta.url));
}

/**
 * index.html, style.css, explorer.js (the engine and the page) and data.js (this model and image).
 *
 * @example
 * ```ts
 * import { explorerData, explorerFiles, serveExplorer } from 'lightconv';
 *
 * const files = await explorerFiles(await explorerData('model.onnx', 'x.png'));
 * const { url, close } = await serveExplorer(files);
 * ```
 */
export async function explorerFiles(data: ExplorerData): Promise<ExplorerFiles> {
  // `<` escaped so no string in the data can close the script element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return new Map([
    ['index.html', pageHtml(data.title)],
    ['style.css', PAGE_CSS],
    ['explorer.js', await explorerScript()],
    ['data.js', `window.${DATA_GLOBAL} = ${json};\n`],
  ]);
}

/**
 * Writes the explorer page for `model` and `image` into `outDir` (created if needed): a static,
 * self-contained folder that any static file server or a browser from file:// can show.
 *
 * @example
 * ```ts
 * import { writeExplorer } from 'lightconv';
 *
 * const { dir, files } = await writeExplorer('runs/exp1/model.onnx', 'x.png', 'explorer/', { method: 'gradcam++' });
 * ```
 */
export async function writeExplorer(model: ExplorerModel, image: RgbImage | string, outDir: string, opts: ExplorerOptions = {}): Promise<{ dir: string; files: string[] }> {
  const files = await explorerFiles(await explorerData(model, image, opts));
  const { writeFilesAtomic } = await import('../../io/atomic.js');
  const { join, resolve } = await import('node:path');
  // Every file written whole, then all renamed in place: an interrupted write leaves the old page.
  await writeFilesAtomic([...files].map(([name, body]) => ({ path: join(outDir, name), data: body })));
  return { dir: resolve(outDir), files: [...files.keys()] };
}

/**
 * Serves the page's files on a loopback address (port 0: a free one); GET only, no other paths.
 *
 * @example
 * ```ts
 * import { explorerData, explorerFiles, serveExplorer } from 'lightconv';
 *
 * const { url, close } = await serveExplorer(await explorerFiles(await explorerData('model.onnx', 'x.png')), { port: 0 });
 * console.log(`open ${url}`); // later: await close()
 * ```
 */
export function serveExplorer(files: ExplorerFiles, opts: { host?: string; port?: number } = {}): Promise<{
  /** The page's address, e.g. http://127.0.0.1:40123/. */
  url: string;
  /** Stops the server. */
  close: () => Promise<void>;
}> {
  return servePage(files, { ...opts, what: 'explore' });
}
