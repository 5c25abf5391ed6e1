import { noGrad } from '../core/autograd.js';
import { LightconvError, ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import type { RgbImage } from '../data/image.js';
import type { Preprocess } from '../data/transforms.js';
import type { OnnxGraph, ValueInfo } from '../io/onnx/graph.js';
import { OnnxModel } from '../io/onnx/model.js';
import type { OnnxNode } from '../io/onnx/node.js';
import { ConvBNAct, InvertedResidual } from '../layers/blocks.js';
import { Act, BatchNorm2d, Conv2d } from '../layers/layers.js';
import { Module, captureOutputs } from '../layers/module.js';
import { Bottleneck } from '../models/resnet.js';
import { OnnxTrainable } from '../train/onnx_trainable.js';
import type { TrainedModel } from '../train/trained_model.js';
import { onnxScope } from './step.js';

/**
 * Class activation maps and their relatives: where in the image the evidence for a class lies.
 *
 * - Grad-CAM (Selvaraju et al. 2017): a layer's channel maps A_k weighted by the mean gradient
 *   of the class logit over each map, α_k = mean_ij ∂y_c/∂A_k(i,j); cam = ReLU(Σ_k α_k A_k).
 * - Grad-CAM++ (Chattopadhay et al. 2018), in pytorch-grad-cam's closed form (exponential
 *   output): a = G² / (2G² + Σ_ij A_k · G³), w_k = Σ_ij ReLU(G) · a.
 * - Occlusion sensitivity (Zeiler & Fergus 2014): how much the class probability drops when a
 *   patch is replaced by the image's mean, averaged over the patches covering each pixel.
 * - Gradient saliency (Simonyan et al. 2014): max over channels of |∂y_c/∂x|, averaged over noisy
 *   copies of the input (SmoothGrad, Smilkov et al. 2017).
 *
 * One forward pass on the autograd tape gives Grad-CAM: the layer's output is captured by the
 * engine's forward hooks (native modules) or as an extra output of the ONNX graph run through
 * OnnxTrainable, `retainGrad()` keeps its gradient, and one backward from the class logit fills it.
 */

export type CamMethod = 'gradcam' | 'gradcam++' | 'occlusion' | 'saliency';
/** Every `CamMethod`, in the order the CLI lists them. */
export const CAM_METHODS: readonly CamMethod[] = ['gradcam', 'gradcam++', 'occlusion', 'saliency'];

/** A class activation map of one image (`gradCam`), normalised to [0, 1], with its class and score. */
export interface Cam {
  method: CamMethod;
  /** The layer whose maps were weighted (Grad-CAM, Grad-CAM++); null for occlusion and saliency. */
  layer: string | null;
  classIndex: number;
  className: string;
  /** The model's probability for the class on this image (softmax of the logits). */
  score: number;
  /** [H, W] in [0, 1] at the input resolution (bilinear upsampling of the layer's map). */
  map: Float32Array;
  width: number;
  height: number;
  /**
   * The map before normalisation: Grad-CAM / Grad-CAM++ at the layer's resolution (after the
   * ReLU), occlusion as the mean probability drop per pixel (signed), saliency as the mean
   * max-|gradient| per pixel.
   */
  raw?: { map: Float32Array; width: number; height: number };
  /**
   * Where the model's input lies in the original image, in its pixels (the centre crop of the
   * preprocessing); absent when the input was given as a tensor.
   */
  region?: { x: number; y: number; width: number; height: number; imageWidth: number; imageHeight: number };
}

/** Options of `gradCam` / `gradCams`: Grad-CAM on the last spatial conv, for the predicted class, by default. */
export interface CamOptions {
  /** Grad-CAM layer: a module path ('features.12'), or an ONNX node name, output name or module scope. Default: the last conv with maps larger than 1×1. */
  layer?: string;
  /** Class name or index; default the predicted class. */
  target?: string | number;
  method?: CamMethod;
  /** Saliency: average over `samples` copies with N(0, (noise·(max − min of the input))²) added (default 16 and 0.15; samples 1 = the plain gradient). */
  smoothGrad?: { samples: number; noise: number };
  /** Occlusion: patch side and stride in input pixels (default side/8 and half the patch), images per forward pass (default 32). */
  occlusion?: { patch?: number; stride?: number; batch?: number };
  /** How an image becomes the model's input; default the trained model's, else torchvision's for the model's input size. */
  preprocess?: Preprocess;
  /** Class names for a native module (a trained ONNX model brings its own). */
  classes?: readonly string[];
  /** Seed of SmoothGrad's noise. */
  seed?: number;
}

/** A model the explanations accept: a native module, a trained model (`loadTrainedModel`), an OnnxModel, or the path of an ONNX file. */
export type CamModel = Module | TrainedModel | OnnxModel | string;
/** An image the explanations accept: decoded RGB, a file path (Node), or an already preprocessed [1, C, H, W] tensor. */
export type CamImage = RgbImage | string | Tensor;

// ---------------------------------------------------------------------------------------------
// Models

/** A model as the explanations use it: how to run it, its classes and its input. */
export interface Subject {
  what: string;
  module?: Module;
  onnx?: OnnxModel;
  classes?: readonly string[];
  preprocess?: Preprocess;
  /** Input side and channels when known (native info, ONNX declaration, preprocessing). */
  size?: number;
  channels?: number;
  /** Spatial dims an ONNX graph declares as fixed numbers. */
  fixed?: [number, number];
  /** Whether the output is already a probability (the graph ends in Softmax). */
  probabilities: boolean;
}

function isTrained(m: unknown): m is TrainedModel {
  return typeof m === 'object' && m !== null && (m as TrainedModel).model instanceof OnnxModel && Array.isArray((m as TrainedModel).classes);
}

/** Resolves any accepted model (a path goes through loadTrainedModel: classes and preprocessing from its metadata). */
export async function resolveSubject(model: CamModel, opts: { preprocess?: Preprocess; classes?: readonly string[] } = {}): Promise<Subject> {
  if (typeof model === 'string') {
    const { loadTrainedModel } = await import('../train/trained_model.js');
    model = await loadTrainedModel(model);
  }
  let s: Subject;
  if (isTrained(model)) {
    s = onnxSubject(model.model, model.file);
    s.classes = model.classes;
    s.preprocess = model.preprocess;
  } else if (model instanceof OnnxModel) {
    s = onnxSubject(model, model.graph.name ? `model '${model.graph.name}'` : 'ONNX model');
    const meta = Object.fromEntries(model.graph.metadata);
    if (meta['lightconv.classes']) {
      try {
        const c = JSON.parse(meta['lightconv.classes']) as unknown;
        if (Array.isArray(c) && c.every((x) => typeof x === 'string')) s.classes = c;
      } catch {
        /* unnamed classes: indices */
      }
    }
    const { preprocessFromMetadata } = await import('../data/transforms.js');
    const pre = preprocessFromMetadata(meta);
    if (pre) s.preprocess = pre;
  } else if (model instanceof Module) {
    const info = (model as { info?: { arch?: string; input?: readonly number[] } }).info;
    s = { what: info?.arch ?? model.describe(), module: model, probabilities: false };
    if (info?.input) {
      s.size = info.input[2];
      s.channels = info.input[1];
    }
  } else {
    throw new ValueError('explain: the model must be a Module, an OnnxModel, a trained model (loadTrainedModel) or the path of an ONNX file');
  }
  if (opts.classes) s.classes = [...opts.classes];
  if (opts.preprocess) s.preprocess = opts.preprocess;
  if (s.preprocess) {
    s.size = s.preprocess.inputSize;
    s.channels = s.preprocess.channels;
  }
  return s;
}

function onnxSubject(m: OnnxModel, what: string): Subject {
  const shape = m.inputs[0]?.shape;
  if (m.inputs.length !== 1 || !shape || shape.length !== 4) throw new ValueError(`${what}: explanations need a classifier with one image input [N, C, H, W], got ${m.inputs.map((i) => `'${i.name}' ${JSON.stringify(i.shape ?? '?')}`).join(', ')}`);
  const num = (d: unknown) => (typeof d === 'number' ? d : undefined);
  const s: Subject = { what, onnx: m, probabilities: false };
  const [c, h, w] = [num(shape[1]), num(shape[2]), num(shape[3])];
  if (c !== undefined) s.channels = c;
  if (h !== undefined) s.size = h;
  if (h !== undefined && w !== undefined) s.fixed = [h, w];
  const out = m.outputs[0]?.name;
  s.probabilities = m.graph.nodes.some((n) => n.opType === 'Softmax' && n.outputs[0] === out);
  return s;
}

/** Class names of a subject with `k` outputs (indices as names when unknown). */
function classNames(s: Subject, k: number): string[] {
  if (s.classes && s.classes.length !== k) throw new ValueError(`${s.what}: ${s.classes.length} class names given but the model has ${k} outputs`);
  return s.classes ? [...s.classes] : Array.from({ length: k }, (_, i) => String(i));
}

/** The class index for a name or index (a string of digits that is no class name is an index). */
export function resolveTarget(s: Subject, k: number, target: string | number | undefined, fallback: number): { index: number; name: string } {
  const names = classNames(s, k);
  const list = () => `the model's classes: ${names.slice(0, 30).map((n, i) => `${i} '${n}'`).join(', ')}${names.length > 30 ? ` … (${names.length})` : ''}`;
  let index: number;
  if (target === undefined) index = fallback;
  else if (typeof target === 'number') {
    if (!Number.isInteger(target) || target < 0 || target >= k) throw new ValueError(`class index ${target} is out of range (0…${k - 1}); ${list()}`);
    index = target;
  } else {
    index = names.indexOf(target);
    if (index < 0 && /^\d+$/.test(target) && Number(target) < k) index = Number(target);
    // '--class 7' on a two-class model: an index, out of range, rather than an unknown name.
    if (index < 0 && /^\d+$/.test(target)) throw new ValueError(`class index ${target} is out of range (0…${k - 1}); ${list()}`);
    if (index < 0) throw new ValueError(`the model has no class '${target}'; ${list()}`);
  }
  return { index, name: names[index]! };
}

// ---------------------------------------------------------------------------------------------
// Inputs

export interface Prepared {
  /** [1, C, H, W] */
  x: Tensor;
  region?: Cam['region'];
  preprocess?: Preprocess;
}

/** The preprocessing a subject uses for images: its own, else torchvision's ImageNet one at its size. */
export async function subjectPreprocess(s: Subject, override?: Preprocess): Promise<Preprocess> {
  if (override) return override;
  if (s.preprocess) return s.preprocess;
  const { IMAGENET_MEAN, IMAGENET_STD } = await import('../data/image.js');
  const size = s.size ?? 224;
  const ch = s.channels === 1 ? 1 : 3;
  return { inputSize: size, resize: Math.round(size / 0.875), crop: size, channels: ch, mean: ch === 1 ? [0.5] : [...IMAGENET_MEAN], std: ch === 1 ? [0.5] : [...IMAGENET_STD] };
}

export async function loadRgb(image: RgbImage | string): Promise<RgbImage> {
  if (typeof image !== 'string') {
    if (!image || !(image.width >= 1) || !(image.height >= 1) || !(image.rgb instanceof Uint8Array) || image.rgb.length !== image.width * image.height * 3) {
      throw new ShapeError(`explain: an RgbImage needs width, height ≥ 1 and width·height·3 bytes, got ${image?.width}×${image?.height} with ${image?.rgb?.length} bytes`);
    }
    return image;
  }
  const { readImage } = await import('../data/decode.js');
  return readImage(image);
}

/** The model's input for an image, and where it lies in the image. */
export async function prepareInput(s: Subject, image: CamImage, what: string, override?: Preprocess): Promise<Prepared> {
  if (image instanceof Tensor) {
    let x = image;
    if (x.rank === 3) x = x.reshape([1, ...x.shape]);
    if (x.rank !== 4 || x.shape[0] !== 1) throw new ShapeError(`${what}: an input tensor must be one image [C, H, W] or [1, C, H, W], got ${fmtShape(image.shape)}`);
    if (x.dtype !== 'float32') throw new ShapeError(`${what}: an input tensor must be float32, got ${x.dtype}`);
    checkFits(s, x.shape, what);
    return { x: x.detach() };
  }
  const img = await loadRgb(image);
  const p = await subjectPreprocess(s, override);
  const { preprocessImage } = await import('../data/transforms.js');
  const x = new Tensor(preprocessImage(img, p), [1, p.channels, p.inputSize, p.inputSize]);
  checkFits(s, x.shape, what, true);
  return { x, region: cropRegion(img.width, img.height, p), preprocess: p };
}

/**
 * A ShapeError when an input of `shape` cannot go into the model (channels, or an ONNX graph's
 * fixed size); `fromImage`: the input is an image's preprocessing (always square), not a tensor.
 */
export function checkFits(s: Subject, shape: Shape, what: string, fromImage = false): void {
  const [, c, h, w] = shape;
  if (s.channels !== undefined && c !== s.channels) throw new ShapeError(`${what}: the input has ${c} channel${c === 1 ? '' : 's'} ${fmtShape(shape)} but ${s.what} takes ${s.channels}`);
  if (s.fixed && (h !== s.fixed[0] || w !== s.fixed[1])) {
    const hint = fromImage
      ? `images are resized and centre-cropped to a square ${h}×${w}, so this model takes only a tensor [1, ${c}, ${s.fixed[0]}, ${s.fixed[1]}] (API)`
      : 'pass an image (it is resized) or a tensor of that size';
    throw new ShapeError(`${what}: the input ${fmtShape(shape)} cannot be fitted to ${s.what}, whose graph declares ${s.fixed[0]}×${s.fixed[1]} inputs; ${hint}`);
  }
}

/** The centre crop of the preprocessing in the original image's pixels (torchvision's Resize → CenterCrop). */
function cropRegion(W: number, H: number, p: Preprocess): NonNullable<Cam['region']> {
  // Resize: the shorter side becomes p.resize, the longer one truncated (resizeShorter).
  const rw = W <= H ? p.resize : Math.trunc((p.resize * W) / H);
  const rh = W <= H ? Math.trunc((p.resize * H) / W) : p.resize;
  const sx = rw / W;
  const sy = rh / H;
  return { x: (rw - p.crop) / 2 / sx, y: (rh - p.crop) / 2 / sy, width: p.crop / sx, height: p.crop / sy, imageWidth: W, imageHeight: H };
}

// ---------------------------------------------------------------------------------------------
// Running the model

/** Train/eval flags and parameter requiresGrad of a native module, to put back afterwards. */
function nativeForExplaining(m: Module): () => void {
  const modes = m.namedModules().map(([, mm]) => [mm, mm.training] as const);
  const params = m.namedParameters().map(([, t]) => [t, t.requiresGrad] as const);
  m.eval();
  // Only the input (or layer) gradient is wanted: frozen weights make the backward skip theirs.
  for (const [t] of params) t.requiresGrad = false;
  return () => {
    for (const [mm, t] of modes) mm.training = t;
    for (const [t, r] of params) t.requiresGrad = r;
  };
}

/** The model's output for a batch, without a tape; a typed error when the input cannot go through it. */
export function runModel(s: Subject, x: Tensor, what: string): Tensor {
  let y: Tensor;
  try {
    if (s.onnx) y = Object.values(s.onnx.runSync(x))[0]!;
    else {
      const restore = nativeForExplaining(s.module!);
      try {
        y = noGrad(() => s.module!.forward(x));
      } finally {
        restore();
      }
    }
  } catch (e) {
    throw cannotRun(s, x, what, e);
  }
  if (y.rank !== 2 || y.shape[0] !== x.shape[0]) throw new ShapeError(`${what}: ${s.what} outputs ${fmtShape(y.shape)}; explanations need class scores [N, classes]`);
  return y;
}

function cannotRun(s: Subject, x: Tensor, what: string, e: unknown): Error {
  if (e instanceof ShapeError) return new ShapeError(`${what}: the input ${fmtShape(x.shape)} cannot go through ${s.what}: ${(e as Error).message}`);
  return e as Error;
}

/**
 * Softmax of each row (unless the model already outputs probabilities), in float64: a confident
 * model's p = 1 − 1e-9 rounds to 1 in float32, and occlusion's drops would be rounding noise.
 */
export function probabilities(s: Subject, y: Tensor): Float64Array {
  const d = y.f32();
  const [n, k] = y.shape as [number, number];
  if (s.probabilities) return Float64Array.from(d);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let j = 0; j < k; j++) mx = Math.max(mx, d[i * k + j]!);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(d[i * k + j]! - mx);
    for (let j = 0; j < k; j++) out[i * k + j] = Math.exp(d[i * k + j]! - mx) / sum;
  }
  return out;
}

