/**
 * The package in the browser as a user gets it (`npm run test:browser:tarball`): `npm pack`, install
 * the tarball into an empty folder, bundle a small page (tests/browser/tarball/) from that install
 * with esbuild, Vite and webpack, each with no configuration beyond entry and output, serve each from
 * 127.0.0.1 cross-origin isolated, and open it in Debian's Chromium (playwright-core). The page
 * runs the fixture model (tests/fixtures/models/mnv3_mini) on its test input and on its photo
 * through PNG decoding and preprocessing, and one SGD step of a small native CNN; the same module
 * runs in Node from the same install, and the numbers must agree.
 *
 * Options: --tarball FILE (use this tarball instead of packing), --no-build (pack dist/ as it is,
 * without the `prepack` build: CI, right after scripts/pack-check.sh built it), --chromium PATH (default
 * $CHROMIUM or /usr/bin/chromium), --keep (leave the temp folder).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build as esbuild } from 'esbuild';
import { chromium } from 'playwright-core';
import { build as vite } from 'vite';
import webpack from 'webpack';
import { serve } from './server.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'tests/fixtures/models/mnv3_mini');
const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const executablePath = opt('--chromium') ?? process.env.CHROMIUM ?? '/usr/bin/chromium';

type Result = Record<string, unknown> & { error?: string };

/** Largest |a − b| over two number trees of the same structure (Infinity when they differ in shape). */
function maxDiff(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a === b ? 0 : Number.isNaN(a) || Number.isNaN(b) ? Infinity : Math.abs(a - b);
  if (typeof a === 'boolean' || typeof b === 'boolean') return a === b ? 0 : Infinity;
  if (Array.isArray(a) && Array.isArray(b)) return a.length !== b.length ? Infinity : Math.max(0, ...a.map((x, i) => maxDiff(x, b[i])));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.join() !== kb.join()) return Infinity;
    return Math.max(0, ...ka.map((k) => maxDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])));
  }
  return Infinity;
}

async function runPage(dir: string, browser: Awaited<ReturnType<typeof chromium.launch>>): Promise<Result> {
  const server = await serve({ '/fixture/': FIXTURE, '/': dir });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: 120_000 });
    const r = (await page.evaluate(() => (window as { __result?: unknown }).__result)) as Result;
    await page.close();
    if (errors.length) r.error = [r.error, ...errors].filter(Boolean).join('\n');
    return r;
  } finally {
    await server.close();
  }
}

async function main(): Promise<number> {
  if (!existsSync(executablePath)) {
    console.error(`tarball browser test: no Chromium at ${executablePath} (apt-get install -y chromium)`);
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'lightconv-tarball-'));
  try {
    let tgz = opt('--tarball');
    if (!tgz) {
      // npm pack runs `prepack` (the build) first: the tarball is what a publish would upload.
      const name = execFileSync('npm', ['pack', '--silent', ...(args.includes('--no-build') ? ['--ignore-scripts'] : []), '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
      tgz = join(work, name);
    }
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', resolve(tgz)], { cwd: app, stdio: 'inherit' });
    const src = join(app, 'src');
    cpSync(join(ROOT, 'tests/browser/tarball'), src, { recursive: true });

    // Node: the same module from the same install (the "node"/"import" conditions: dist/index.js).
    const { compute } = (await import(pathToFileURL(join(src, 'compute.js')).href)) as { compute: (f: (n: string) => Promise<Uint8Array>) => Promise<Result> };
    const node = await compute(async (n) => new Uint8Array(readFileSync(join(FIXTURE, n))));

    // The bundlers, each from the app folder, so 'lightconv' resolves in its node_modules (the
    // "browser" condition: dist/browser/).
    const bundles: Record<string, string> = {};
    bundles.esbuild = join(work, 'out-esbuild');
    await esbuild({ entryPoints: [join(src, 'main.js')], bundle: true, format: 'esm', platform: 'browser', minify: true, outdir: bundles.esbuild, absWorkingDir: app, logLevel: 'warning' });
    cpSync(join(src, 'index.html'), join(bundles.esbuild, 'index.html'));
    bundles.vite = join(work, 'out-vite');
    await vite({ root: src, configFile: false, logLevel: 'warn', build: { outDir: bundles.vite, emptyOutDir: true } });
    bundles.webpack = join(work, 'out-webpack');
    await new Promise<void>((ok, fail) =>
      webpack({ mode: 'production', context: app, entry: join(src, 'main.js'), output: { path: bundles.webpack, filename: 'main.js' }, performance: { hints: false } }, (err, stats) => {
        if (err || !stats || stats.hasErrors()) return fail(err ?? new Error(`webpack: ${stats?.toString('errors-only')}`));
        const warnings = stats.compilation.warnings;
        if (warnings.length) console.log(`webpack: ${warnings.length} warnings\n${warnings.map((w) => `  ${w.message.split('\n')[0]}`).join('\n')}`);
        ok();
      }),
    );
    // webpack's output is a classic script (its chunks find their URL from document.currentScript).
    writeFileSync(join(bundles.webpack, 'index.html'), readFileSync(join(src, 'index.html'), 'utf8').replace('type="module" ', 'defer '));

    const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking'] });
    let failed = 0;
    try {
      console.log(`browser: Chromium ${browser.version()}; Node ${process.version}`);
      for (const [bundler, dir] of Object.entries(bundles)) {
        const js = readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.js'));
        const bytes = js.reduce((a, f) => a + readFileSync(join(dir, String(f))).length, 0);
        const r = await runPage(dir, browser);
        if (r.error) {
          console.log(`FAIL  ${bundler}: ${r.error}`);
          failed++;
          continue;
        }
        const { isolated, ...numbers } = r;
        // Same JavaScript and WebAssembly on the same engine family, one thread on both sides: the
        // numbers are expected bit for bit. The tolerance only absorbs the last bits of Math.exp
        // and friends, which V8 may compute differently across versions (Node's vs Chromium's):
        // 1e-5 absolute on values of order 1–10.
        const d = maxDiff(numbers, node);
        const ok = d <= 1e-5 && numbers.oneTensorClass === true && numbers.twoThreadsSame === true && isolated === true;
        console.log(`${ok ? 'PASS' : 'FAIL'}  ${bundler}: ${js.length} JS files, ${(bytes / 1024).toFixed(1)} KiB; cross-origin isolated ${isolated}; one Tensor class ${numbers.oneTensorClass}; 2 threads = 1 thread ${numbers.twoThreadsSame}; max |browser − node| ${d}`);
        if (!ok) {
          failed++;
          console.log(`  browser: ${JSON.stringify(numbers).slice(0, 600)}\n  node:    ${JSON.stringify(node).slice(0, 600)}`);
        }
      }
      console.log(`  node: loss ${node.loss}, fixture output [${(node.onnx as number[]).slice(0, 3).map((v) => v.toFixed(4)).join(', ')}, …]`);
    } finally {
      await browser.close();
    }
    console.log(`${Object.keys(bundles).length - failed} passed, ${failed} failed (the installed tarball in Chromium)`);
    return failed ? 1 : 0;
  } finally {
    if (args.includes('--keep')) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
