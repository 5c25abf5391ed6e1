/**
 * The explorer page (bundled into explorer.js, a classic script): runs the model on the image with
 * the engine, here in the browser, and draws every layer. The engine runs here rather than Node
 * sending pictures because a click on ANY output element must show its arithmetic, and that needs
 * the layer's input, weights and the step's at(): a few hundred kB of weights, instead of every
 * element's terms (as many as the model has multiply-adds).
 */
import { Tensor } from '../../core/tensor.js';
import { loadOnnx } from '../../io/onnx/model.js';
import { type Arithmetic, fmtNum, flatOf, unflat } from '../arithmetic.js';
import { type Step, collectSteps } from '../step.js';
import { DATA_GLOBAL, type ExplorerData, type ExplorerGradients } from './data.js';

/** What the map shows, in plain words, for the method that made it. */
function camWords(cam: { method: string; className: string; layer?: string | null }): string {
  const where = cam.layer ? `layer ${cam.layer}` : 'the last spatial layer';
  switch (cam.method) {
    case 'saliency':
      return `Bright pixels are where a small change of the input moves the score of '${cam.className}' most (the size of its gradient with respect to each pixel). `;
    case 'occlusion':
      return `Bright regions lowered the probability of '${cam.className}' most when a square patch over them was replaced by the image's mean. `;
    case 'gradcam++':
      return `Bright regions raised the score of '${cam.className}' most: Grad-CAM++ weighs the feature maps of ${where} by their positive gradients, each pixel's counted by how much it adds, sums them and keeps the positive part. `;
    default:
      return `Bright regions raised the score of '${cam.className}' most: Grad-CAM weighs the feature maps of ${where} by how much each one raises that score, adds them up and keeps the positive part. `;
  }
}

/** How the page names each CAM method. */
const METHOD_NAMES: Record<string, string> = { gradcam: 'Grad-CAM', 'gradcam++': 'Grad-CAM++', occlusion: 'Occlusion sensitivity', saliency: 'Gradient saliency (the input gradient)' };

/** How many channel maps a panel shows before its "show all" button. */
const FIRST_MAPS = 16;
/** Feature maps are drawn at least this many CSS pixels wide (a 4×4 map is otherwise a dot). */
const MIN_MAP_PX = 72;

const KIND_NAMES: Record<string, string> = {
  conv: 'convolution',
  depthwise_conv: 'depthwise convolution',
  batchnorm: 'batch norm',
  activation: 'activation',
  se: 'squeeze-excitation',
  eca: 'ECA attention',
  mbconv: 'inverted residual',
  conv_bn_act: 'conv-BN-act',
  pool: 'pooling',
  global_pool: 'global pooling',
  linear: 'fully connected',
  softmax: 'softmax',
  add: 'add',
  mul: 'multiply',
  flatten: 'flatten',
  dropout: 'dropout',
  other: 'other',
};

const KIND_COLOURS: Record<string, string> = {
  conv: '#2a6fdb', depthwise_conv: '#5b8def', batchnorm: '#7a869a', activation: '#1b9e5a', se: '#d9822b', eca: '#d9822b', mul: '#d9822b',
  pool: '#8e44ad', global_pool: '#8e44ad', linear: '#c0392b', softmax: '#e4572e', add: '#16a3a3', mbconv: '#34495e', conv_bn_act: '#34495e',
};
const colour = (kind: string) => KIND_COLOURS[kind] ?? '#9aa3b2';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** 'features.4.block.2' → 'features.4'; 'classifier.0' → 'classifier'; a name with no module path is its own group. */
function groupOf(step: Step): string {
  const scope = String(step.attributes.scope ?? '');
  if (!scope) return '(graph)';
  const segs = scope.split('.');
  return segs.length > 2 && /^\d+$/.test(segs[1]!) ? `${segs[0]}.${segs[1]}` : segs[0]!;
}

function shortLabel(step: Step): string {
  const m = /\(([^)]*)\)\s*$/.exec(step.layer);
  return m ? m[1]! : step.layer;
}

interface Page {
  data: ExplorerData;
  steps: Step[];
  lut: Uint8Array;
  panels: HTMLElement[];
}

