/**
 * The diagnosis page (bundled into app.js, a classic script): an image from a file, a drop or the
 * camera goes through the model's preprocessing, the model and Grad-CAM, all with lightconv's
 * engine here in the browser (WebAssembly kernels; worker threads when the page is cross-origin
 * isolated). An ONNX file dropped on the page replaces the model.
 */
import { setThreads } from '../core/threads.js';
import { Tensor } from '../core/tensor.js';
import { decodeAnyImage, looksLikeDicom } from '../data/decode.js';
import type { RgbImage } from '../data/image.js';
import { type Preprocess, preprocessImage } from '../data/transforms.js';
import { type Cam, type Subject, gradCam, probabilities, resampleMap, resolveSubject, subjectPreprocess } from '../explain/cam.js';
import { blendHeat, colormapLut } from '../explain/overlay.js';
import { type OnnxModel, loadOnnx } from '../io/onnx/model.js';
import { runtime } from '../kernels/wasm/runtime.js';

/** Same name as MODEL_GLOBAL in ./write.ts (not imported: that module is Node's). */
const MODEL_GLOBAL = '__LIGHTCONV_APP_MODEL__';
/** Canvas side in CSS pixels. */
const VIEW = 320;
/** How many classes get a bar. */
const TOP = 5;
const LUT = colormapLut('inferno');

interface Loaded {
  name: string;
  model: OnnxModel;
  subject: Subject;
  classes: string[];
  preprocess: Preprocess;
  /** Whether classes and preprocessing came from the model's metadata. */
  described: boolean;
  input: string;
}

interface Result {
  image: RgbImage;
  x: Tensor;
  probs: Float64Array;
  order: number[];
  cams: Map<number, Cam>;
  times: { decode: number; preprocess: number; inference: number; cam: number };
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const now = () => performance.now();
let current: Loaded | null = null;
let last: { image: RgbImage; name: string; decode: number } | null = null;
let result: Result | null = null;
/** Work is serialised: a second image or model waits for the first to finish. */
let queue: Promise<unknown> = Promise.resolve();

function status(text: string, busy = false): void {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('busy', busy);
}

function showError(e: unknown): void {
  const box = $('error');
  box.textContent = e instanceof Error ? e.message : String(e);
  box.hidden = false;
  document.body.dataset.error = box.textContent;
  status('Something went wrong: see the message below.');
}

function clearError(): void {
  $('error').hidden = true;
  delete document.body.dataset.error;
}

function run<T>(fn: () => Promise<T>): Promise<T | undefined> {
  const p = queue.then(async () => {
    clearError();
    try {
      return await fn();
    } catch (e) {
      showError(e);
      return undefined;
    }
  });
  queue = p;
  return p;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The model

async function useModel(bytes: Uint8Array, name: string): Promise<void> {
  status(`Loading ${name}…`, true);
  const model = await loadOnnx(bytes);
  let subject: Subject;
  try {
    subject = await resolveSubject(model);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const y0 = model.outputs[0]?.shape?.[1];
  const preprocess = await subjectPreprocess(subject);
  const input = model.inputs[0]!.name;
  // Warm-up on a blank input, so that the times shown for the first image are the steady state:
  // the first runs compile the kernels, start the worker threads (a browser's start late), record
  // the run and check its first replay (measured: ~20–50 ms for the first three runs of the IHC
  // model, ~2 ms after); one Grad-CAM compiles the backward pass.
  const zeros = new Tensor(new Float32Array(preprocess.channels * preprocess.inputSize ** 2), [1, preprocess.channels, preprocess.inputSize, preprocess.inputSize]);
  let k = typeof y0 === 'number' ? y0 : 0;
  for (let i = 0; i < 4; i++) k = Object.values(await model.run({ [input]: zeros }))[0]!.shape[1]!;
  const classes = subject.classes ? [...subject.classes] : Array.from({ length: k }, (_, i) => `class ${i}`);
  try {
    await gradCam(model, zeros, { classes });
  } catch {
    /* a model Grad-CAM cannot explain says so with the first image */
  }
  const described = Boolean(subject.classes && subject.preprocess);
  current?.model.dispose();
  current = { name, model, subject: { ...subject, classes }, classes, preprocess, described, input };
  $('model-name').textContent = name;
  $('model-facts').textContent = `· ${classes.length} classes · input ${preprocess.channels}×${preprocess.inputSize}×${preprocess.inputSize}${described ? '' : ' · no lightconv metadata: default preprocessing, classes by number'}`;
  document.body.dataset.classes = JSON.stringify(classes);
  result = null;
  if (last) await classify(last.image, last.name, last.decode);
  else status(`Ready: ${name}. Open an image.`);
}

// ---------------------------------------------------------------------------------------------
// Images

async function platformDecode(blob: Blob): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new Error(`${(blob as File).name ?? 'the file'}: not an image this browser can read (PNG, JPEG, DICOM, and what the browser decodes)`);
  }
  return fromCanvasSource(bitmap, bitmap.width, bitmap.height);
}

function fromCanvasSource(src: CanvasImageSource, width: number, height: number): RgbImage {
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const g = c.getContext('2d', { willReadFrequently: true })!;
  g.drawImage(src, 0, 0, width, height);
  const rgba = g.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i]!;
    rgb[j + 1] = rgba[i + 1]!;
    rgb[j + 2] = rgba[i + 2]!;
  }
  return { width, height, rgb };
}

