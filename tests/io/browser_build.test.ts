import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { browserPlatform } from '../../scripts/browser-platform.js';

// The browser build's platform swap (scripts/browser-platform.ts, used by tsup.config.ts for
// dist/browser) on the library's own entries, in memory: no Node built-in, no pngjs, the browser
// PNG codec in its place, and stubs that fail by name. The real bundlers (esbuild, Vite, webpack)
// on the packed package run in `npm run test:browser:tarball`.
describe('browser build', () => {
  it('bundles every entry for the browser with no Node built-in left', async () => {
    const r = await build({
      entryPoints: ['src/index.ts', 'src/onnx.ts', 'src/gpu.ts'],
      bundle: true,
      write: false,
      metafile: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      outdir: 'out',
      packages: 'external',
      logLevel: 'silent',
      plugins: [browserPlatform(['cli-progress', 'pngjs'])],
    });
    expect(r.errors).toEqual([]);
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('src/data/png.browser.ts');
    expect(inputs).not.toContain('src/data/png.ts');
    expect(inputs.filter((i) => i.startsWith('node-only:')).sort()).toEqual(expect.arrayContaining(['node-only:cli-progress', 'node-only:node:fs', 'node-only:node:fs/promises', 'node-only:node:worker_threads']));
    const imported = Object.values(r.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(imported.filter((p) => /^node:|^(fs|path|os|url|zlib|stream|util|worker_threads|pngjs|cli-progress)(\/|$)/.test(p))).toEqual([]);
    const text = r.outputFiles.map((f) => f.text).join('\n');
    expect(text).not.toMatch(/new URL\([^,()]+,\s*import\.meta\.url\)/);
  }, 60_000);

  it('makes a Node built-in a module whose functions throw a LightconvError naming them', async () => {
    const r = await build({
      stdin: { contents: `export { readFile } from 'node:fs/promises';`, resolveDir: '.', loader: 'js' },
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
      plugins: [browserPlatform([])],
    });
    const url = `data:text/javascript;base64,${Buffer.from(r.outputFiles[0]!.text).toString('base64')}`;
    const { readFile } = (await import(/* @vite-ignore */ url)) as { readFile: (p: string) => unknown };
    let err: unknown;
    try {
      readFile('x');
    } catch (e) {
      err = e;
    }
    // The stub bundles its own copy of the error class (a data: URL module), so it is checked by name.
    expect((err as Error | undefined)?.name).toBe('LightconvError');
    expect((err as Error).message).toMatch(/node:fs\/promises: readFile is Node-only and not in the browser build/);
  });
});
