/**
 * The diagnosis page (lightconv app) in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core): written for the trained IHC patch classifier, served cross-origin isolated on
 * 127.0.0.1, a patch opened through the file input. The page's top class and probability must be
 * Node's (same engine, same model, same preprocessing), the Grad-CAM canvas drawn, the latency
 * shown; a second ONNX model dropped on the page must replace the classes; the page must load
 * again with the server gone (service worker). The screenshot goes to $APP_SCREENSHOTS (docs/app
 * for the README) or a temporary folder.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISOLATION_HEADERS, appFiles, serveApp, writeApp } from '../../src/app/write.js';
import { register } from '../../src/cli/app.js';
import { ValueError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { readImage } from '../../src/data/decode.js';
import { preprocessImage } from '../../src/data/transforms.js';
import { loadTrainedModel } from '../../src/train/trained_model.js';
import { runCommand } from '../helpers.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '../..');
const TRAINED = join(ROOT, 'tests/fixtures/explain/ihc_trained.onnx');
const SECOND = join(ROOT, 'tests/fixtures/explain/mnv3s.onnx');
const PATCHES = join(ROOT, 'datasets/ihc_patches/dab_positive');

/** Node's answer for an image: loadTrainedModel → preprocessImage → run → softmax of the logits. */
async function nodeAnswer(image: string): Promise<{ classes: string[]; index: number; probability: number }> {
  const tm = await loadTrainedModel(TRAINED);
  const p = tm.preprocess;
  const x = new Tensor(preprocessImage(await readImage(image), p), [1, p.channels, p.inputSize, p.inputSize]);
  const logits = Array.from(Object.values(await tm.model.run(x))[0]!.f32());
  // The fixture's graph ends in its Gemm (logits), so the probabilities are their softmax.
  expect(tm.model.graph.nodes.at(-1)!.opType).toBe('Gemm');
  const mx = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - mx));
  const sum = e.reduce((a, b) => a + b, 0);
  const probs = e.map((v) => v / sum);
  const index = probs.indexOf(Math.max(...probs));
  return { classes: tm.classes, index, probability: probs[index]! };
}

