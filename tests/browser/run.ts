/**
 * The browser test (`npm run test:browser`): builds the browser-safe ESM entries with the
 * project's tsup settings, serves them from 127.0.0.1 with a small page, opens the page in
 * headless Chromium (Debian's `chromium`, driven by playwright-core; no browser is downloaded)
 * and runs ONNX test-layout cases through the GPU backend on WebGL2, checking every output
 * against its reference: the repo's model fixtures (MobileNetV3, EfficientNet, ECA variants),
 * plus ../shared/fixtures/tiny_* when that folder exists. Headless Chromium has no GPU here:
 * WebGL2 runs on SwiftShader (a software renderer), which the backend detects and reports — so
 * this proves the WebGL2 path correct, not fast.
 *
 * The page is cross-origin isolated (COOP/COEP headers): it also runs model fixtures on the CPU
 * backend's WebAssembly kernels with one thread and with two (a Web Worker on the shared
 * memory), checking identical bits, the reference, and that the worker ran chunks.
 *
 * Options: --cases DIR (repeatable; case folders or roots searched recursively, replacing the
 * defaults), --mode webgl2|webgl (gpu.js mode, default webgl2), --chromium PATH (default
 * $CHROMIUM or /usr/bin/chromium), --timeout SECONDS,
 * --keep (leave the page served).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve, sep } from 'node:path';
import { chromium } from 'playwright-core';
import { findCases } from '../../src/cli/conformance.js';
import { EXCLUSIONS } from '../../src/cli/conformance_exclusions.js';
import { build, type Options } from 'tsup';
import config from '../../tsup.config.js';
import { serve } from './server.js';

const ROOT = resolve(import.meta.dirname, '../..');
const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const executablePath = opt('--chromium') ?? process.env.CHROMIUM ?? '/usr/bin/chromium';

/** The case folders to run, by root (each root is served under /fixture/<index>/). */
interface PageCase {
  /** Served path below /fixture/. */
  path: string;
  /** Per test data set: how many input_K.pb and output_K.pb files it has. */
  sets: { inputs: number; outputs: number }[];
  /** Whether it has a meta.json (with recommended_tolerance). */
  meta: boolean;
}

async function chooseCases(): Promise<{ roots: string[]; cases: PageCase[] }> {
  const given = args.flatMap((a, i) => (args[i - 1] === '--cases' ? [resolve(a)] : []));
  const shared = join(ROOT, '../shared/fixtures');
  const roots = given.length ? given : [join(ROOT, 'tests/fixtures/models'), ...(existsSync(shared) ? [shared] : [])];
  const cases: PageCase[] = [];
  for (const [i, root] of roots.entries()) {
    for (const dir of await findCases([root])) {
      const rel = relative(root, dir);
      // Defaults from ../shared: only the tiny_* models (the node tests run in `conformance --backend gpu`).
      if (!given.length && i > 0 && !/^tiny_/.test(rel)) continue;
      if (EXCLUSIONS[basename(dir)] || existsSync(join(dir, 'manifest.json'))) continue;
      const sets = readdirSync(dir)
        .filter((d) => /^test_data_set_\d+$/.test(d))
        .sort((a, b) => Number(a.slice(14)) - Number(b.slice(14)))
        .map((d) => {
          const files = readdirSync(join(dir, d));
          return { inputs: files.filter((f) => /^input_\d+\.pb$/.test(f)).length, outputs: files.filter((f) => /^output_\d+\.pb$/.test(f)).length };
        });
      cases.push({ path: `${i}/${rel.split(sep).join('/')}`, sets, meta: existsSync(join(dir, 'meta.json')) });
    }
  }
  return { roots, cases };
}