async function main(): Promise<void> {
  const status = document.getElementById('status')!;
  const data = (window as unknown as Record<string, ExplorerData>)[DATA_GLOBAL];
  if (!data) throw new Error('data.js did not load (it must sit beside index.html)');
  const model = await loadOnnx(fromBase64(data.model));
  const raw = fromBase64(data.input.data);
  const x = new Tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), data.input.shape);
  // Twice: the first run compiles the kernels, the second one's times are the layers' own.
  await collectSteps(model, x, { classes: data.classes });
  const steps = await collectSteps(model, x, { classes: data.classes });
  const page: Page = { data, steps, lut: Uint8Array.from(data.lut.maps), panels: [] };
  renderSummary(page);
  renderNetwork(page);
  renderLayers(page);
  renderExplain(page, data.cams[0]?.classIndex ?? data.predicted);
  status.textContent = `${steps.length} layers ran in this browser`;
  status.classList.add('done');
  document.body.dataset.ready = '1';
}

// ---------------------------------------------------------------------------------------------

function renderSummary(p: Page): void {
  const { data } = p;
  const box = document.getElementById('summary')!;
  const order = [...data.probabilities.keys()].sort((a, b) => data.probabilities[b]! - data.probabilities[a]!).slice(0, 5);
  const probs = el('div', { class: 'probs' }, el('div', { class: 'note' }, 'What the model says (probability per class):'));
  for (const c of order) {
    const v = data.probabilities[c]!;
    const bar = el('div', { class: 'bar' }, el('span', { style: `width:${(v * 100).toFixed(1)}%` }));
    probs.append(el('div', { class: `prob${c === data.predicted ? ' top' : ''}` }, el('span', {}, data.classes[c]!), bar, el('span', {}, `${(v * 100).toFixed(1)}%`)));
  }
  const [, c, h, w] = data.input.shape;
  const img = el('img', { class: 'pic', src: data.image, width: String(Math.max(160, w!)), height: String(Math.max(160, h!)), alt: 'the image the model sees' });
  box.append(
    el('h2', {}, `Prediction: ${data.classes[data.predicted]} (${(data.probabilities[data.predicted]! * 100).toFixed(1)}%)`),
    el('div', { class: 'row' }, el('figure', { style: 'margin:0' }, img, el('figcaption', { class: 'note' }, `the input: ${c} × ${h} × ${w}`)), probs),
    el('p', { class: 'note' }, `Before the first layer, ${data.preprocess}.`),
  );
}

/** Groups in order: a step whose group is a prefix of the one before (a residual Add named after the parent Sequential) stays in that block. */
function groups(steps: Step[]): string[] {
  const out: string[] = [];
  let current = '';
  for (const s of steps) {
    const g = groupOf(s);
    if (!(current && g !== '(graph)' && current.startsWith(`${g}.`))) current = g;
    out.push(current);
  }
  return out;
}

function renderNetwork(p: Page): void {
  const nav = document.getElementById('network')!;
  nav.append(el('h2', {}, 'The network'), el('div', { class: 'io' }, `image ${shapeText(p.data.input.shape)}`));
  let current = '';
  let box: HTMLElement | null = null;
  let macs = 0;
  let meta: HTMLElement | null = null;
  const gs = groups(p.steps);
  for (const s of p.steps) {
    const g = gs[s.index]!;
    if (g !== current || !box) {
      current = g;
      macs = 0;
      meta = el('span', { class: 'bmeta' });
      box = el('div', { class: 'block' }, el('div', { class: 'bname' }, el('span', {}, g), meta));
      nav.append(el('div', { class: 'arrow' }, '↓'), box);
    }
    macs += s.macs;
    meta!.textContent = macs ? `${compact(macs)} MACs` : '';
    const a = el('a', { href: `#layer-${s.index}`, title: s.layer }, el('span', { class: 'chip', style: `background:${colour(s.kind)}` }), el('span', { class: 'lname' }, shortLabel(s)), el('span', { class: 'shape' }, shapeText(s.output.shape.slice(1))));
    box.append(a);
  }
  nav.append(el('div', { class: 'arrow' }, '↓'), el('div', { class: 'io' }, `${p.data.classes.length} class scores`));
}