/** Probabilities of class `c` for many inputs, `batch` at a time (occlusion, faithfulness, slides). */
export function classProbabilities(s: Subject, inputs: (i: number) => Float32Array, count: number, shape: Shape, c: number, what: string, batch = 32): Float64Array {
  const out = new Float64Array(count);
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const data = new Float32Array(n * per);
    for (let i = 0; i < n; i++) data.set(inputs(start + i), i * per);
    const y = runModel(s, new Tensor(data, [n, ...shape.slice(1)]), what);
    const p = probabilities(s, y);
    const k = y.shape[1]!;
    for (let i = 0; i < n; i++) out[start + i] = p[i * k + c]!;
  }
  return out;
}

interface TapeResult {
  logits: Tensor;
  act?: Tensor;
}

/**
 * A forward pass on the tape with the input requiring grad (weights frozen for the pass), the
 * layer's output captured; `fn` runs the backward while the weights are still frozen.
 */
function onTape<T>(s: Subject, x: Tensor, layer: string | null, what: string, fn: (r: TapeResult) => T): T {
  x.requireGrad();
  if (s.module) {
    const m = s.module;
    const restore = nativeForExplaining(m);
    try {
      let r: TapeResult;
      try {
        if (layer) {
          const { result, outputs } = captureOutputs(m, () => m.forward(x), [layer]);
          r = { logits: result, act: outputs.get(layer) };
        } else r = { logits: m.forward(x) };
      } catch (e) {
        throw cannotRun(s, x, what, e);
      }
      return fn(r);
    } finally {
      restore();
    }
  }
  const t = trainableFor(s.onnx!.graph, layer);
  let r: TapeResult;
  try {
    const outs = t.run({ [s.onnx!.graph.inputs[0]!.name]: x });
    r = { logits: outs[s.onnx!.graph.outputs[0]!.name]!, ...(layer ? { act: outs[layer] } : {}) };
  } catch (e) {
    throw cannotRun(s, x, what, e);
  }
  return fn(r);
}

