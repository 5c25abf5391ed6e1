/**
 * The package's size report with budgets (`npm run size`, in CI after the pack check): the tarball
 * packed and unpacked, each entry file and the JavaScript it loads (its static import closure),
 * and minified + gzipped browser bundles of typical imports, built by esbuild from the package's
 * own exports ("browser" condition), as an app would. Any figure over its budget fails the run.
 * Budgets sit about 15 % above the sizes measured when they were set: room for ordinary growth,
 * and a jump (a dependency pulled into a browser bundle, a second copy of the library, source
 * maps back in the package) fails. Then publint and arethetypeswrong on the packed tarball; a
 * problem either reports fails the run too. Needs dist/ (`npm run build`).
 *
 *   --json FILE   also write the figures as JSON
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const KB = 1024;

/** Bytes: budget, with what was measured when it was set (Node 20, esbuild 0.27, no source maps). */
const BUDGETS: Record<string, number> = {
  'tarball packed': 3040 * KB, // 2643 KB (2453 before the operators below): dist 2.6 MB (+ dist/browser 1.1 MB), assets (fonts, rasteriser) 1.4 MB, datasets 0.8 MB unpacked
  'tarball unpacked': 7320 * KB, // 6368 KB; 5953 before the operators below (+7.6 MB with source maps, +0.8 MB with the CLI's own copy of the library)
  'source maps in the package': 0, // they were 7.6 of 14.2 MB unpacked (tsup.config.ts: sourcemap false)
  'dist/index.js + imports': 1140 * KB, // 993 KB (882 before the operators below)
  'dist/onnx.js + imports': 630 * KB, // 548 KB: every op the loader runs is reachable from it; 441 before Resize, ConvTranspose, Gelu, the selection, scatter, quantized and legacy ops
  'dist/gpu.js + imports': 345 * KB, // 299 KB
  'dist/cli.js + imports': 1205 * KB, // 1048 KB (925 before the operators), the library's chunks shared with dist/index.js
  'dist/browser/index.js + imports': 1190 * KB, // 1037 KB (916 before the operators)
  'dist/browser/onnx.js + imports': 650 * KB, // 566 KB (453 before the operators)
  'browser: { loadOnnx } from lightconv/onnx, min': 385 * KB, // 334 KB (276 before the operators)
  'browser: { loadOnnx } from lightconv/onnx, min+gz': 119 * KB, // 103.5 KB (82.7 before the operators)
  'browser: { Tensor, conv } from lightconv, min': 100 * KB, // 88.4 KB with Winograd and the blocked GEMM (72.5 before; 259 while the browser build was one file per entry)
  'browser: { Tensor, conv } from lightconv, min+gz': 35 * KB, // 31.3 KB (25.6 before; 80 KB then)
  'browser: one training step (lightCnn, SGD, crossEntropy), min': 148 * KB, // 129.7 KB (112.5 before Winograd, the blocked GEMM and optimizer-state checks)
  'browser: one training step (lightCnn, SGD, crossEntropy), min+gz': 52 * KB, // 46.2 KB (39.7 before)
  'browser: everything (export * from all three entries), min': 2720 * KB, // 2364 KB
  'browser: everything (export * from all three entries), min+gz': 840 * KB, // 728 KB
  'Node built-in imports in dist/browser (files)': 0,
};

/** A dist file and every file it loads through static imports (dynamic ones load on demand). */
function closure(entry: string): number {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s*["'](\.\.?\/[^"']+)["']|^import\s*["'](\.\.?\/[^"']+)["']/gm)) {
      const next = resolve(dirname(file), m[1] ?? m[2]!);
      if (existsSync(next)) visit(next);
    }
  };
  visit(join(ROOT, entry));
  return [...seen].reduce((a, f) => a + statSync(f).size, 0);
}

async function bundle(code: string): Promise<{ min: number; gz: number }> {
  // From the package root, 'lightconv' resolves to this package through its exports (self-reference).
  const r = await build({ stdin: { contents: code, resolveDir: ROOT, loader: 'js' }, bundle: true, format: 'esm', platform: 'browser', minify: true, write: false, logLevel: 'error' });
  const js = r.outputFiles[0]!.contents;
  return { min: js.length, gz: gzipSync(js, { level: 9 }).length };
}