function renderExplain(p: Page, classIndex: number): void {
  const { data } = p;
  const box = document.getElementById('explain')!;
  box.replaceChildren();
  const select = el('select', { id: 'class-select' });
  for (const cam of data.cams) {
    const o = el('option', { value: String(cam.classIndex) }, `${cam.className} (${(cam.probability * 100).toFixed(1)}%)`);
    if (cam.classIndex === classIndex) o.selected = true;
    select.append(o);
  }
  select.addEventListener('change', () => renderExplain(p, Number(select.value)));
  const cam = data.cams.find((c) => c.classIndex === classIndex) ?? data.cams[0]!;
  const lut = data.lut.cam;
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => {
    const k = Math.round(t * 255) * 3;
    return `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]}) ${t * 100}%`;
  });
  const [, , h, w] = data.input.shape;
  const size = String(Math.max(192, w!));
  const sizeH = String(Math.max(192, h!));
  box.append(
    el('h2', {}, 'Where the evidence is, and how each layer would learn from this image'),
    el('label', {}, 'Class to explain: ', select),
    el(
      'div',
      { class: 'row', style: 'margin-top:8px' },
      el('figure', { style: 'margin:0' }, el('img', { class: 'pic', src: data.image, width: size, height: sizeH, alt: 'input' }), el('figcaption', { class: 'note' }, 'the input')),
      el(
        'figure',
        { style: 'margin:0' },
        el('img', { id: 'cam-overlay', class: 'pic', src: cam.overlay, width: size, height: sizeH, alt: `Grad-CAM for ${cam.className}` }),
        el('figcaption', { class: 'note' }, `${METHOD_NAMES[cam.method] ?? cam.method} for '${cam.className}'`),
        el('div', { class: 'legend', style: `background:linear-gradient(to right, ${stops.join(', ')})` }),
        el('div', { class: 'legend-labels' }, el('span', {}, 'no evidence'), el('span', {}, 'most evidence')),
      ),
      el(
        'p',
        { class: 'note', style: 'flex:1;min-width:240px' },
        cam.peak > 0 || !cam.method.startsWith('gradcam') ? '' : el('b', {}, `No region raised the score of '${cam.className}': every feature map's weight for it is negative, so the map is empty (dark). The other class's map shows where the evidence against it lies. `),
        camWords(cam),
        'Below: if this image were a training example labelled with the chosen class, the bars show how large the gradient of the loss is for each layer\'s weights (the L2 norm of all its parameter gradients) — the layers a training step would change most. A confidently right class gives small gradients everywhere.',
      ),
    ),
  );
  const g = data.gradients.find((e) => e.classIndex === cam.classIndex);
  if (g) box.append(gradientBars(p, g));
}

function gradientBars(p: Page, g: ExplorerGradients): HTMLElement {
  const byOutput = new Map(p.steps.map((s) => [String(s.attributes.output_name ?? ''), s]));
  const max = Math.max(...g.layers.map((l) => l.norm), 1e-30);
  // Bars are scaled to this class's largest layer; the classes' own largest values say how they compare.
  const others = p.data.gradients.filter((e) => e !== g).slice(0, 4).map((e) => `'${p.data.classes[e.classIndex]}' ${fmtNum(Math.max(...e.layers.map((l) => l.norm)), 3)}`);
  const wrap = el(
    'div',
    { class: 'grads', id: 'gradients' },
    el('div', { class: 'note' }, `Gradient magnitude per layer for '${p.data.classes[g.classIndex]}' (loss ${fmtNum(g.loss)}); the longest bar is this class's largest, ${fmtNum(max, 3)}${others.length ? ` (the largest for ${others.join(', ')})` : ''}:`),
  );
  for (const l of g.layers) {
    const s = byOutput.get(l.output);
    const name = s ? el('a', { href: `#layer-${s.index}`, title: s.layer }, l.layer) : el('span', {}, l.layer);
    wrap.append(el('div', { class: 'gbar', 'data-output': l.output }, name, el('div', { class: 'bar' }, el('span', { style: `width:${((l.norm / max) * 100).toFixed(1)}%` })), el('span', { class: 'v' }, fmtNum(l.norm, 3))));
  }
  return wrap;
}

// ---------------------------------------------------------------------------------------------
// Layer panels

function renderLayers(p: Page): void {
  const root = document.getElementById('layers')!;
  let current = '';
  const gs = groups(p.steps);
  for (const s of p.steps) {
    const g = gs[s.index]!;
    if (g !== current) {
      current = g;
      root.append(el('h2', { class: 'group' }, g === '(graph)' ? 'layers outside any block' : g));
    }
    const panel = layerPanel(p, s);
    p.panels.push(panel);
    root.append(panel);
  }
}