/** One OnnxTrainable per graph and layer value: the graph with that value as an extra output, in eval mode, weights frozen. */
const trainables = new WeakMap<OnnxGraph, Map<string, OnnxTrainable>>();

function trainableFor(graph: OnnxGraph, value: string | null): OnnxTrainable {
  let byValue = trainables.get(graph);
  if (!byValue) trainables.set(graph, (byValue = new Map()));
  const key = value ?? '';
  let t = byValue.get(key);
  if (!t) {
    // A view of the graph whose outputs include the layer's value, so the runner hands it back.
    const extra: ValueInfo = { name: key, kind: 'tensor', dtype: 'float32', elemType: 'FLOAT', shape: undefined };
    const view = value && !graph.outputs.some((o) => o.name === value) ? (Object.assign(Object.create(Object.getPrototypeOf(graph) as object) as object, graph, { outputs: [...graph.outputs, extra] }) as OnnxGraph) : graph;
    t = new OnnxTrainable(view).eval();
    for (const p of t.parameters()) p.requiresGrad = false;
    byValue.set(key, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Layers

const isSpatial = (s: Shape) => s.length === 4 && s[2]! * s[3]! > 1;

function layerList(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => `'${n}'`).join(', ');
  return `${shown}${names.length > 20 ? ` … (20 of ${names.length})` : ` (${names.length})`}`;
}

/** The Grad-CAM layer of a native module: its path (checked), or the default for this input. */
function nativeLayer(m: Module, inputShape: Shape, layer: string | undefined, what: string): string {
  const named = m.namedModules().filter(([n]) => n);
  if (layer !== undefined) {
    if (!named.some(([n]) => n === layer)) throw new ValueError(`${what}: ${m.describe()} has no layer '${layer}'; its layers: ${layerList(named.map(([n]) => n))}`);
    return layer;
  }
  const shapes = new Map<Module, Shape>();
  try {
    m.infer(inputShape, (mod, _in, out) => void shapes.set(mod, out));
  } catch (e) {
    if (e instanceof ShapeError) throw new ShapeError(`${what}: the input ${fmtShape(inputShape)} cannot go through ${m.describe()}: ${e.message}`);
    throw e;
  }
  const convs = named.filter(([, mod]) => mod instanceof Conv2d && isSpatial(shapes.get(mod) ?? []));
  const last = convs[convs.length - 1];
  if (!last) throw new ValueError(`${what}: ${m.describe()} has no convolution with spatial output (larger than 1×1) for an input ${fmtShape(inputShape)}; a CAM needs one (use occlusion or saliency, or a larger input)`);
  return blockOf(m, last[0]);
}

/** From a conv, the module whose output is "this conv's result": past its BN and activation, up to the ConvBNAct or residual block it ends. */
function blockOf(root: Module, convPath: string): string {
  let path = convPath;
  const parentOf = (p: string) => (p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '');
  // Siblings after the conv that only normalise or activate it (a flat Sequential: conv, BN, ReLU).
  const parentPath = parentOf(path);
  const siblings = root.get(parentPath).children();
  let i = siblings.findIndex(([n]) => n === path.slice(path.lastIndexOf('.') + 1));
  while (i + 1 < siblings.length && (siblings[i + 1]![1] instanceof BatchNorm2d || siblings[i + 1]![1] instanceof Act)) i++;
  path = parentPath ? `${parentPath}.${siblings[i]![0]}` : siblings[i]![0];
  // Up through the ConvBNAct it ends.
  while (path.includes('.')) {
    const parent = root.get(parentOf(path));
    const kids = parent.children();
    if (!(parent instanceof ConvBNAct) || kids[kids.length - 1]![0] !== path.slice(path.lastIndexOf('.') + 1)) break;
    path = parentOf(path);
  }
  // A residual block whose last conv this is: its output (after the addition) is the block's result.
  for (let p = parentOf(path); p; p = parentOf(p)) {
    const b = root.get(p);
    if (b instanceof InvertedResidual || b instanceof Bottleneck) {
      const convs = b.namedModules().filter(([, mm]) => mm instanceof Conv2d);
      if (`${p}.${convs[convs.length - 1]![0]}` === convPath) path = p;
      break;
    }
  }
  return path;
}

interface OnnxLayer {
  /** The value whose maps are used. */
  value: string;
  /** Display name: a module scope ('features.12') or the node name. */
  name: string;
}

/** Names a graph's layers can be asked by: block scopes first, then node names. */
function onnxLayerNames(graph: OnnxGraph): string[] {
  const scopes = new Set<string>();
  for (const n of graph.nodes) {
    const p = onnxScope(n.name).split('.').filter(Boolean);
    for (let k = 1; k <= Math.min(2, p.length); k++) scopes.add(p.slice(0, k).join('.'));
  }
  return [...scopes, ...graph.nodes.map((n) => n.name)];
}

/** The node whose output is a module scope's output: the last node inside it. */
function lastInScope(graph: OnnxGraph, scope: string): OnnxNode | undefined {
  let last: OnnxNode | undefined;
  for (const n of graph.nodes) {
    const s = onnxScope(n.name);
    if (s === scope || s.startsWith(`${scope}.`)) last = n;
  }
  return last;
}

function onnxLayer(s: Subject, x: Tensor, layer: string | undefined, what: string): OnnxLayer {
  const graph = s.onnx!.graph;
  if (layer !== undefined) {
    const node = graph.nodes.find((n) => n.name === layer);
    if (node) return { value: node.outputs[0]!, name: layer };
    if (graph.nodes.some((n) => n.outputs.includes(layer))) return { value: layer, name: layer };
    const inScope = lastInScope(graph, layer);
    if (inScope) return { value: inScope.outputs[0]!, name: layer };
    throw new ValueError(`${what}: ${s.what} has no layer '${layer}' (a module scope, node name or output name); its layers: ${layerList(onnxLayerNames(graph))}`);
  }
  const shapes = valueShapes(s, x, what);
  const convs = graph.nodes.filter((n) => n.opType === 'Conv' && isSpatial(shapes.get(n.outputs[0]!) ?? []));
  const conv = convs[convs.length - 1];
  if (!conv) throw new ValueError(`${what}: ${s.what} has no Conv node with spatial output (larger than 1×1) for an input ${fmtShape(x.shape)}; a CAM needs one (use occlusion or saliency, or a larger input)`);
  const value = pastActivation(graph, conv.outputs[0]!);
  // Named after the module it ends ('features.12') when the exporter kept module paths.
  const parts = onnxScope(graph.nodes.find((n) => n.outputs.includes(value))!.name).split('.').filter(Boolean);
  for (let k = Math.min(2, parts.length); k <= parts.length; k++) {
    const scope = parts.slice(0, k).join('.');
    if (k >= 2 && lastInScope(graph, scope)?.outputs[0] === value) return { value, name: scope };
  }
  return { value, name: conv.name };
}

/** Follows a conv's output through BN and activation nodes (HardSwish, Relu, Clip, x·sigmoid(x), x·hardsigmoid(x)) to the activated maps. */
function pastActivation(graph: OnnxGraph, start: string): string {
  const ELEMENTWISE = new Set(['BatchNormalization', 'Relu', 'Clip', 'HardSwish', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'PRelu', 'Softplus', 'Mish', 'Gelu']);
  let v = start;
  for (;;) {
    if (graph.outputs.some((o) => o.name === v)) return v;
    const users = graph.nodes.filter((n) => n.inputs.includes(v));
    if (users.length === 1 && ELEMENTWISE.has(users[0]!.opType)) {
      v = users[0]!.outputs[0]!;
      continue;
    }
    if (users.length === 2) {
      const gate = users.find((n) => n.opType === 'Sigmoid' || n.opType === 'HardSigmoid');
      const mul = users.find((n) => n.opType === 'Mul');
      if (gate && mul && mul.inputs.includes(gate.outputs[0]!)) {
        v = mul.outputs[0]!;
        continue;
      }
    }
    return v;
  }
}

/** Every node output's shape for this input (one unoptimised inference pass), cached per graph and input shape. */
const shapeCache = new WeakMap<OnnxGraph, { key: string; shapes: Map<string, Shape> }>();
const plainModels = new WeakMap<OnnxGraph, OnnxModel>();

function valueShapes(s: Subject, x: Tensor, what: string): Map<string, Shape> {
  const graph = s.onnx!.graph;
  const key = x.shape.join('x');
  const hit = shapeCache.get(graph);
  if (hit?.key === key) return hit.shapes;
  let plain = plainModels.get(graph);
  if (!plain) plainModels.set(graph, (plain = new OnnxModel(graph, { optimize: false })));
  const shapes = new Map<string, Shape>();
  try {
    noGrad(() => plain.runSync(x.detach(), { onNode: (n, outs) => n.outputs.forEach((v, i) => v && outs[i] && shapes.set(v, outs[i]!.shape)) }));
  } catch (e) {
    throw cannotRun(s, x, what, e);
  }
  shapeCache.set(graph, { key, shapes });
  return shapes;
}

// ---------------------------------------------------------------------------------------------
// Maps

/**
 * Bilinear resampling of a [h, w] map to [H, W], as torch's interpolate(align_corners=False).
 *
 * @example
 * ```ts
 * import { resampleMap } from 'lightconv';
 *
 * const big = resampleMap(new Float32Array([0, 1, 1, 0]), 2, 2, 224, 224); // 2×2 → 224×224
 * ```
 */
export function resampleMap(src: ArrayLike<number>, w: number, h: number, W: number, H: number): Float32Array {
  const out = new Float32Array(W * H);
  const axis = (outSize: number, inSize: number) => {
    const i0 = new Int32Array(outSize);
    const i1 = new Int32Array(outSize);
    const f = new Float32Array(outSize);
    const scale = inSize / outSize;
    for (let o = 0; o < outSize; o++) {
      const pos = Math.max(0, (o + 0.5) * scale - 0.5);
      const a = Math.min(Math.floor(pos), inSize - 1);
      i0[o] = a;
      i1[o] = Math.min(a + 1, inSize - 1);
      f[o] = pos - a;
    }
    return { i0, i1, f };
  };
  const ax = axis(W, w);
  const ay = axis(H, h);
  for (let y = 0; y < H; y++) {
    const r0 = ay.i0[y]! * w;
    const r1 = ay.i1[y]! * w;
    const fy = ay.f[y]!;
    for (let x = 0; x < W; x++) {
      const a = ax.i0[x]!;
      const b = ax.i1[x]!;
      const fx = ax.f[x]!;
      const top = src[r0 + a]! + (src[r0 + b]! - src[r0 + a]!) * fx;
      const bot = src[r1 + a]! + (src[r1 + b]! - src[r1 + a]!) * fx;
      out[y * W + x] = top + (bot - top) * fy;
    }
  }
  return out;
}

/** (m − min) / (max − min), all zeros for a constant map (pytorch-grad-cam's scale_cam_image). */
function minMax(m: Float32Array): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of m) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const out = new Float32Array(m.length);
  if (!(hi > lo)) return out;
  for (let i = 0; i < m.length; i++) out[i] = (m[i]! - lo) / (hi - lo);
  return out;
}

