/**
 * The explorer page in headless Chromium (Debian's /usr/bin/chromium through playwright-core; no
 * browser is downloaded): a tiny native model's page served by serveExplorer and a trained model's
 * page opened from file://. Every layer's panel must render non-blank maps, and clicking elements
 * must show arithmetic whose result is that layer's output at the clicked index — checked against
 * the same steps run here in Node. Screenshots go to $EXPLORER_SCREENSHOTS (docs/explorer for the
 * README) or a temporary folder.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../../src/cli/explore.js';
import { ValueError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { fmtNum, flatOf } from '../../src/explain/arithmetic.js';
import { type ExplorerData, checkLoopback, explorerData, explorerFiles, serveExplorer, writeExplorer } from '../../src/explain/index.js';
import { type Step, collectSteps } from '../../src/explain/step.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { lightCnn } from '../../src/models/index.js';
import { runCommand } from '../helpers.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '../..');
const TRAINED = join(ROOT, 'tests/fixtures/explain/ihc_trained.onnx');
const PATCHES = join(ROOT, 'datasets/ihc_patches/dab_positive');
/** Where screenshots go: set in beforeAll, so a skipped run leaves no folder behind. */
let SHOTS = '';

/** The steps the page runs, run here: the page's ONNX bytes and input from its data. */
async function nodeSteps(data: ExplorerData): Promise<Step[]> {
  const model = await loadOnnx(Buffer.from(data.model, 'base64'));
  const raw = Buffer.from(data.input.data, 'base64');
  const x = new Tensor(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), data.input.shape);
  return collectSteps(model, x, { classes: data.classes });
}

/** Per panel: its step, whether it has maps, and how many of its canvases have more than one colour. */
async function panelStates(page: Page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('article.layer')).map((a) => {
      const canvases = Array.from(a.querySelectorAll('canvas'));
      const varied = canvases.filter((c) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        for (let i = 4; i < d.length; i += 4) if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
        return false;
      }).length;
      return { step: Number(a.dataset.step), kind: a.dataset.kind!, canvases: canvases.length, varied, blankFlag: (a.querySelector('.maps-wrap') as HTMLElement | null)?.dataset.blank, explain: a.querySelector('.explain-text')?.textContent ?? '' };
    }),
  );
}

/** Clicks a canvas of panel `step` at a fraction of its size; returns what the arithmetic box shows. */
async function clickElement(page: Page, step: number, canvas: number, fx: number, fy: number) {
  const c = page.locator(`#layer-${step} canvas`).nth(canvas);
  await c.scrollIntoViewIfNeeded();
  const box = (await c.boundingBox())!;
  await c.click({ position: { x: box.width * fx, y: box.height * fy } });
  const arith = page.locator(`#layer-${step} .arith`);
  await arith.waitFor({ state: 'visible' });
  const r = await arith.evaluate((e: HTMLElement) => ({ index: e.dataset.index!.split(',').map(Number), output: Number(e.dataset.output), actual: Number(e.dataset.actual), text: e.textContent ?? '' }));
  return { ...r, arith };
}

/** One click's check: the shown result is the layer's output at the clicked index, as Node computes it. */
function expectArithmetic(steps: Step[], step: number, shown: { index: number[]; output: number; text: string }): void {
  const s = steps[step]!;
  const want = s.output.f32()[flatOf(s.output.shape, shown.index)]!;
  // The page and Node run the same kernels on the same float32 input; 1e-4·(1 + |v|) leaves room
  // for a different summation order in another runtime and is far below any wrong-index or
  // wrong-layer difference (neighbouring outputs differ by ~1e-1 here).
  expect(Math.abs(shown.output - want)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want)));
  expect(Math.abs(s.at(shown.index).output - want)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want)));
  expect(shown.text).toContain(`= ${fmtNum(shown.output)}`);
}

async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === '1' || document.body.dataset.error !== undefined, undefined, { timeout: 60_000 });
  return { page, errors };
}

