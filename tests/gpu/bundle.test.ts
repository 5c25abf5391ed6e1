import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Options } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import config from '../../tsup.config.js';

/**
 * gpu.js compiles kernels from their source text, so the kernels must survive the build: this
 * builds the library entries with the project's own tsup settings (ESM), then runs ops through
 * the *built* GPU backend in gpu.js's cpu and webasm modes against the built reference kernels.
 * It also checks what the browser test relies on: the main bundle never imports gpu.js and no
 * bundle file imports a Node built-in statically.
 */
const ROOT = join(import.meta.dirname, '../..');
let out: string;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'lightconv-bundle-'));
  const lib = (Array.isArray(config) ? config[0] : config) as Options;
  await build({
    ...lib,
    entry: { index: join(ROOT, 'src/index.ts'), gpu: join(ROOT, 'src/gpu.ts') },
    format: ['esm'],
    outDir: out,
    dts: false,
    sourcemap: false,
    clean: true,
    silent: true,
    config: false,
    onSuccess: undefined, // the real build's step writes the require() wrappers into dist/
  });
}, 120_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the built ESM bundle', () => {
  it('keeps the kernels as readable functions (not minified)', () => {
    const text = readdirSync(out)
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(out, f), 'utf8'))
      .join('\n');
    expect(text).toContain('this.constants.cg');
    expect(text).toMatch(/function\s*\(x, wt, b\)/);
  });

  it('runs its GPU kernels (gpu.js reads the built source text) and matches the reference', async () => {
    const lib = await import(pathToFileURL(join(out, 'index.js')).href);
    const { gpu } = await import(pathToFileURL(join(out, 'gpu.js')).href);
    for (const mode of ['cpu', 'webasm']) {
      const g = await gpu({ mode, log: () => {} });
      const x = lib.Tensor.rand([1, 6, 9, 8], { seed: 1, low: -1, high: 1 });
      const w = lib.Tensor.rand([6, 1, 3, 3], { seed: 2, low: -1, high: 1 });
      const b = lib.Tensor.rand([6], { seed: 3 });
      const attrs = { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 6, activation: { kind: 'hard_swish' } };
      const ops = [
        (k: unknown) => lib.apply(lib.convCard, [x, w, b], attrs, k),
        (k: unknown) => lib.apply(lib.binaryCard, [x, b.reshape([6, 1, 1])], 'Mul', k),
        (k: unknown) => lib.apply(lib.globalAveragePoolCard, [x], undefined, k),
        (k: unknown) => lib.apply(lib.softmaxCard, [x], { axis: 1 }, k),
        (k: unknown) => lib.apply(lib.transposeCard, [x], { perm: [0, 2, 3, 1] }, k),
      ];
      for (const op of ops) {
        const got = op(g);
        const ref = op(lib.referenceBackend);
        expect(got.device, mode).not.toBeNull();
        const a = got.dataSync();
        const r = ref.dataSync();
        expect(a.length).toBe(r.length);
        for (let i = 0; i < r.length; i++) expect(Math.abs(a[i] - r[i])).toBeLessThan(1e-5);
        got.dispose();
      }
      expect(g.stats().liveBuffers).toBe(0);
      g.destroy();
    }
  });

  it('runs its GPU backward kernels from the built source text and matches the cards’ grad', async () => {
    const lib = await import(pathToFileURL(join(out, 'index.js')).href);
    const { gpu } = await import(pathToFileURL(join(out, 'gpu.js')).href);
    for (const mode of ['cpu', 'webasm']) {
      const g = await gpu({ mode, log: () => {} });
      const x = lib.Tensor.rand([2, 6, 9, 8], { seed: 1, low: -1, high: 1 }).requireGrad();
      const w = lib.Tensor.rand([6, 1, 3, 3], { seed: 2, low: -1, high: 1 }).requireGrad();
      const b = lib.Tensor.rand([6], { seed: 3 }).requireGrad();
      const attrs = { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 6, activation: { kind: 'hard_swish' } };
      const y = lib.convCard.cpu([x, w, b], attrs);
      const gOut = lib.Tensor.rand(y.shape, { seed: 4, low: -1, high: 1 });
      const got = g.grad(lib.convCard, [x, w, b], attrs, y, gOut);
      const ref = lib.convCard.grad([x, w, b], attrs, y, gOut);
      expect(got, mode).toBeDefined();
      got.forEach((t: { device: unknown; dataSync(): Float32Array; dispose(): void }, k: number) => {
        expect(t.device, mode).not.toBeNull();
        const a = t.dataSync();
        const r = ref[k].dataSync();
        for (let i = 0; i < r.length; i++) expect(Math.abs(a[i] - r[i])).toBeLessThan(1e-4);
        t.dispose();
      });
      expect(g.coverage()['Conv backward'].gpu).toBe(1);
      expect(g.stats().liveBuffers).toBe(0);
      g.destroy();
    }
  });

  it('keeps gpu.js out of the main bundle and Node built-ins out of static imports', () => {
    const files = readdirSync(out).filter((f) => f.endsWith('.js'));
    // The files the main entry loads statically, transitively.
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      const text = readFileSync(join(out, f), 'utf8');
      for (const m of text.matchAll(/^import\s[^;]*?from\s*["']\.\/([^"']+)["']/gm)) visit(m[1]!);
    };
    visit('index.js');
    // An import of any form (a mention in a list of externals is not one).
    for (const f of seen) expect(readFileSync(join(out, f), 'utf8'), f).not.toMatch(/(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']gpu\.js["']/);
    for (const f of files) expect(readFileSync(join(out, f), 'utf8'), f).not.toMatch(/^import\s[^;]*?from\s*["']node:/m);
  });
});