/** m / max, for maps that are ≥ 0 with 0 meaning "no effect" (occlusion, saliency). */
function byMax(m: Float32Array): Float32Array {
  let hi = 0;
  for (const v of m) if (v > hi) hi = v;
  const out = new Float32Array(m.length);
  if (hi > 0) for (let i = 0; i < m.length; i++) out[i] = Math.max(0, m[i]!) / hi;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The methods

/**
 * A class activation map of one image: Grad-CAM (default), Grad-CAM++, occlusion sensitivity or
 * gradient saliency with SmoothGrad, for the predicted class or `target`, on a native module, an
 * OnnxModel, a model written by `lightconv train` or the path of an ONNX file.
 *
 * @example
 * ```ts
 * import { gradCam, saveOverlay } from 'lightconv';
 *
 * const cam = await gradCam('runs/exp1/model.onnx', 'lesion.jpg', { method: 'gradcam++' });
 * console.log(cam.className, cam.score, cam.layer);
 * await saveOverlay(cam, 'lesion.jpg', 'lesion-cam.png');
 * ```
 */
export async function gradCam(model: CamModel, image: CamImage, opts: CamOptions = {}): Promise<Cam> {
  const method = camMethod(opts);
  const what = method === 'gradcam' ? 'gradCam' : `gradCam(${method})`;
  const s = await resolveSubject(model, opts);
  return (await camsOf(s, [await prepareInput(s, image, what, opts.preprocess)], opts, method, what))[0]!;
}

/**
 * `gradCam` for many images: Grad-CAM and Grad-CAM++ run `batch` images (default 16) through one
 * forward and one backward pass (in eval mode each image's class score depends on that image
 * alone, so one backward gives every image's gradients); occlusion and saliency go image by image.
 * `targets` gives each image its class (default `opts.target`, else the predicted class).
 *
 * @example
 * ```ts
 * import { efficientNet, gradCams } from 'lightconv';
 *
 * const net = efficientNet('b0', { numClasses: 2 });
 * const cams = await gradCams(net, ['a.png', 'b.png'], { classes: ['benign', 'malignant'], targets: ['malignant', 'malignant'] });
 * ```
 */
export async function gradCams(model: CamModel, images: readonly CamImage[], opts: CamOptions & { batch?: number; targets?: readonly (string | number | undefined)[] } = {}): Promise<Cam[]> {
  const method = camMethod(opts);
  const what = method === 'gradcam' ? 'gradCams' : `gradCams(${method})`;
  const batch = opts.batch ?? 16;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new ValueError(`${what}: batch must be a positive integer, got ${batch}`);
  if (opts.targets && opts.targets.length !== images.length) throw new ValueError(`${what}: ${opts.targets.length} targets for ${images.length} images`);
  const s = await resolveSubject(model, opts);
  const out: Cam[] = [];
  for (let i = 0; i < images.length; i += batch) {
    const prepared = await Promise.all(images.slice(i, i + batch).map((img) => prepareInput(s, img, what, opts.preprocess)));
    out.push(...(await camsOf(s, prepared, opts, method, what, opts.targets?.slice(i, i + batch))));
  }
  return out;
}

function camMethod(opts: CamOptions): CamMethod {
  const method = opts.method ?? 'gradcam';
  if (!CAM_METHODS.includes(method)) throw new ValueError(`gradCam: unknown method '${String(method)}'; the methods: ${CAM_METHODS.join(', ')}`);
  return method;
}

/** The cams of prepared inputs (all of one shape): the layer methods as one batch, the others one by one. */
async function camsOf(s: Subject, prepared: readonly Prepared[], opts: CamOptions, method: CamMethod, what: string, targets?: readonly (string | number | undefined)[]): Promise<Cam[]> {
  const [, , H, W] = prepared[0]!.x.shape as [number, number, number, number];
  const base = (p: Prepared) => ({ method, ...(p.region ? { region: p.region } : {}), width: W, height: H });
  if (method === 'gradcam' || method === 'gradcam++') {
    const shape = prepared[0]!.x.shape;
    for (const p of prepared) {
      if (fmtShape(p.x.shape) !== fmtShape(shape)) throw new ShapeError(`${what}: images of one batch must give inputs of one shape, got ${fmtShape(shape)} and ${fmtShape(p.x.shape)}`);
    }
    const data = new Float32Array(prepared.length * sizeOf(shape));
    prepared.forEach((p, i) => data.set(p.x.f32(), i * sizeOf(shape)));
    const x = new Tensor(data, [prepared.length, ...shape.slice(1)]);
    const rs = layerCams(s, x, opts, method === 'gradcam++', what, targets);
    return rs.map((r, i) => ({ ...base(prepared[i]!), layer: r.layer, classIndex: r.index, className: r.name, score: r.score, map: resampleMap(minMax(r.raw), r.w, r.h, W, H), raw: { map: r.raw, width: r.w, height: r.h } }));
  }
  return prepared.map((p, i) => {
    const o = targets?.[i] !== undefined ? { ...opts, target: targets[i] } : opts;
    const r = method === 'occlusion' ? occlusion(s, p.x, o, what) : saliency(s, p.x, o, what);
    return { ...base(p), layer: null, classIndex: r.index, className: r.name, score: r.score, map: byMax(r.raw), raw: { map: r.raw, width: W, height: H } };
  });
}

interface MethodResult {
  index: number;
  name: string;
  score: number;
  raw: Float32Array;
}

/** Grad-CAM / Grad-CAM++ of every image of a batch x [N, C, H, W]: one forward, one backward. */
function layerCams(s: Subject, x: Tensor, opts: CamOptions, plusPlus: boolean, what: string, targets?: readonly (string | number | undefined)[]): (MethodResult & { layer: string; w: number; h: number })[] {
  let layer: string;
  let value: string;
  if (s.module) layer = value = nativeLayer(s.module, x.shape, opts.layer, what);
  else ({ name: layer, value } = onnxLayer(s, x, opts.layer, what));
  return onTape(s, x, value, what, ({ logits, act }) => {
    if (!act) throw new LightconvError(`${what}: layer '${layer}' did not run in the forward pass`);
    if (act.rank !== 4) throw new ValueError(`${what}: layer '${layer}' outputs ${fmtShape(act.shape)}, not channel maps [N, C, H, W]; pick a layer before the global pool`);
    if (!isSpatial(act.shape)) throw new ValueError(`${what}: layer '${layer}' has ${act.shape[2]}×${act.shape[3]} maps ${fmtShape(act.shape)} for this input; a CAM needs maps larger than 1×1 (an earlier layer, or a larger input)`);
    if (logits.rank !== 2) throw new ShapeError(`${what}: ${s.what} outputs ${fmtShape(logits.shape)}; explanations need class scores [N, classes]`);
    const [N, k] = logits.shape as [number, number];
    const ld = logits.f32();
    const probs = probabilities(s, logits.detach());
    const picked = Array.from({ length: N }, (_, n) => {
      let argmax = 0;
      for (let j = 1; j < k; j++) if (ld[n * k + j]! > ld[n * k + argmax]!) argmax = j;
      return resolveTarget(s, k, targets?.[n] ?? opts.target, argmax);
    });
    if (!act.requiresGrad) throw new ValueError(`${what}: layer '${layer}' does not depend on the input`);
    act.retainGrad();
    // The sum of each image's class score: its gradient w.r.t. image n's maps is that image's alone.
    const seed = Tensor.zeros(logits.shape);
    picked.forEach((p, n) => (seed.f32()[n * k + p.index] = 1));
    logits.backward(seed);
    if (!act.grad) throw new LightconvError(`${what}: no gradient reached layer '${layer}'`);
    const [, C, h, w] = act.shape as [number, number, number, number];
    const hw = h * w;
    const A = act.f32();
    const G = act.grad.f32();
    return picked.map(({ index, name }, n) => {
      const at = n * C * hw;
      const weights = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        const off = at + c * hw;
        if (!plusPlus) {
          let sum = 0;
          for (let i = 0; i < hw; i++) sum += G[off + i]!;
          weights[c] = sum / hw;
          continue;
        }
        let sumA = 0;
        for (let i = 0; i < hw; i++) sumA += A[off + i]!;
        let wsum = 0;
        for (let i = 0; i < hw; i++) {
          const g = G[off + i]!;
          if (g === 0) continue;
          const g2 = g * g;
          const aij = g2 / (2 * g2 + sumA * g2 * g + 1e-6);
          wsum += Math.max(g, 0) * aij;
        }
        weights[c] = wsum;
      }
      const raw = new Float32Array(hw);
      for (let i = 0; i < hw; i++) {
        let v = 0;
        for (let c = 0; c < C; c++) v += weights[c]! * A[at + c * hw + i]!;
        raw[i] = Math.max(0, v);
      }
      return { layer, index, name, score: probs[n * k + index]!, raw, w, h };
    });
  });
}