if (!existsSync(CHROMIUM)) console.warn(`app browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);

describe.skipIf(!existsSync(CHROMIUM))(`diagnosis page in headless Chromium (${CHROMIUM})`, () => {
  let browser: Browser;
  const temporary: string[] = [];
  let shots = '';
  beforeAll(async () => {
    shots = process.env.APP_SCREENSHOTS ? resolve(process.env.APP_SCREENSHOTS) : mkdtempSync(join(tmpdir(), 'lightconv-app-shots-'));
    if (!process.env.APP_SCREENSHOTS) temporary.push(shots);
    mkdirSync(shots, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
    for (const d of temporary) rmSync(d, { recursive: true, force: true });
  });

  it('classifies a patch as Node does, draws Grad-CAM and the latency, takes a dropped model, works offline', async () => {
    const patch = join(PATCHES, readdirSync(PATCHES).sort()[0]!);
    const want = await nodeAnswer(patch);
    const files = await appFiles(TRAINED);
    expect([...files.keys()].sort()).toEqual(['app.js', 'index.html', 'model.js', 'style.css', 'sw.js']);
    // Nothing from elsewhere: no URL with a scheme in the page's HTML (scripts, styles, fonts are the folder's own).
    expect(files.get('index.html')).not.toMatch(/(src|href)="(https?:)?\/\//);
    let server = await serveApp(files);
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const response = await page.goto(server.url);
      for (const [k, v] of Object.entries(ISOLATION_HEADERS)) expect(response!.headers()[k]).toBe(v);
      await page.waitForFunction(() => document.body.dataset.ready === '1' || document.body.dataset.error !== undefined, undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      expect(JSON.parse((await page.evaluate(() => document.body.dataset.classes))!)).toEqual(want.classes);

      await page.setInputFiles('#file-input', patch);
      await page.waitForFunction(() => document.body.dataset.runs === '1' || document.body.dataset.error !== undefined, undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
      const shown = await page.locator('#prediction').evaluate((e: HTMLElement) => ({ index: Number(e.dataset.classIndex), name: e.dataset.className, probability: Number(e.dataset.probability) }));
      expect(shown.index).toBe(want.index);
      expect(shown.name).toBe(want.classes[want.index]);
      // Same model, same pixels (lightconv's PNG decoder in both), same kernels: only a different
      // summation order (threads) may differ, far below 1e-4 on a probability.
      expect(Math.abs(shown.probability - want.probability)).toBeLessThanOrEqual(1e-4);
      expect(await page.locator('#probs .prob').count()).toBe(want.classes.length);

      // The Grad-CAM canvas holds more than one colour, for the top class.
      const cam = await page.locator('#cam-canvas').evaluate((c: HTMLCanvasElement) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) colours.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
        return { colours: colours.size, classIndex: Number(c.dataset.classIndex) };
      });
      expect(cam.classIndex).toBe(want.index);
      expect(cam.colours).toBeGreaterThan(16);
      const latency = await page.locator('#latency').evaluate((e: HTMLElement): Record<string, string> => ({ ...(e.dataset as Record<string, string>), text: e.textContent ?? '' }));
      for (const k of ['preprocess', 'inference', 'cam'] as const) expect(Number(latency[k])).toBeGreaterThan(0);
      expect(latency.text).toMatch(/preprocess [\d.]+ ms · inference [\d.]+ ms · Grad-CAM [\d.]+ ms/);
      // Cross-origin isolated: the WebAssembly kernels run worker threads.
      expect(Number(latency.threads)).toBeGreaterThan(1);

      // The class selector switches the overlay.
      const other = 1 - want.index;
      await page.selectOption('#class-select', String(other));
      await page.waitForFunction((c) => (document.getElementById('cam-canvas') as HTMLElement).dataset.classIndex === String(c), other);
      await page.selectOption('#class-select', String(want.index));
      await page.waitForFunction((c) => (document.getElementById('cam-canvas') as HTMLElement).dataset.classIndex === String(c), want.index);
      await page.screenshot({ path: join(shots, 'app.png'), fullPage: true });

      // The camera cannot run headless: the page says so instead of failing silently.
      await page.click('#camera-button');
      await page.locator('#camera-note').waitFor({ state: 'visible' });
      expect(await page.locator('#camera-note').textContent()).toMatch(/camera/i);

      // Offline: with the server gone, the service worker's copy loads the page and the model.
      await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
      await server.close();
      await page.reload();
      await page.waitForFunction(() => document.body.dataset.ready === '1' || document.body.dataset.error !== undefined, undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
      server = await serveApp(files);

      // Another ONNX model dropped on the page replaces the model and its classes (no metadata: by number).
      const bytes = readFileSync(SECOND).toString('base64');
      const dt = await page.evaluateHandle((b64) => {
        const bin = atob(b64);
        const u = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
        const d = new DataTransfer();
        d.items.add(new File([u], 'mnv3s.onnx', { type: 'application/octet-stream' }));
        return d;
      }, bytes);
      await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
      await page.waitForFunction(() => document.getElementById('model-name')!.textContent === 'mnv3s.onnx' || document.body.dataset.error !== undefined, undefined, { timeout: 20_000 });
      expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
      const classes = JSON.parse((await page.evaluate(() => document.body.dataset.classes))!) as string[];
      expect(classes).toEqual(['class 0', 'class 1', 'class 2', 'class 3', 'class 4']);
      expect(errors).toEqual([]);
      expect(readFileSync(join(shots, 'app.png')).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await context.close();
      await server.close();
    }
  }, 60_000);
});

describe('app: the written folder and the CLI', () => {
  it('writes the five files; refuses a host other than loopback before any work, and a model that is no image classifier', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightconv-app-'));
    try {
      const out = await runCommand(register, ['app', '--model', TRAINED, '--out', dir]);
      expect(out).toMatch(/wrote .*index\.html/);
      expect(readdirSync(dir).sort()).toEqual(['app.js', 'index.html', 'model.js', 'style.css', 'sw.js']);
      await expect(runCommand(register, ['app', '--model', join(ROOT, 'package.json'), '--host', '0.0.0.0'])).rejects.toThrow(/app serves on the loopback address only.*'0\.0\.0\.0'/);
      await expect(serveApp(new Map([['index.html', '']]), { host: '192.168.1.10' })).rejects.toThrow(ValueError);
      await expect(writeApp(join(ROOT, 'package.json'), dir)).rejects.toThrow(/package\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
