import { interpolateViridis } from 'd3-scale-chromatic';
import { noGrad } from '../core/autograd.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { fmtShape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import type { RgbImage } from '../data/image.js';
import type { Preprocess } from '../data/transforms.js';
import { OnnxModel } from '../io/onnx/model.js';
import type { OnnxNode } from '../io/onnx/node.js';
import { type Module, captureOutputs } from '../layers/module.js';
import type { TrainedModel } from '../train/trained_model.js';
import { fmtNum, fmtRange } from './arithmetic.js';
import { base64, esc } from './overlay.js';
import { onnxScope } from './step.js';

/** One layer's channel maps drawn as a labelled grid. */
export interface ActivationMap {
  /** The name asked for (or the default one): 'features.4', an ONNX node name or scope. */
  layer: string;
  /** What ran: the module path, or the ONNX node whose output is drawn. */
  source: string;
  /** The layer's output shape, [N, C, H, W]. */
  shape: number[];
  channels: number;
  /** Channels drawn (the first `maxChannels`). */
  shown: number;
  /** The smallest and largest value of the first image's maps. */
  range: [number, number];
  /** Channels whose map is one constant value (drawn grey), e.g. switched off by a ReLU. */
  constant: number[];
  png: Uint8Array;
  width: number;
  height: number;
  /** Where each channel's tile is in the PNG, in its pixels (for pointing at a channel). */
  tiles: { channel: number; x: number; y: number; width: number; height: number }[];
}

/** Options of `activationMaps` / `saveActivationMaps`. */
export interface ActivationMapOptions {
  /** Layers to draw: module paths ('features.4'), ONNX node or output names, or ONNX scopes. Default: every spatial block. */
  layers?: readonly string[];
  /** Channels per grid, the first ones (default 64). */
  maxChannels?: number;
  /** How to turn an image into the model's input; default the trained model's, or torchvision's for the model's input size. */
  preprocess?: Preprocess;
  /** Side of a tile in pixels before the final 2× rendering (maps are upscaled nearest-neighbour to about this). */
  tile?: number;
}

type AnyModel = Module | OnnxModel | TrainedModel | string;
type AnyImage = RgbImage | string | Tensor;

/**
 * Per layer, a grid of its channel maps for one image: each channel normalised to its own
 * min–max (viridis: dark = the channel's lowest value, yellow = its highest), labelled with its
 * index and range, small maps enlarged nearest-neighbour so every pixel stays a visible square.
 *
 * @example
 * ```ts
 * import { activationMaps, efficientNet } from 'lightconv';
 *
 * const maps = await activationMaps(efficientNet('b0'), 'cat.png', { layers: ['features.2', 'features.4'], maxChannels: 16 });
 * for (const m of maps) console.log(m.layer, m.shape, m.constant.length);
 * ```
 */
export async function activationMaps(model: AnyModel, image: AnyImage, opts: ActivationMapOptions = {}): Promise<ActivationMap[]> {
  const m = await resolveModel(model);
  const { x, preprocess } = await toInput(m, image, opts.preprocess);
  const declared = m.onnx?.inputs[0]?.shape;
  const [fh, fw] = declared && declared.length === 4 ? [declared[2], declared[3]] : [];
  if (typeof fh === 'number' && typeof fw === 'number' && x.rank === 4 && (x.shape[2] !== fh || x.shape[3] !== fw)) {
    const hint = image instanceof Tensor ? `pass a tensor [N, C, ${fh}, ${fw}]` : `images are resized and centre-cropped to a square, so this model takes only a tensor [1, ${x.shape[1]}, ${fh}, ${fw}] (API)`;
    throw new ShapeError(`activationMaps: the input ${fmtShape(x.shape)} cannot be fitted to the model, whose graph declares ${fh}×${fw} inputs; ${hint}`);
  }
  const outputs = m.onnx ? await onnxOutputs(m.onnx, x, opts.layers) : nativeOutputs(m.module!, x, opts.layers);
  // Asked for nothing in particular and found nothing: an error, not an empty folder.
  if (outputs.length === 0) throw new ValueError(`activationMaps: the model has no layer with channel maps larger than 1×1 for an input ${fmtShape(x.shape)}, so there is nothing to draw (a convolutional model, or a larger input)`);
  const thumb = inputPicture(x, preprocess);
  const maps: ActivationMap[] = [];
  for (const o of outputs) maps.push(await renderGrid(o.layer, o.source, o.tensor, opts, thumb));
  return maps;
}