function occlusion(s: Subject, x: Tensor, opts: CamOptions, what: string): MethodResult {
  const [, C, H, W] = x.shape as [number, number, number, number];
  const o = opts.occlusion ?? {};
  const patch = o.patch ?? Math.max(1, Math.round(Math.min(H, W) / 8));
  const stride = o.stride ?? Math.max(1, Math.floor(patch / 2));
  const batch = o.batch ?? 32;
  for (const [k, v] of [['patch', patch], ['stride', stride], ['batch', batch]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ValueError(`${what}: occlusion ${k} must be a positive integer, got ${v}`);
  }
  if (patch > Math.min(H, W)) throw new ValueError(`${what}: occlusion patch ${patch} is larger than the input ${W}×${H}`);
  const p0 = probabilities(s, runModel(s, x, what));
  const argmax = p0.reduce((b, v, i) => (v > p0[b]! ? i : b), 0);
  const { index, name } = resolveTarget(s, p0.length, opts.target, argmax);
  // Patch corners: every stride, plus one flush with the far edge so every pixel is covered.
  const starts = (size: number) => {
    const out: number[] = [];
    for (let p = 0; p + patch <= size; p += stride) out.push(p);
    if (out[out.length - 1]! + patch < size) out.push(size - patch);
    return out;
  };
  const ys = starts(H);
  const xs = starts(W);
  const d = x.f32();
  const mean = Array.from({ length: C }, (_, c) => {
    let sum = 0;
    for (let i = 0; i < H * W; i++) sum += d[c * H * W + i]!;
    return sum / (H * W);
  });
  const at = (i: number) => [ys[Math.floor(i / xs.length)]!, xs[i % xs.length]!] as const;
  const probs = classProbabilities(s, (i) => {
    const [py, px] = at(i);
    const copy = Float32Array.from(d);
    for (let c = 0; c < C; c++) for (let y = py; y < py + patch; y++) copy.fill(mean[c]!, c * H * W + y * W + px, c * H * W + y * W + px + patch);
    return copy;
  }, ys.length * xs.length, x.shape, index, what, batch);
  const sum = new Float64Array(H * W);
  const count = new Uint32Array(H * W);
  for (let i = 0; i < probs.length; i++) {
    const [py, px] = at(i);
    const drop = p0[index]! - probs[i]!;
    for (let y = py; y < py + patch; y++) {
      for (let xx = px; xx < px + patch; xx++) {
        sum[y * W + xx] += drop;
        count[y * W + xx]++;
      }
    }
  }
  const raw = new Float32Array(H * W);
  for (let i = 0; i < raw.length; i++) raw[i] = sum[i]! / count[i]!;
  return { index, name, score: p0[index]!, raw };
}

function saliency(s: Subject, x: Tensor, opts: CamOptions, what: string): MethodResult {
  const [, C, H, W] = x.shape as [number, number, number, number];
  const sg = opts.smoothGrad ?? { samples: 16, noise: 0.15 };
  if (!Number.isSafeInteger(sg.samples) || sg.samples < 1) throw new ValueError(`${what}: smoothGrad.samples must be a positive integer, got ${sg.samples}`);
  if (!(sg.noise >= 0) || !Number.isFinite(sg.noise)) throw new ValueError(`${what}: smoothGrad.noise must be ≥ 0, got ${sg.noise}`);
  const p0 = probabilities(s, runModel(s, x, what));
  const argmax = p0.reduce((b, v, i) => (v > p0[b]! ? i : b), 0);
  const { index, name } = resolveTarget(s, p0.length, opts.target, argmax);
  const d = x.f32();
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of d) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const sigma = sg.samples === 1 ? 0 : sg.noise * (hi - lo);
  const rng = new Rng(opts.seed ?? 0);
  const plane = H * W;
  const acc = new Float64Array(plane);
  const BATCH = 16;
  for (let start = 0; start < sg.samples; start += BATCH) {
    const n = Math.min(BATCH, sg.samples - start);
    const data = new Float32Array(n * d.length);
    for (let i = 0; i < n; i++) for (let j = 0; j < d.length; j++) data[i * d.length + j] = d[j]! + (sigma > 0 ? rng.normal(0, sigma) : 0);
    const xb = new Tensor(data, [n, C, H, W]);
    onTape(s, xb, null, what, ({ logits }) => {
      // The samples are independent (eval mode), so one backward of the summed logits gives each its own gradient.
      const k = logits.shape[1]!;
      const seed = Tensor.zeros(logits.shape);
      for (let i = 0; i < n; i++) seed.f32()[i * k + index] = 1;
      logits.backward(seed);
    });
    const g = xb.grad!.f32();
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < plane; p++) {
        let m = 0;
        for (let c = 0; c < C; c++) m = Math.max(m, Math.abs(g[i * d.length + c * plane + p]!));
        acc[p] += m;
      }
    }
  }
  const raw = new Float32Array(plane);
  for (let p = 0; p < plane; p++) raw[p] = acc[p]! / sg.samples;
  return { index, name, score: p0[index]!, raw };
}