const isPngOrJpeg = (b: Uint8Array) => (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) || (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff);

async function openFile(file: File): Promise<void> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (/\.onnx$/i.test(file.name)) return useModel(bytes, file.name);
  const t0 = now();
  // PNG, JPEG and DICOM through lightconv's decoders (the pixels Node's CLI gets); other formats through the browser.
  const image = isPngOrJpeg(bytes) || looksLikeDicom(bytes, file.name) ? decodeAnyImage(bytes, file.name) : await platformDecode(file);
  await classify(image, file.name, now() - t0);
}

async function classify(image: RgbImage, name: string, decode: number): Promise<void> {
  if (!current) throw new Error('no model is loaded');
  last = { image, name, decode };
  const m = current;
  status(`Running ${m.name} on ${name}…`, true);
  const p = m.preprocess;
  let t = now();
  const x = new Tensor(preprocessImage(image, p), [1, p.channels, p.inputSize, p.inputSize]);
  const preprocess = now() - t;
  t = now();
  const y = Object.values(await m.model.run({ [m.input]: x }))[0]!;
  const inference = now() - t;
  const probs = probabilities(m.subject, y).slice(0, y.shape[1]!);
  const order = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!);
  result = { image, x, probs, order, cams: new Map(), times: { decode, preprocess, inference, cam: 0 } };
  $('image-name').textContent = `${name} · ${image.width}×${image.height} pixels`;
  renderProbs(result, m);
  drawView(result, m);
  const select = $<HTMLSelectElement>('class-select');
  select.replaceChildren(...order.map((c) => new Option(`${m.classes[c]} (${pct(probs[c]!)})`, String(c))));
  select.value = String(order[0]);
  await showCam(order[0]!);
  $('empty').hidden = true;
  $('result').hidden = false;
  status(`Done: ${name}.`);
  document.body.dataset.runs = String(Number(document.body.dataset.runs ?? 0) + 1);
}

const pct = (v: number) => `${(v * 100).toFixed(v >= 0.999 || v < 0.001 ? 2 : 1)}%`;