function layerPanel(p: Page, s: Step): HTMLElement {
  const kindName = s.kind === 'mul' && s.attention ? 'attention gate' : s.kind === 'add' && s.output.rank === 4 && s.input.shape.join() === s.output.shape.join() ? 'add (residual)' : (KIND_NAMES[s.kind] ?? s.kind);
  const params = Object.entries(s.params).map(([k, v]) => `${k} ${shapeText(v)}`).join(', ');
  const panel = el('article', { class: 'layer', id: `layer-${s.index}`, 'data-step': String(s.index), 'data-kind': s.kind, style: `border-left-color:${colour(s.kind)}` });
  let words: string;
  try {
    words = s.explain();
  } catch (e) {
    words = `(no explanation: ${(e as Error).message})`;
  }
  panel.append(
    el('h3', {}, el('span', { class: 'no' }, `#${s.index + 1}`), s.layer, el('span', { class: 'kind', style: `background:${colour(s.kind)}` }, kindName)),
    el(
      'div',
      { class: 'facts' },
      el('span', {}, 'in ', el('b', {}, shapeText(s.input.shape)), ' → out ', el('b', {}, shapeText(s.output.shape))),
      el('span', {}, el('b', {}, s.macs ? compact(s.macs) : '0'), ' multiply-adds'),
      // Browsers round performance.now() to 0.1 ms on pages that are not cross-origin isolated.
      el('span', { title: 'wall time of this layer in this browser (second run)' }, el('b', {}, s.ms < 0.1 ? '< 0.1 ms' : `${s.ms.toFixed(2)} ms`), ' here'),
      ...(params ? [el('span', {}, 'weights ', el('b', {}, params))] : []),
    ),
    el('p', { class: 'explain-text' }, words),
  );
  if (s.attention) panel.append(attentionBars(s.attention));
  const arith = el('div', { class: 'arith', hidden: '' });
  const maps = renderMaps(p, s, arith);
  if (maps) panel.append(maps);
  panel.append(arith);
  return panel;
}

function attentionBars(w: number[]): HTMLElement {
  const max = Math.max(...w, 1e-30);
  const bars = el('div', { class: 'att' });
  w.forEach((v, c) => bars.append(el('span', { style: `height:${Math.max(1, (v / max) * 100).toFixed(1)}%`, title: `channel ${c}: ${fmtNum(v)}` })));
  return el('div', {}, bars, el('div', { class: 'att-caption' }, `Attention weight of each of the ${w.length} channels (${fmtNum(Math.min(...w))} … ${fmtNum(Math.max(...w))}): every value of a channel is multiplied by its bar. Hover for numbers.`));
}

/** The first image's maps: one image per channel of a [1, C, H, W] output, else one strip of all values. */
function renderMaps(p: Page, s: Step, arith: HTMLElement): HTMLElement | null {
  const y = s.output;
  if (y.dtype !== 'float32' || y.rank < 2 || y.size === 0) return null;
  const d = y.f32();
  const wrap = el('div', {});
  const grid = el('div', { class: 'maps' });
  wrap.append(grid);
  let blank = true;
  if (y.rank === 4 && y.shape[2]! * y.shape[3]! > 1) {
    const [, C, H, W] = y.shape as [number, number, number, number];
    const scale = Math.max(1, Math.ceil(MIN_MAP_PX / Math.max(W, H)));
    const draw = (from: number, to: number) => {
      for (let c = from; c < to; c++) {
        const plane = d.subarray(c * H * W, (c + 1) * H * W);
        const canvas = channelCanvas(plane, W, H, p.lut);
        if (canvas.dataset.constant !== '1') blank = false;
        canvas.style.width = `${W * scale}px`;
        canvas.style.height = `${H * scale}px`;
        canvas.dataset.channel = String(c);
        const fig = el('figure', { class: 'map' }, canvas, el('figcaption', {}, `ch ${c}`));
        canvas.addEventListener('click', (ev) => {
          const r = canvas.getBoundingClientRect();
          const i = Math.min(H - 1, Math.floor(((ev.clientY - r.top) / r.height) * H));
          const j = Math.min(W - 1, Math.floor(((ev.clientX - r.left) / r.width) * W));
          mark(fig, canvas, j / W, i / H, 1 / W, 1 / H);
          showArithmetic(p, s, [0, c, i, j], arith);
        });
        grid.append(fig);
      }
    };
    draw(0, Math.min(C, FIRST_MAPS));
    const note = el('div', { class: 'maps-note' }, `${Math.min(C, FIRST_MAPS)} of ${C} channel maps (${H}×${W}), each scaled to its own range: dark = its lowest value, bright = its highest (${p.data.lut.mapsName}). Click a pixel for its arithmetic.`);
    if (C > FIRST_MAPS) {
      const more = el('button', { class: 'more' }, `show all ${C}`);
      more.addEventListener('click', () => {
        draw(FIRST_MAPS, C);
        more.remove();
        note.firstChild!.textContent = `All ${C} channel maps (${H}×${W}), each scaled to its own range: dark = its lowest value, bright = its highest (${p.data.lut.mapsName}). Click a pixel for its arithmetic.`;
      });
      note.append(more);
    }
    wrap.append(note);
  } else {
    // One value per channel (after global pooling, a linear layer, …): all of them as one strip of cells.
    const per = y.size / y.shape[0]!;
    const values = d.subarray(0, per);
    const cols = Math.min(per, 64);
    const rows = Math.ceil(per / cols);
    const cell = per <= 16 ? 24 : per <= 64 ? 12 : 9;
    const canvas = channelCanvas(values, cols, rows, p.lut, per);
    blank = canvas.dataset.constant === '1';
    canvas.style.width = `${cols * cell}px`;
    canvas.style.height = `${rows * cell}px`;
    const fig = el('figure', { class: 'map' }, canvas, el('figcaption', {}, `${per} values, left to right${rows > 1 ? ', row by row' : ''}`));
    canvas.addEventListener('click', (ev) => {
      const r = canvas.getBoundingClientRect();
      const i = Math.min(rows - 1, Math.floor(((ev.clientY - r.top) / r.height) * rows));
      const j = Math.min(cols - 1, Math.floor(((ev.clientX - r.left) / r.width) * cols));
      const flat = i * cols + j;
      if (flat >= per) return;
      mark(fig, canvas, j / cols, i / rows, 1 / cols, 1 / rows);
      showArithmetic(p, s, [0, ...unflat(y.shape.slice(1), flat)], arith);
    });
    grid.append(fig);
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    wrap.append(el('div', { class: 'maps-note' }, `Each cell is one value, dark = lowest (${fmtNum(lo)}), bright = highest (${fmtNum(hi)}). Click a cell for its arithmetic.`));
  }
  wrap.dataset.blank = blank ? '1' : '0';
  wrap.className = 'maps-wrap';
  return wrap;
}