// ---------------------------------------------------------------------------------------------
// Faithfulness

/** One curve of `camFaithfulness`: the class probability as pixels are removed or inserted. */
export interface FaithfulnessCurve {
  /** Fraction of pixels removed (deletion) or inserted (insertion), 0…1. */
  fractions: number[];
  /** The class probability at each fraction. */
  probs: number[];
  /** Area under the curve (trapezoid rule over the fractions). */
  auc: number;
}

/** What `camFaithfulness` returns: the deletion and insertion curves of a map. */
export interface Faithfulness {
  classIndex: number;
  className: string;
  /** Pixels set to the image's channel means, most important first: a faithful map makes the probability fall fast (low AUC). */
  deletion: FaithfulnessCurve;
  /** Pixels restored onto the mean image, most important first: a faithful map makes it rise fast (high AUC). */
  insertion: FaithfulnessCurve;
}

/**
 * Deletion and insertion curves of a map (Petsiuk et al. 2018, RISE): pixels are removed from
 * (set to the channel mean) or inserted into (from a mean image) the input in the map's order,
 * most important first, and the class probability is recorded at `steps` + 1 points. Ties in the
 * map are broken in a seeded random order, so a constant map behaves as a random one.
 *
 * @example
 * ```ts
 * import { camFaithfulness, gradCam } from 'lightconv';
 *
 * const cam = await gradCam('model.onnx', 'x.png');
 * const { deletion, insertion } = await camFaithfulness('model.onnx', 'x.png', cam, { steps: 20 });
 * console.log(deletion.auc, insertion.auc); // low deletion AUC, high insertion AUC: a faithful map
 * ```
 */