/**
 * Writes one PNG per layer and an index.md (with the pictures, shapes and ranges) into `dir`;
 * returns the files written.
 *
 * @example
 * ```ts
 * import { saveActivationMaps } from 'lightconv';
 *
 * const { files } = await saveActivationMaps('runs/exp1/model.onnx', 'x.png', 'maps/');
 * ```
 */
export async function saveActivationMaps(model: AnyModel, image: AnyImage, dir: string, opts: ActivationMapOptions = {}): Promise<{ maps: ActivationMap[]; files: string[] }> {
  const maps = await activationMaps(model, image, opts);
  const path = await import('node:path');
  const { writeFilesAtomic } = await import('../io/atomic.js');
  const files: string[] = [];
  const out: { path: string; data: string | Uint8Array }[] = [];
  const lines = [
    '# Activation maps',
    '',
    `Model: ${typeof model === 'string' ? `\`${model}\`` : 'in memory'}; image: ${typeof image === 'string' ? `\`${image}\`` : image instanceof Tensor ? `a tensor ${fmtShape(image.shape)}` : `${image.width}×${image.height}`}.`,
    '',
    'Each tile is one channel of the layer\'s output for this image, scaled to that channel\'s own lowest (dark purple) and highest (yellow) value — so tiles show *where* a channel responds, not how strongly compared with other channels; the numbers above a tile are its range. Grey tiles are constant (often a channel a ReLU switched off).',
    '',
  ];
  const width = String(maps.length).length;
  for (const [i, mp] of maps.entries()) {
    const file = `${String(i + 1).padStart(width, '0')}_${safeName(mp.layer)}.png`;
    out.push({ path: path.join(dir, file), data: mp.png });
    files.push(path.join(dir, file));
    lines.push(`## ${mp.layer}`, '');
    lines.push(`${mp.source !== mp.layer ? `Output of \`${mp.source}\`: ` : ''}${fmtShape(mp.shape)}, ${mp.channels} channels of ${mp.shape[2]}×${mp.shape[3]}${mp.shown < mp.channels ? ` (the first ${mp.shown} shown)` : ''}; values ${fmtRange(mp.range[0], mp.range[1])}${mp.constant.length ? `; ${mp.constant.length} constant channel${mp.constant.length === 1 ? '' : 's'}` : ''}.`, '');
    lines.push(`![${mp.layer}](${file})`, '');
  }
  const index = path.join(dir, 'index.md');
  out.push({ path: index, data: lines.join('\n') });
  files.push(index);
  // One atomic write (src/io/atomic.ts): every file complete and synced, or none replaced.
  await writeFilesAtomic(out);
  return { maps, files };
}

// ---------------------------------------------------------------------------------------------
// Models and inputs

interface Resolved {
  module?: Module;
  onnx?: OnnxModel;
  preprocess?: Preprocess;
  /** Input side the model expects, when known. */
  size?: number;
  channels?: number;
}

function isTrained(m: unknown): m is TrainedModel {
  return typeof m === 'object' && m !== null && (m as TrainedModel).model instanceof OnnxModel && typeof (m as TrainedModel).preprocess === 'object';
}

async function resolveModel(model: AnyModel): Promise<Resolved> {
  if (typeof model === 'string') {
    const { loadTrainedModel } = await import('../train/trained_model.js');
    model = await loadTrainedModel(model);
  }
  if (isTrained(model)) return { onnx: model.model, preprocess: model.preprocess, size: model.preprocess.inputSize, channels: model.preprocess.channels };
  if (model instanceof OnnxModel) {
    const s = model.inputs[0]?.shape;
    return { onnx: model, ...(typeof s?.[2] === 'number' ? { size: s[2] } : {}), ...(typeof s?.[1] === 'number' ? { channels: s[1] } : {}) };
  }
  const info = (model as { info?: { input?: readonly number[] } }).info;
  return { module: model, ...(info?.input ? { size: info.input[2], channels: info.input[1] } : {}) };
}

async function toInput(m: Resolved, image: AnyImage, pre?: Preprocess): Promise<{ x: Tensor; preprocess?: Preprocess }> {
  if (image instanceof Tensor) {
    const given = pre ?? m.preprocess;
    if (image.rank === 3) return { x: image.reshape([1, ...image.shape]), ...(given ? { preprocess: given } : {}) };
    if (image.rank === 4) return { x: image, ...(given ? { preprocess: given } : {}) };
    throw new ValueError(`activationMaps: an input tensor must be [C, H, W] or [N, C, H, W], got ${fmtShape(image.shape)}`);
  }
  const [{ preprocessImage }, { IMAGENET_MEAN, IMAGENET_STD }] = await Promise.all([import('../data/transforms.js'), import('../data/image.js')]);
  let img = image;
  if (typeof img === 'string') {
    const { readImage } = await import('../data/decode.js');
    img = await readImage(img);
  }
  const size = m.size ?? 224;
  const channels = m.channels === 1 ? 1 : 3;
  const p: Preprocess = pre ?? m.preprocess ?? { inputSize: size, resize: Math.round(size / 0.875), crop: size, channels, mean: channels === 1 ? [0.5] : [...IMAGENET_MEAN], std: channels === 1 ? [0.5] : [...IMAGENET_STD] };
  return { x: new Tensor(preprocessImage(img, p), [1, p.channels, p.inputSize, p.inputSize]), preprocess: p };
}

interface Picture {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** The model's input as the model saw it (normalisation undone when known, else stretched per channel), for the corner of each grid. */
function inputPicture(x: Tensor, p?: Preprocess): Picture | undefined {
  if (x.rank !== 4 || (x.shape[1] !== 1 && x.shape[1] !== 3)) return undefined;
  const [, C, H, W] = x.shape as [number, number, number, number];
  const d = x.dataSync();
  const rgb = new Uint8Array(H * W * 3);
  for (let c = 0; c < 3; c++) {
    const src = Math.min(c, C - 1);
    const off = src * H * W;
    let lo = 0;
    let span = 1;
    let mean = 0;
    let std = 1;
    if (p && p.mean.length === C) {
      mean = p.mean[src]!;
      std = p.std[src]!;
    } else {
      let mn = Infinity;
      let mx = -Infinity;
      for (let i = 0; i < H * W; i++) {
        mn = Math.min(mn, d[off + i]!);
        mx = Math.max(mx, d[off + i]!);
      }
      lo = mn;
      span = mx > mn ? mx - mn : 1;
    }
    for (let i = 0; i < H * W; i++) {
      const v = p && p.mean.length === C ? d[off + i]! * std + mean : (d[off + i]! - lo) / span;
      rgb[i * 3 + c] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
  }
  return { rgb, width: W, height: H };
}

// ---------------------------------------------------------------------------------------------
// Layer outputs

interface LayerOutput {
  layer: string;
  source: string;
  tensor: Tensor;
}

const isSpatial = (t: Tensor) => t.rank === 4 && t.shape[2]! * t.shape[3]! > 1;

function unknownLayer(name: string, valid: readonly string[], what: string): ValueError {
  const shown = valid.slice(0, 20).map((n) => `'${n}'`).join(', ');
  return new ValueError(`activationMaps: the model has no layer '${name}'; valid ${what}: ${shown}${valid.length > 20 ? ` … (first 20 of ${valid.length})` : ` (${valid.length})`}`);
}

function notMaps(name: string, t: Tensor): ValueError {
  return new ValueError(`activationMaps: layer '${name}' outputs ${fmtShape(t.shape)}, not channel maps [N, C, H, W]; pick a layer before the global pool`);
}

function nativeOutputs(model: Module, x: Tensor, layers?: readonly string[]): LayerOutput[] {
  const valid = model.namedModules().map(([n]) => n).filter(Boolean);
  const known = new Set(valid);
  let names: string[];
  if (layers && layers.length) {
    for (const n of layers) if (!known.has(n)) throw unknownLayer(n, valid, 'module paths');
    names = [...layers];
  } else {
    // The blocks of `features` (torchvision's layout), else the top-level children.
    const features = model.children().find(([n]) => n === 'features');
    names = features ? features[1].children().map(([n]) => `features.${n}`) : model.children().map(([n]) => n);
  }
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  let outputs: Map<string, Tensor>;
  try {
    model.eval();
    outputs = captureOutputs(model, () => noGrad(() => model.forward(x)), names).outputs;
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
  const out: LayerOutput[] = [];
  for (const n of names) {
    const t = outputs.get(n);
    if (!t) continue;
    if (layers && layers.length) {
      if (t.rank !== 4) throw notMaps(n, t);
    } else if (!isSpatial(t)) continue;
    out.push({ layer: n, source: n, tensor: t });
  }
  return out;
}

/**
 * The block each scope belongs to: 'features.4.block.2.fc1' and 'features.4' → 'features.4' (a
 * numbered child with layers inside is a block); 'stem.0' → 'stem' when 'stem.0' has none.
 */
function blockKeys(scopes: readonly string[]): (s: string) => string {
  const blocks = new Set<string>();
  // Numbered children per top-level module: a long flat Sequential (conv, BN, ReLU, pool, … as
  // 'features.0' … 'features.25') is drawn child by child, a short one ('stem.0' … 'stem.2') whole.
  const children = new Map<string, Set<string>>();
  for (const s of scopes) {
    const p = s.split('.');
    if (p.length < 2 || !/^\d+$/.test(p[1]!)) continue;
    if (p.length >= 3) blocks.add(`${p[0]}.${p[1]}`); // torch's 'features.4.block.0': block features.4
    else children.set(p[0]!, (children.get(p[0]!) ?? new Set()).add(p[1]!));
  }
  for (const s of scopes) {
    const p = s.split('.');
    if (p.length === 2 && (children.get(p[0]!)?.size ?? 0) > 4) blocks.add(s);
  }
  return (s) => {
    const p = s.split('.');
    return p.length >= 2 && blocks.has(`${p[0]}.${p[1]}`) ? `${p[0]}.${p[1]}` : p[0]!;
  };
}

async function onnxOutputs(model: OnnxModel, x: Tensor, layers?: readonly string[]): Promise<LayerOutput[]> {
  const nodes = model.plan;
  const scopes = nodes.map((n) => onnxScope(n.name));
  // A request names a node, one of its outputs, or a scope (the last node inside it: the block's output).
  const pick = (name: string): OnnxNode | undefined => {
    const direct = nodes.find((n) => n.name === name || n.outputs.includes(name));
    if (direct) return direct;
    let last: OnnxNode | undefined;
    nodes.forEach((n, i) => {
      const s = scopes[i]!;
      if (s === name || s.startsWith(`${name}.`)) last = n;
    });
    return last;
  };
  let wanted: { layer: string; node: OnnxNode }[];
  const explicit = !!(layers && layers.length);
  if (explicit) {
    const keys = [...new Set(scopes.filter(Boolean).map(blockKeys(scopes)))];
    wanted = layers!.map((l) => {
      const node = pick(l);
      if (!node) throw unknownLayer(l, [...keys, ...nodes.map((n) => n.name)], 'blocks and node names');
      return { layer: l, node };
    });
  } else {
    const keys = [...new Set(scopes.filter(Boolean).map(blockKeys(scopes)))];
    wanted = keys.length ? keys.map((k) => ({ layer: k, node: pick(k)! })) : nodes.filter((n) => ['Conv', 'Add', 'Mul', 'MaxPool', 'AveragePool'].includes(n.opType)).map((n) => ({ layer: n.name, node: n }));
  }
  const byNode = new Map<OnnxNode, Tensor>();
  const targets = new Set(wanted.map((w) => w.node));
  await model.run(x, { onNode: (n, outs) => void (targets.has(n) && byNode.set(n, outs[0]!)) });
  const out: LayerOutput[] = [];
  for (const w of wanted) {
    const t = byNode.get(w.node);
    if (!t) continue;
    if (explicit) {
      if (t.rank !== 4) throw notMaps(w.layer, t);
    } else if (!isSpatial(t)) continue;
    // The loader runs an activation inside the conv before it: say so, or 'Conv' reads as the raw sums.
    const act = w.node.attrs.get('_activation');
    out.push({ layer: w.layer, source: typeof act === 'string' ? `${w.node.name} (${w.node.opType} with its ${act.replace(/_/g, '-')} fused)` : w.node.name, tensor: t });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Drawing

const VIRIDIS: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const c = interpolateViridis(i / 255);
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c) ?? /rgb\((\d+), ?(\d+), ?(\d+)\)/.exec(c);
    if (!m) throw new ValueError(`unexpected colour '${c}' from d3-scale-chromatic`);
    const v = m[0].startsWith('#') ? [1, 2, 3].map((k) => parseInt(m[k]!, 16)) : [1, 2, 3].map((k) => Number(m[k]));
    lut.set(v, 3 * i);
  }
  return lut;
})();

const FONT = 'DejaVu Sans';
const GAP = 8;
const LABEL = 15;
const MARGIN = 14;
const HEAD = 58;
const FOOT = 56;
const GREY = 150;

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'layer';
}

async function renderGrid(layer: string, source: string, t: Tensor, opts: ActivationMapOptions, thumb?: Picture): Promise<ActivationMap> {
  const [, C, H, W] = t.shape as [number, number, number, number];
  const maxCh = opts.maxChannels ?? 64;
  if (!Number.isSafeInteger(maxCh) || maxCh < 1) throw new ValueError(`activationMaps: maxChannels must be a positive integer, got ${maxCh}`);
  const shown = Math.min(C, maxCh);
  const target = opts.tile ?? 96;
  const f = Math.max(1, Math.round(target / Math.max(H, W)));
  const tw = W * f;
  const th = H * f;
  const cols = Math.min(shown, Math.max(1, Math.ceil(Math.sqrt(shown))), 8);
  const rows = Math.ceil(shown / cols);
  const cellW = Math.max(tw, 78);
  const gridW = cols * cellW + (cols - 1) * GAP;
  const width = Math.max(gridW + 2 * MARGIN, 440);
  const gridH = rows * (LABEL + th) + (rows - 1) * GAP;
  // The input picture sits in the header's right corner, enlarged to about 64 px.
  const tf = thumb ? 64 / Math.max(thumb.width, thumb.height) : 0;
  const thW = thumb ? Math.round(thumb.width * tf) : 0;
  const thH = thumb ? Math.round(thumb.height * tf) : 0;
  const head = Math.max(HEAD, thH + 22);
  const height = head + gridH + FOOT;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const d = t.dataSync();
  const plane = H * W;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < C * plane; i++) {
    const v = d[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const x0 = Math.floor((width - gridW) / 2);
  const labels: string[] = [];
  const constant: number[] = [];
  const scale = 2;
  const tiles: ActivationMap['tiles'] = [];
  const pending: { text: string; x: number; y: number; flat: boolean }[] = [];
  for (let c = 0; c < shown; c++) {
    const cx = x0 + (c % cols) * (cellW + GAP) + Math.floor((cellW - tw) / 2);
    const cy = head + Math.floor(c / cols) * (LABEL + th + GAP) + LABEL;
    let mn = Infinity;
    let mx = -Infinity;
    for (let i = 0; i < plane; i++) {
      const v = d[c * plane + i]!;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    const flat = !(mx > mn);
    if (flat) constant.push(c);
    tiles.push({ channel: c, x: cx * scale, y: cy * scale, width: tw * scale, height: th * scale });
    const k255 = flat ? 0 : 255 / (mx - mn);
    for (let y = 0; y < th; y++) {
      const sy = Math.floor(y / f);
      let o = ((cy + y) * width + cx) * 3;
      for (let xx = 0; xx < tw; xx++, o += 3) {
        if (flat) {
          rgb[o] = rgb[o + 1] = rgb[o + 2] = GREY;
          continue;
        }
        const v = d[c * plane + sy * W + Math.floor(xx / f)]!;
        const k = Math.max(0, Math.min(255, Math.round((v - mn) * k255))) * 3;
        rgb[o] = VIRIDIS[k]!;
        rgb[o + 1] = VIRIDIS[k + 1]!;
        rgb[o + 2] = VIRIDIS[k + 2]!;
      }
    }
    const text = flat ? `${c}: all ${fmtNum(mn, 3)}` : `${c}: ${fmtNum(mn, 2)}…${fmtNum(mx, 2)}`;
    pending.push({ text, x: cx + tw / 2, y: cy - 4, flat });

  }
  // One font size for the whole grid: the longest label fits its cell (DejaVu Sans averages about
  // 0.62 em per character here); a label still too long at the smallest size keeps its index only.
  const room = cellW + GAP - 4;
  const longest = Math.max(...pending.map((p) => p.text.length));
  const size = Math.min(10.5, Math.max(8, room / (longest * 0.62)));
  for (const p of pending) {
    const shownText = p.text.length * 0.62 * size <= room ? p.text : p.text.slice(0, p.text.indexOf(':'));
    const colon = shownText.indexOf(':');
    labels.push(`<text x="${p.x}" y="${p.y}" text-anchor="middle" font-size="${size.toFixed(1)}" fill="${p.flat ? '#777' : '#222'}"><tspan font-weight="bold">${esc(colon < 0 ? shownText : shownText.slice(0, colon))}</tspan>${colon < 0 ? '' : esc(shownText.slice(colon))}</text>`);
  }
  if (thumb) {
    const tx = width - MARGIN - thW;
    for (let y = 0; y < thH; y++) {
      for (let xx = 0; xx < thW; xx++) {
        const si = (Math.min(thumb.height - 1, Math.floor(y / tf)) * thumb.width + Math.min(thumb.width - 1, Math.floor(xx / tf))) * 3;
        const o = ((6 + y) * width + tx + xx) * 3;
        rgb[o] = thumb.rgb[si]!;
        rgb[o + 1] = thumb.rgb[si + 1]!;
        rgb[o + 2] = thumb.rgb[si + 2]!;
      }
    }
  }
  const { encodePng } = await import('../data/image.js');
  const raster = encodePng(rgb, width, height);
  const barW = Math.min(200, width - 2 * MARGIN - 240);
  const barX = Math.floor((width - barW) / 2);
  const barY = height - FOOT + 14;
  const stops = Array.from({ length: 11 }, (_, i) => `<stop offset="${i / 10}" stop-color="${interpolateViridis(i / 10)}"/>`).join('');
  const sub = `${C} channel${C === 1 ? '' : 's'} of ${H}×${W}${shown < C ? ` (first ${shown} shown)` : ''} · values ${fmtRange(lo, hi)}`;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<image x="0" y="0" width="${width}" height="${height}" image-rendering="optimizeSpeed" xlink:href="data:image/png;base64,${base64(raster)}"/>`,
    `<text x="${MARGIN}" y="19" font-size="15" font-weight="bold" fill="#111">${esc(layer)}</text>`,
    `<text x="${MARGIN}" y="36" font-size="11.5" fill="#333">${esc(sub)}</text>`,
    ...(source !== layer ? [`<text x="${MARGIN}" y="50" font-size="10" fill="#666">output of ${esc(source)}</text>`] : []),
    ...(thumb ? [`<text x="${width - MARGIN - thW - 6}" y="${6 + thH / 2 + 4}" font-size="10.5" text-anchor="end" fill="#555">input</text>`] : []),
    ...labels,
    `<defs><linearGradient id="v" x1="0" x2="1" y1="0" y2="0">${stops}</linearGradient></defs>`,
    `<rect x="${barX}" y="${barY}" width="${barW}" height="10" fill="url(#v)" stroke="#888" stroke-width="0.5"/>`,
    `<text x="${barX - 6}" y="${barY + 9}" font-size="10.5" text-anchor="end" fill="#333">each tile: its lowest</text>`,
    `<text x="${barX + barW + 6}" y="${barY + 9}" font-size="10.5" fill="#333">its highest</text>`,
    ...(constant.length ? [`<rect x="${width / 2 - 60}" y="${barY + 16}" width="10" height="10" fill="rgb(${GREY},${GREY},${GREY})"/><text x="${width / 2 - 46}" y="${barY + 25}" font-size="10.5" fill="#333">grey: constant channel</text>`] : []),
    '</svg>',
  ].join('\n');
  const { svgToPng } = await import('../report/plots.js');
  const png = await svgToPng(svg, scale);
  return { layer, source, shape: [...t.shape], channels: C, shown, range: [lo, hi], constant, png, width: width * scale, height: height * scale, tiles };
}