if (!existsSync(CHROMIUM)) console.warn(`explorer browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);

describe.skipIf(!existsSync(CHROMIUM))(`explorer page in headless Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  beforeAll(async () => {
    SHOTS = process.env.EXPLORER_SCREENSHOTS ? resolve(process.env.EXPLORER_SCREENSHOTS) : mkdtempSync(join(tmpdir(), 'lightconv-explorer-shots-'));
    if (!process.env.EXPLORER_SCREENSHOTS) temporary.push(SHOTS);
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  });
  const temporary: string[] = [];
  afterAll(async () => {
    await browser?.close();
    for (const d of temporary) rmSync(d, { recursive: true, force: true });
  });

  it('a tiny native model, served on 127.0.0.1: every panel renders, clicked elements show their arithmetic', async () => {
    const net = lightCnn({ resolution: 16, numClasses: 3, hidden: 8, seed: 3 });
    const image = join(PATCHES, readdirSync(PATCHES).sort()[0]!);
    const data = await explorerData(net, image);
    const steps = await nodeSteps(data);
    const server = await serveExplorer(await explorerFiles(data));
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const { page, errors } = await openPage(browser, server.url);
      expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
      const panels = await panelStates(page);
      expect(panels.map((p) => p.step)).toEqual(steps.map((s) => s.index));
      for (const p of panels) {
        expect(p.explain.length, `panel ${p.step}`).toBeGreaterThan(10);
        if (p.canvases) expect(p.varied, `panel ${p.step} (${p.kind}) has only blank maps`).toBeGreaterThan(0);
      }
      // Every float output with two or more values has maps.
      expect(panels.filter((p) => p.canvases > 0).length).toBe(steps.filter((s) => s.output.dtype === 'float32' && s.output.rank >= 2).length);
      const conv = steps.findIndex((s) => s.kind === 'conv');
      const pool = steps.findIndex((s) => s.kind === 'pool');
      const last = steps.length - 1;
      for (const [step, canvas, fx, fy] of [[conv, 2, 0.3, 0.7], [pool, 0, 0.9, 0.1], [last, 0, 0.5, 0.5]] as const) {
        expectArithmetic(steps, step, await clickElement(page, step, canvas, fx, fy));
      }
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await server.close();
    }
  }, 60_000);

  it('a model without spatial maps: the page shows gradient saliency and says what it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightconv-explorer-mlp-'));
    temporary.push(dir);
    const file = join(dir, 'mlp.onnx');
    const { exportOnnx } = await import('../../src/io/onnx/export.js');
    const { preprocessToMetadata } = await import('../../src/data/transforms.js');
    const { Flatten, Linear, Sequential } = await import('../../src/layers/layers.js');
    const raw = { inputSize: 8, resize: 8, crop: 8, channels: 3 as const, mean: [0, 0, 0], std: [1, 1, 1] };
    await exportOnnx(new Sequential(new Flatten(), new Linear(3 * 8 * 8, 3)), file, { input: [1, 3, 8, 8], metadata: { 'lightconv.classes': JSON.stringify(['a', 'b', 'c']), ...preprocessToMetadata(raw) } });
    const image = { width: 8, height: 8, rgb: Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) % 256) };
    await writeExplorer(file, image, join(dir, 'page'));
    const { page } = await openPage(browser, pathToFileURL(join(dir, 'page', 'index.html')).href);
    expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
    const text = await page.evaluate(() => document.getElementById('explain')!.textContent ?? '');
    expect(text).toContain('Gradient saliency (the input gradient) for');
    expect(text).toContain('a small change of the input moves the score of');
    expect(text).not.toContain('Grad-CAM weighs');
    await page.close();
  });

  it('a trained ONNX model from file://: attention bars, Grad-CAM per class, gradients, arithmetic; screenshots', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightconv-explorer-'));
    temporary.push(dir);
    const image = join(PATCHES, readdirSync(PATCHES).sort()[0]!);
    const written = await writeExplorer(TRAINED, image, dir);
    expect(written.files.sort()).toEqual(['data.js', 'explorer.js', 'index.html', 'style.css']);
    const data = (await import('node:vm')).runInNewContext(readFileSync(join(dir, 'data.js'), 'utf8').replace(/^window\./, 'this.') + ';this.__LIGHTCONV_EXPLORER__', {}) as ExplorerData;
    expect(data.classes).toEqual(['dab_negative', 'dab_positive']);
    expect(data.cams.map((c) => c.classIndex).sort()).toEqual([0, 1]);
    const steps = await nodeSteps(data);

    const { page, errors } = await openPage(browser, pathToFileURL(join(dir, 'index.html')).href);
    expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
    const panels = await panelStates(page);
    expect(panels.length).toBe(steps.length);
    for (const p of panels) if (p.canvases) expect(p.varied, `panel ${p.step} (${p.kind}) has only blank maps`).toBeGreaterThan(0);
    // Images (input, Grad-CAM overlay) decoded.
    const images = await page.evaluate(() => Array.from(document.images).map((i) => i.complete && i.naturalWidth > 0));
    expect(images.length).toBeGreaterThanOrEqual(3);
    expect(images.every(Boolean)).toBe(true);

    // ECA's gate: one bar per channel, heights from the step's attention weights.
    const gate = steps.find((s) => s.attention)!;
    expect(gate).toBeDefined();
    const bars = await page.locator(`#layer-${gate.index} .att span`).count();
    expect(bars).toBe(gate.attention!.length);

    // The class selector switches the Grad-CAM overlay and the gradient bars.
    const before = await page.locator('#cam-overlay').getAttribute('src');
    const other = data.cams[1]!.classIndex;
    await page.selectOption('#class-select', String(other));
    expect(await page.locator('#cam-overlay').getAttribute('src')).toBe(data.cams[1]!.overlay);
    expect(data.cams[1]!.overlay).not.toBe(before);
    const norms = data.gradients.find((g) => g.classIndex === other)!.layers;
    expect(await page.locator('#gradients .gbar').count()).toBe(norms.length);
    expect(norms.every((l) => Number.isFinite(l.norm) && l.norm >= 0) && norms.some((l) => l.norm > 0)).toBe(true);
    // Back to the predicted class for the picture.
    await page.selectOption('#class-select', String(data.predicted));
    expect(await page.locator('#cam-overlay').getAttribute('src')).toBe(before);
    await page.locator('#explain').screenshot({ path: join(SHOTS, 'gradcam.png') });

    // Clicks: the stem conv, a depthwise conv, the ECA gate and the last layer (logits).
    const stem = steps.findIndex((s) => s.kind === 'conv');
    const dw = steps.findIndex((s) => s.kind === 'depthwise_conv');
    const last = steps.length - 1;
    for (const [step, canvas, fx, fy] of [[dw, 1, 0.6, 0.4], [gate.index, 3, 0.2, 0.8], [last, 0, 0.75, 0.5], [stem, 0, 0.45, 0.4]] as const) {
      const shown = await clickElement(page, step, canvas, fx, fy);
      expectArithmetic(steps, step, shown);
      if (step === dw) {
        // The depthwise window (one channel, 3×3) is outlined on the maps of the layer that produced its input.
        const src = steps.filter((q) => q.index < dw && q.output === steps[dw]!.input).pop()!;
        expect(await page.locator(`#layer-${src.index} .marker.input-window`).count()).toBe(1);
        await page.locator(`#layer-${src.index}`).scrollIntoViewIfNeeded();
        await page.screenshot({ path: join(SHOTS, 'window.png') });
      }
      if (step === stem) await page.locator(`#layer-${step}`).screenshot({ path: join(SHOTS, 'arithmetic.png') });
    }
    await page.locator(`#layer-${gate.index}`).screenshot({ path: join(SHOTS, 'attention.png') });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SHOTS, 'overview.png') });
    expect(errors).toEqual([]);
    await page.close();
    for (const f of ['overview.png', 'arithmetic.png', 'attention.png', 'gradcam.png']) expect(readFileSync(join(SHOTS, f)).subarray(1, 4).toString()).toBe('PNG');
  }, 60_000);
});