export async function camFaithfulness(
  model: CamModel,
  image: CamImage,
  cam: Pick<Cam, 'map' | 'width' | 'height'> & { classIndex?: number },
  opts: { steps?: number; target?: string | number; batch?: number; preprocess?: Preprocess; classes?: readonly string[]; seed?: number } = {},
): Promise<Faithfulness> {
  const what = 'camFaithfulness';
  const steps = opts.steps ?? 20;
  if (!Number.isSafeInteger(steps) || steps < 1) throw new ValueError(`${what}: steps must be a positive integer, got ${steps}`);
  const s = await resolveSubject(model, opts);
  const { x } = await prepareInput(s, image, what, opts.preprocess);
  const [, C, H, W] = x.shape as [number, number, number, number];
  if (cam.map.length !== cam.width * cam.height) throw new ShapeError(`${what}: the map has ${cam.map.length} values for ${cam.width}×${cam.height}`);
  const map = cam.width === W && cam.height === H ? cam.map : resampleMap(cam.map, cam.width, cam.height, W, H);
  const p0 = probabilities(s, runModel(s, x, what));
  const argmax = p0.reduce((b, v, i) => (v > p0[b]! ? i : b), 0);
  const { index, name } = resolveTarget(s, p0.length, opts.target ?? cam.classIndex, argmax);
  const plane = H * W;
  const tiebreak = new Rng(opts.seed ?? 0).shuffle(Array.from({ length: plane }, (_, i) => i));
  const rank = new Float64Array(plane);
  tiebreak.forEach((p, r) => (rank[p] = r));
  const order = Array.from({ length: plane }, (_, i) => i).sort((a, b) => map[b]! - map[a]! || rank[a]! - rank[b]!);
  const d = x.f32();
  const mean = Array.from({ length: C }, (_, c) => {
    let sum = 0;
    for (let i = 0; i < plane; i++) sum += d[c * plane + i]!;
    return sum / plane;
  });
  const fractions = Array.from({ length: steps + 1 }, (_, k) => k / steps);
  const counts = fractions.map((f) => Math.round(f * plane));
  const make = (deleting: boolean) => (k: number) => {
    const out = new Float32Array(d.length);
    if (deleting) out.set(d);
    else for (let c = 0; c < C; c++) out.fill(mean[c]!, c * plane, (c + 1) * plane);
    for (let r = 0; r < counts[k]!; r++) {
      const p = order[r]!;
      for (let c = 0; c < C; c++) out[c * plane + p] = deleting ? mean[c]! : d[c * plane + p]!;
    }
    return out;
  };
  const curve = (deleting: boolean): FaithfulnessCurve => {
    const probs = Array.from(classProbabilities(s, make(deleting), steps + 1, x.shape, index, what, opts.batch ?? 32));
    let auc = 0;
    for (let k = 1; k <= steps; k++) auc += ((probs[k - 1]! + probs[k]!) / 2) * (fractions[k]! - fractions[k - 1]!);
    return { fractions, probs, auc };
  };
  return { classIndex: index, className: name, deletion: curve(true), insertion: curve(false) };
}