async function main(): Promise<number> {
  if (!existsSync(executablePath)) {
    console.error(`browser test: no Chromium at ${executablePath} (apt-get install -y chromium)`);
    return 1;
  }
  const out = mkdtempSync(join(tmpdir(), 'lightconv-browser-'));
  const lib = (Array.isArray(config) ? config[0] : config) as Options;
  await build({
    ...lib,
    // The browser-safe entries, with their dependencies bundled as an app's bundler would
    // (protobufjs is CommonJS); gpu.js comes from its own browser build on the page.
    entry: { onnx: join(ROOT, 'src/onnx.ts'), gpu: join(ROOT, 'src/gpu.ts'), testing: join(ROOT, 'tests/browser/testing.ts') },
    format: ['esm'],
    platform: 'browser',
    noExternal: [/^(?!gpu\.js$)/],
    outDir: out,
    dts: false,
    sourcemap: true,
    clean: true,
    silent: true,
    config: false,
  });
  const { roots, cases } = await chooseCases();
  if (cases.length === 0) {
    console.error('browser test: no cases found');
    return 1;
  }
  const server = await serve({
    '/lib/': out,
    '/gpu.js/': join(ROOT, 'node_modules/gpu.js/dist'),
    ...Object.fromEntries(roots.map((r, i) => [`/fixture/${i}/`, r])),
    '/': join(ROOT, 'tests/browser'),
  }, { '/cases.json': JSON.stringify(cases) });
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
      '--ignore-gpu-blocklist',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => {
      errors.push(String(e));
      console.error(`  page error: ${e}`);
    });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') console.error(`  page ${m.type()}: ${m.text().slice(0, 500)}`);
    });
    await page.goto(`${server.url}/?mode=${opt('--mode') ?? 'webgl2'}`);
    await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: Number(opt('--timeout') ?? 240) * 1000 });
    const r = (await page.evaluate(() => (window as { __result?: unknown }).__result)) as {
      pass: boolean;
      error?: string;
      info?: { mode: string; renderer: string | null; software: boolean };
      results?: { name: string; pass: boolean; error?: string; sets: { set: number; maxAbs: number; ms: number; pass: boolean; detail: string | null }[] }[];
      coverage?: Record<string, { gpu: number; cpu: number; reasons: string[] }>;
      stats?: { liveBuffers: number };
      messages?: string[];
    };
    if (r.error) console.error(r.error);
    if (r.info) console.log(`browser: ${await browser.version()}, gpu.js ${r.info.mode}, renderer ${r.info.renderer}${r.info.software ? ' (software)' : ''}`);
    for (const m of r.messages ?? []) console.log(`  ${m}`);
    for (const c of r.results ?? []) {
      const root = roots[Number(c.name.split('/')[0])];
      const name = root ? join(basename(root), c.name.split('/').slice(1).join('/')) : c.name;
      const sets = c.sets.map((s) => `set ${s.set} max abs ${s.maxAbs.toExponential(1)} ${s.ms.toFixed(0)} ms${s.detail ? ` (${s.detail})` : ''}`).join(', ');
      console.log(`${c.pass ? 'PASS' : 'FAIL'}  ${name}  ${c.error ?? sets}`);
    }
    const passed = (r.results ?? []).filter((c) => c.pass).length;
    console.log(`${passed} passed, ${(r.results ?? []).length - passed} failed (gpu.js ${r.info?.mode ?? '?'} in headless Chromium)`);
    if (r.coverage) console.log(`  ran on the GPU: ${Object.entries(r.coverage).map(([op, c]) => `${op} ${c.gpu}${c.cpu ? ` (+${c.cpu} on the CPU: ${c.reasons.join('; ')})` : ''}`).join(', ')}`);
    if (r.stats) console.log(`  live GPU buffers after the runs: ${r.stats.liveBuffers}`);
    for (const e of errors) console.error(`  page: ${e}`);
    console.log(r.pass ? 'browser test passed' : 'browser test FAILED');
    if (args.includes('--keep')) {
      console.log(`serving ${server.url} — Ctrl-C to stop`);
      await new Promise(() => {});
    }
    return r.pass ? 0 : 1;
  } finally {
    await browser.close();
    await server.close();
    rmSync(out, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