async function main(): Promise<number> {
  if (!existsSync(join(ROOT, 'dist/index.js')) || !existsSync(join(ROOT, 'dist/browser/index.js'))) {
    console.error('size report: no dist/ (run `npm run build` first)');
    return 1;
  }
  const sizes: Record<string, number> = {};
  // What `npm publish` would upload, without building again (dist/ is taken as it is).
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
    size: number;
    unpackedSize: number;
    entryCount: number;
    files: { path: string; size: number }[];
  }[];
  sizes['tarball packed'] = pack!.size;
  sizes['tarball unpacked'] = pack!.unpackedSize;
  sizes['source maps in the package'] = pack!.files.filter((f) => f.path.endsWith('.map')).reduce((a, f) => a + f.size, 0);
  // Counted as a size so that it has a budget of 0: a Node built-in imported by the browser build.
  const builtin = /(?:from\s*|import\s*\(\s*)["'](?:node:[\w/]+|(?:fs|path|os|url|worker_threads|module|http|zlib|stream|util|events|readline|child_process)(?:\/promises)?)["']/;
  sizes['Node built-in imports in dist/browser (files)'] = readdirSync(join(ROOT, 'dist/browser'), { recursive: true }).filter((f) => String(f).endsWith('.js') && builtin.test(readFileSync(join(ROOT, 'dist/browser', String(f)), 'utf8'))).length;
  for (const e of ['dist/index.js', 'dist/onnx.js', 'dist/gpu.js', 'dist/cli.js', 'dist/browser/index.js', 'dist/browser/onnx.js']) sizes[`${e} + imports`] = closure(e);
  const typical: Record<string, string> = {
    '{ loadOnnx } from lightconv/onnx': `export { loadOnnx } from 'lightconv/onnx';`,
    '{ Tensor, conv } from lightconv': `export { Tensor, conv } from 'lightconv';`,
    'one training step (lightCnn, SGD, crossEntropy)': `export { lightCnn, SGD, crossEntropy, Tensor } from 'lightconv';`,
    // Every export of every entry: the whole browser graph must bundle (vega and the plot
    // rasteriser come in through the report functions).
    'everything (export * from all three entries)': `export * from 'lightconv'; export * as onnx from 'lightconv/onnx'; export * as gpu from 'lightconv/gpu';`,
  };
  for (const [name, code] of Object.entries(typical)) {
    const { min, gz } = await bundle(code);
    sizes[`browser: ${name}, min`] = min;
    sizes[`browser: ${name}, min+gz`] = gz;
  }

  const byDir = new Map<string, number>();
  for (const f of pack!.files) {
    const top = f.path.startsWith('dist/') ? f.path.split('/').slice(0, f.path.startsWith('dist/browser/') ? 2 : 1).join('/') : f.path.split('/')[0]!;
    byDir.set(top, (byDir.get(top) ?? 0) + f.size);
  }
  const fmt = (n: number) => `${(n / KB).toFixed(1)} KB`.padStart(11);
  console.log(`package: ${pack!.entryCount} files; unpacked by folder: ${[...byDir].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / KB).toFixed(0)} KB`).join(', ')}`);
  let over = 0;
  for (const [name, size] of Object.entries(sizes)) {
    const budget = BUDGETS[name];
    const bad = budget !== undefined && size > budget;
    if (bad) over++;
    const shown = name.endsWith('(files)') ? `${size}`.padStart(11) : fmt(size);
    const limit = budget === undefined ? 'none'.padStart(11) : name.endsWith('(files)') ? `${budget}`.padStart(11) : fmt(budget);
    console.log(`${bad ? 'OVER' : 'ok  '} ${shown}  budget ${limit}  ${name}`);
  }
  // The package's shape as publint (exports, files, fields) and arethetypeswrong (types under
  // node10, node16 from CJS and ESM, bundler) see it, on the same tarball contents.
  let lint = 0;
  const tmp = mkdtempSync(join(tmpdir(), 'lightconv-size-'));
  try {
    const tgz = join(tmp, execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!);
    for (const [name, cmd] of [['publint', ['publint', '--strict', tgz]], ['arethetypeswrong', ['attw', '--format', 'table-flipped', tgz]]] as const) {
      try {
        execFileSync('npx', ['--no-install', ...cmd], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        console.log(`ok   ${name}: no problems`);
      } catch (e) {
        lint++;
        const err = e as { stdout?: string; stderr?: string };
        console.log(`FAIL ${name}:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const json = process.argv.indexOf('--json');
  if (json >= 0) writeFileSync(process.argv[json + 1]!, JSON.stringify(sizes, null, 2));
  console.log(over ? `size report: ${over} over budget` : 'size report: all within budget');
  if (lint) console.log(`package checks: ${lint} failed`);
  return over || lint ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