/** A canvas of `w`×`h` pixels, `values` normalised to their own range through the colour map. */
function channelCanvas(values: Float32Array, w: number, h: number, lut: Uint8Array, count = w * h): HTMLCanvasElement {
  const canvas = el('canvas', { width: String(w), height: String(h) });
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < count; i++) {
    lo = Math.min(lo, values[i]!);
    hi = Math.max(hi, values[i]!);
  }
  const span = hi - lo;
  if (!(span > 0)) canvas.dataset.constant = '1';
  const img = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    if (i >= count) {
      img.data.set([255, 255, 255, 0], i * 4);
      continue;
    }
    // A constant map is drawn mid-way, not black, so it does not read as "all lowest".
    const k = span > 0 ? Math.round(((values[i]! - lo) / span) * 255) * 3 : 128 * 3;
    img.data.set([lut[k]!, lut[k + 1]!, lut[k + 2]!, 255], i * 4);
  }
  canvas.getContext('2d')!.putImageData(img, 0, 0);
  canvas.title = `${fmtNum(lo)} … ${fmtNum(hi)}`;
  return canvas;
}

function mark(fig: HTMLElement, canvas: HTMLCanvasElement, fx: number, fy: number, fw: number, fh: number, clear = true): void {
  if (clear) document.querySelectorAll('.marker').forEach((m) => m.remove());
  const left = canvas.offsetLeft + fx * canvas.clientWidth;
  const top = canvas.offsetTop + fy * canvas.clientHeight;
  fig.append(el('div', { class: clear ? 'marker' : 'marker input-window', style: `left:${left - 1}px;top:${top - 1}px;width:${Math.max(4, fw * canvas.clientWidth) + 2}px;height:${Math.max(4, fh * canvas.clientHeight) + 2}px` }));
}

/** How many terms the table lists; all of them are in the full text below it. */
const TABLE_TERMS = 27;