function renderProbs(r: Result, m: Loaded): void {
  const top = r.order[0]!;
  const pred = $('prediction');
  pred.replaceChildren('Most likely: ', Object.assign(document.createElement('b'), { textContent: m.classes[top]! }), ` (${pct(r.probs[top]!)})`);
  pred.dataset.classIndex = String(top);
  pred.dataset.className = m.classes[top]!;
  pred.dataset.probability = String(r.probs[top]!);
  const rows = r.order.slice(0, TOP).map((c, i) => {
    const row = document.createElement('div');
    row.className = `prob${i === 0 ? ' top' : ''}`;
    row.dataset.classIndex = String(c);
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${(r.probs[c]! * 100).toFixed(2)}%`;
    bar.append(fill);
    row.append(Object.assign(document.createElement('span'), { className: 'name', textContent: m.classes[c]! }), bar, Object.assign(document.createElement('span'), { className: 'v', textContent: pct(r.probs[c]!) }));
    return row;
  });
  const more = r.order.length > TOP ? [Object.assign(document.createElement('p'), { className: 'note', textContent: `${r.order.length - TOP} less likely classes not shown.` })] : [];
  $('probs').replaceChildren(...rows, ...more);
  const [rw, rh] = [r.image.width, r.image.height];
  const p = m.preprocess;
  $('preprocess-note').textContent = `Before the model: the ${rw}×${rh} image's shorter side resized to ${p.resize} pixels, the centre ${p.crop}×${p.crop} kept${p.crop !== p.inputSize ? ` and resized to ${p.inputSize}×${p.inputSize}` : ''}, colours normalised${m.described ? ' as the model was trained' : ' (ImageNet defaults: this model carries no preprocessing)'}. Probabilities are the model's softmax: scores, not calibrated risks.`;
}

/** The part of the image the model sees (the centre crop), in its pixels — as src/explain/cam.ts's cropRegion. */
function cropRegion(W: number, H: number, p: Preprocess): { x: number; y: number; w: number; h: number } {
  const rw = W <= H ? p.resize : Math.trunc((p.resize * W) / H);
  const rh = W <= H ? Math.trunc((p.resize * H) / W) : p.resize;
  return { x: ((rw - p.crop) / 2) * (W / rw), y: ((rh - p.crop) / 2) * (H / rh), w: p.crop * (W / rw), h: p.crop * (H / rh) };
}

/** The crop drawn at the canvas's size: nearest neighbour when enlarged 3× or more (small patches keep their pixels), else smoothed. */
function viewPixels(r: Result, m: Loaded, side: number): ImageData {
  const src = document.createElement('canvas');
  src.width = r.image.width;
  src.height = r.image.height;
  const rgba = new Uint8ClampedArray(r.image.width * r.image.height * 4);
  for (let i = 0, j = 0; j < r.image.rgb.length; i += 4, j += 3) {
    rgba[i] = r.image.rgb[j]!;
    rgba[i + 1] = r.image.rgb[j + 1]!;
    rgba[i + 2] = r.image.rgb[j + 2]!;
    rgba[i + 3] = 255;
  }
  src.getContext('2d')!.putImageData(new ImageData(rgba, r.image.width, r.image.height), 0, 0);
  const c = cropRegion(r.image.width, r.image.height, m.preprocess);
  const out = document.createElement('canvas');
  out.width = out.height = side;
  const g = out.getContext('2d', { willReadFrequently: true })!;
  g.imageSmoothingEnabled = side < 3 * Math.min(c.w, c.h);
  g.imageSmoothingQuality = 'high';
  g.drawImage(src, c.x, c.y, c.w, c.h, 0, 0, side, side);
  return g.getImageData(0, 0, side, side);
}

function canvasSide(): number {
  return Math.round(VIEW * Math.min(2, Math.max(1, window.devicePixelRatio || 1)));
}

function drawView(r: Result, m: Loaded): void {
  const side = canvasSide();
  const canvas = $<HTMLCanvasElement>('view-canvas');
  canvas.width = canvas.height = side;
  canvas.getContext('2d')!.putImageData(viewPixels(r, m, side), 0, 0);
  const p = m.preprocess;
  const c = cropRegion(r.image.width, r.image.height, p);
  const whole = c.w >= r.image.width - 0.5 && c.h >= r.image.height - 0.5;
  $('view-caption').textContent = `What the model sees: ${whole ? 'the whole image' : 'the centre of the image'} (given to it at ${p.inputSize}×${p.inputSize} pixels)`;
}

async function showCam(c: number): Promise<void> {
  const r = result;
  const m = current;
  if (!r || !m) return;
  let cam = r.cams.get(c);
  if (!cam) {
    const t = now();
    cam = await gradCam(m.model, r.x, { target: c, classes: m.classes });
    r.times.cam = now() - t;
    r.cams.set(c, cam);
  }
  const side = canvasSide();
  const view = viewPixels(r, m, side);
  const rgb = new Uint8Array(side * side * 3);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    rgb[j] = view.data[i]!;
    rgb[j + 1] = view.data[i + 1]!;
    rgb[j + 2] = view.data[i + 2]!;
  }
  // A map that is zero everywhere (no region raised the class's score) would only darken the
  // image: it is shown plain, and said in words.
  let peak = 0;
  for (const v of cam.raw?.map ?? cam.map) if (v > peak) peak = v;
  const heat = resampleMap(cam.map, cam.width, cam.height, side, side);
  const blended = peak > 0 ? blendHeat({ width: side, height: side, rgb }, heat, [0, 1], LUT, 0.45) : { rgb };
  const note = $('cam-note');
  note.hidden = peak > 0;
  note.textContent = peak > 0 ? '' : `No region of this image raised the score of ${m.classes[c]}: the Grad-CAM map is zero everywhere, so the image is shown without colour.`;
  const out = new Uint8ClampedArray(side * side * 4);
  for (let i = 0, j = 0; j < blended.rgb.length; i += 4, j += 3) {
    out[i] = blended.rgb[j]!;
    out[i + 1] = blended.rgb[j + 1]!;
    out[i + 2] = blended.rgb[j + 2]!;
    out[i + 3] = 255;
  }
  const canvas = $<HTMLCanvasElement>('cam-canvas');
  canvas.width = canvas.height = side;
  canvas.getContext('2d')!.putImageData(new ImageData(out, side, side), 0, 0);
  canvas.dataset.classIndex = String(c);
  canvas.dataset.peak = String(peak);
  canvas.setAttribute('aria-label', `Grad-CAM for ${m.classes[c]} (layer ${cam.layer})`);
  renderLatency(r, cam);
}

function renderLatency(r: Result, cam: Cam): void {
  const t = r.times;
  const ms = (v: number) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;
  const rt = runtime();
  const threads = rt?.pool.size ?? 1;
  const how = rt ? `WebAssembly kernels, ${threads} thread${threads === 1 ? '' : 's'}${crossOriginIsolated ? '' : ' (the page is not cross-origin isolated: serve it with lightconv app for threads)'}` : 'JavaScript kernels';
  const box = $('latency');
  box.replaceChildren(
    'Time in this browser: ',
    ...(
      [
        ['decode', t.decode],
        ['preprocess', t.preprocess],
        ['inference', t.inference],
        ['Grad-CAM', t.cam],
      ] as const
    ).flatMap(([k, v], i) => [i ? ' · ' : '', `${k} `, Object.assign(document.createElement('b'), { textContent: ms(v) })]),
    ` — ${how}; Grad-CAM on layer ${cam.layer}.`,
  );
  Object.assign(box.dataset, { decode: String(t.decode), preprocess: String(t.preprocess), inference: String(t.inference), cam: String(t.cam), threads: String(threads) });
}

function drawLegend(): void {
  const c = $<HTMLCanvasElement>('legend');
  const g = c.getContext('2d')!;
  for (let i = 0; i < 256; i++) {
    g.fillStyle = `rgb(${LUT[3 * i]},${LUT[3 * i + 1]},${LUT[3 * i + 2]})`;
    g.fillRect(i, 0, 1, c.height);
  }
}

// ---------------------------------------------------------------------------------------------
// Camera

let stream: MediaStream | null = null;

function cameraNote(text: string): void {
  const n = $('camera-note');
  n.textContent = text;
  n.hidden = false;
}

async function openCamera(): Promise<void> {
  if (!window.isSecureContext) return cameraNote('The camera needs a secure page: open it through lightconv app (http://127.0.0.1) rather than from a file.');
  if (!navigator.mediaDevices?.getUserMedia) return cameraNote('This browser offers no camera to web pages. Choose an image file instead.');
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (e) {
    const name = (e as DOMException).name;
    const why = name === 'NotAllowedError' ? 'access was refused (allow the camera in the browser\'s site settings)' : name === 'NotFoundError' ? 'no camera was found' : `the camera could not start (${name || String(e)})`;
    return cameraNote(`Camera unavailable: ${why}. Choose an image file instead.`);
  }
  $<HTMLVideoElement>('video').srcObject = stream;
  $('camera').hidden = false;
  $('camera-note').hidden = true;
}

function closeCamera(): void {
  for (const t of stream?.getTracks() ?? []) t.stop();
  stream = null;
  $('camera').hidden = true;
}

async function capture(): Promise<void> {
  const v = $<HTMLVideoElement>('video');
  if (!v.videoWidth) throw new Error('the camera has no picture yet; wait a moment and capture again');
  const t0 = now();
  const image = fromCanvasSource(v, v.videoWidth, v.videoHeight);
  await classify(image, `camera capture ${new Date().toLocaleTimeString()}`, now() - t0);
}

// ---------------------------------------------------------------------------------------------

function wire(): void {
  $<HTMLInputElement>('file-input').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void run(() => openFile(f));
    (e.target as HTMLInputElement).value = '';
  });
  $<HTMLInputElement>('model-input').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void run(async () => useModel(new Uint8Array(await f.arrayBuffer()), f.name));
    (e.target as HTMLInputElement).value = '';
  });
  // Drops anywhere on the page; the drop zone shows it.
  const drop = $('drop');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) drop.classList.remove('over');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) void run(() => openFile(f));
  });
  $('camera-button').addEventListener('click', () => void run(openCamera));
  $('camera-stop').addEventListener('click', closeCamera);
  $('capture-button').addEventListener('click', () => void run(capture));
  $<HTMLSelectElement>('class-select').addEventListener('change', (e) => void run(() => showCam(Number((e.target as HTMLSelectElement).value))));
}

async function main(): Promise<void> {
  wire();
  drawLegend();
  // Threads need SharedArrayBuffer, which only a cross-origin isolated page has (the server sends COOP/COEP).
  if (crossOriginIsolated) setThreads(Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1)));
  if ('serviceWorker' in navigator && location.protocol.startsWith('http')) {
    navigator.serviceWorker.register('sw.js').catch(() => {
      /* no offline copy; the page works as it is */
    });
  }
  const embedded = (window as unknown as Record<string, { name: string; bytes: string } | undefined>)[MODEL_GLOBAL];
  if (!embedded) throw new Error('model.js did not load (it must sit beside index.html)');
  await useModel(fromBase64(embedded.bytes), embedded.name);
  document.body.dataset.ready = '1';
}

main().catch(showError);