describe('explore: the static folder', () => {
  it('asks a file server for nothing but its four files (no favicon.ico 404 in the console)', async () => {
    const { pageHtml } = await import('../../src/explain/explorer/template.js');
    const html = pageHtml('t');
    expect(html).toContain('<link rel="icon" href="data:,">');
    expect([...html.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1])).toEqual(['style.css', 'data:,', 'data.js', 'explorer.js']);
  });

  it('explore --out --layer: the Grad-CAM of the chosen layer; an unknown one lists the valid ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightconv-explorer-cli-'));
    try {
      const image = join(PATCHES, readdirSync(PATCHES).sort()[0]!);
      const log = await runCommand(register, ['explore', TRAINED, '--image', image, '--out', dir, '--layer', 'features.3', '--classes', '1']);
      expect(log).toMatch(/wrote index\.html, style\.css, explorer\.js, data\.js/);
      const data = (await import('node:vm')).runInNewContext(readFileSync(join(dir, 'data.js'), 'utf8').replace(/^window\./, 'this.') + ';this.__LIGHTCONV_EXPLORER__', {}) as ExplorerData;
      expect(data.cams.map((c) => c.layer)).toEqual(['features.3']);
      // The loss beside the gradient bars is −log p of the class (float64, so a certain model's is not 0);
      // the two come from two runs of the graph (tape and plain): 1e-4 relative covers their round-off.
      const g = data.gradients[0]!;
      const want = -Math.log(data.probabilities[g.classIndex]!);
      expect(want).toBeGreaterThan(0);
      expect(Math.abs(g.loss - want)).toBeLessThanOrEqual(1e-4 * want + 1e-7);
      await expect(runCommand(register, ['explore', TRAINED, '--image', image, '--out', dir, '--layer', 'features.99'])).rejects.toThrow(/no layer 'features\.99'.*'features\.3'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('explore: a model without spatial maps', () => {
  it('shows gradient saliency where Grad-CAM has no layer to weight (an MLP)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lc-explore-mlp-'));
    try {
      const file = join(dir, 'mlp.onnx');
      const { exportOnnx } = await import('../../src/io/onnx/export.js');
      const { preprocessToMetadata } = await import('../../src/data/transforms.js');
      const { Flatten, Linear, Sequential } = await import('../../src/layers/layers.js');
      const raw = { inputSize: 8, resize: 8, crop: 8, channels: 3 as const, mean: [0, 0, 0], std: [1, 1, 1] };
      const image = { width: 8, height: 8, rgb: Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) % 256) };
      await exportOnnx(new Sequential(new Flatten(), new Linear(3 * 8 * 8, 3)), file, { input: [1, 3, 8, 8], metadata: { 'lightconv.classes': JSON.stringify(['a', 'b', 'c']), ...preprocessToMetadata(raw) } });
      const data = await explorerData(file, image);
      expect(data.cams.map((c) => c.method)).toEqual(['saliency', 'saliency', 'saliency']);
      // Asked for a layer, the page does not swap methods: the error names the problem.
      await expect(explorerData(file, image, { layer: 'nope' })).rejects.toThrow(ValueError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('explore: loopback only', () => {
  it('refuses any host but 127.0.0.1, ::1 and localhost, before doing any work', async () => {
    for (const h of ['127.0.0.1', '::1', 'localhost', '[::1]']) expect(() => checkLoopback(h)).not.toThrow();
    for (const h of ['0.0.0.0', '::', '192.168.1.10', 'example.org', '127.0.0.2']) expect(() => checkLoopback(h)).toThrow(ValueError);
    await expect(serveExplorer(new Map([['index.html', '']]), { host: '0.0.0.0' })).rejects.toThrow(/loopback address only.*'0\.0\.0\.0'/);
    // The CLI refuses before loading the model: a model path that is a real file but not ONNX would fail later.
    await expect(runCommand(register, ['explore', join(ROOT, 'package.json'), '--image', join(ROOT, 'tests/fixtures/explain/image.png'), '--host', '0.0.0.0'])).rejects.toThrow(ValueError);
  });
});