function showArithmetic(p: Page, s: Step, index: number[], box: HTMLElement): void {
  box.hidden = false;
  box.replaceChildren();
  const actual = s.output.f32()[flatOf(s.output.shape, index)]!;
  box.dataset.index = index.join(',');
  box.dataset.actual = String(actual);
  let a: Arithmetic;
  try {
    a = s.at(index);
  } catch (e) {
    box.dataset.output = '';
    box.append(el('h4', {}, `output${shapeText(index)} = ${fmtNum(actual)}`), el('p', { class: 'error' }, (e as Error).message));
    return;
  }
  box.dataset.output = String(a.output);
  box.append(el('h4', {}, `How output${shapeText(index)} = ${fmtNum(a.output)} was computed`));
  if (a.terms.length) {
    const table = el('table', {}, el('tr', {}, el('th', {}, 'input at'), el('th', {}, 'input'), el('th', {}, '× weight'), el('th', {}, '= product')));
    for (const t of a.terms.slice(0, TABLE_TERMS)) {
      table.append(el('tr', {}, el('td', {}, shapeText(t.inputIndex)), el('td', {}, fmtNum(t.input)), el('td', {}, `× ${fmtNum(t.weight)}`), el('td', {}, fmtNum(t.input * t.weight))));
    }
    box.append(table);
    if (a.terms.length > TABLE_TERMS) box.append(el('div', { class: 'note' }, `… and ${a.terms.length - TABLE_TERMS} more terms (all in the full computation below).`));
    const isMax = a.terms.length > 1 && a.sum === Math.max(...a.terms.map((t) => t.input)) && a.terms.every((t) => t.weight === 1);
    const n = a.terms.length;
    box.append(el('p', {}, n === 1 ? 'the product = ' : `${isMax ? 'largest of' : 'sum of'} ${n} ${isMax ? 'values' : 'products'} = `, el('b', {}, fmtNum(a.sum)), ...(a.bias !== undefined ? [` ; + bias ${fmtNum(a.bias)} = `, el('b', {}, fmtNum(a.sum + a.bias))] : [])));
  }
  if (a.post.length) {
    const ol = el('ol', { class: 'steps' });
    for (const q of a.post) ol.append(el('li', {}, `${q.op}: ${q.formula} = `, el('b', {}, fmtNum(q.value))));
    box.append(el('div', {}, 'then:'), ol);
  }
  box.append(
    el('p', { class: 'result' }, `= ${fmtNum(a.output)}`, el('span', { class: 'note', style: 'font-weight:400' }, `  (the layer's output at this position: ${fmtNum(actual)})`)),
    el('details', {}, el('summary', {}, 'the whole computation as text'), el('pre', {}, a.text)),
  );
  outlineWindow(p, s, a, box);
}

/** Outlines the input values the arithmetic used on the maps of the layer that produced them. */
function outlineWindow(p: Page, s: Step, a: Arithmetic, box: HTMLElement): void {
  const src = p.steps.filter((q) => q.index < s.index && q.output === s.input).pop();
  if (!src || src.output.rank !== 4 || !a.terms.length || a.terms.some((t) => t.inputIndex.length !== 4)) return;
  const [, , H, W] = src.output.shape as [number, number, number, number];
  const boxes = new Map<number, [number, number, number, number]>();
  for (const t of a.terms) {
    const [, c, i, j] = t.inputIndex as [number, number, number, number];
    // Padding positions lie outside the map: the outline stops at its edge.
    const ii = Math.max(0, Math.min(H - 1, i));
    const jj = Math.max(0, Math.min(W - 1, j));
    const b = boxes.get(c);
    if (!b) boxes.set(c, [ii, ii, jj, jj]);
    else boxes.set(c, [Math.min(b[0], ii), Math.max(b[1], ii), Math.min(b[2], jj), Math.max(b[3], jj)]);
  }
  let drawn = 0;
  for (const [c, [i0, i1, j0, j1]] of boxes) {
    const canvas = document.querySelector<HTMLCanvasElement>(`#layer-${src.index} canvas[data-channel="${c}"]`);
    if (!canvas) continue;
    mark(canvas.parentElement!, canvas, j0 / W, i0 / H, (j1 - j0 + 1) / W, (i1 - i0 + 1) / H, false);
    drawn++;
  }
  if (!drawn) return;
  box.append(
    el(
      'p',
      { class: 'note' },
      'The input values used are outlined in red on the maps of ',
      el('a', { href: `#layer-${src.index}` }, `#${src.index + 1} ${src.layer}`),
      drawn < boxes.size ? ` (${drawn} of the ${boxes.size} input channels are drawn there; "show all" draws the rest).` : '.',
    ),
  );
}

main().catch((e: unknown) => {
  const status = document.getElementById('status');
  if (status) {
    status.textContent = `The explorer could not run the model: ${(e as Error)?.message ?? String(e)}`;
    status.classList.add('error');
  }
  document.body.dataset.error = String((e as Error)?.message ?? e);
  console.error(e);
});
