import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, type Plugin } from 'esbuild';

/**
 * The esbuild plugin behind the package's browser build (dist/browser, the "browser" condition of
 * package.json's exports), so that an app's bundler needs no configuration and meets no Node
 * built-in:
 * - a module `X.ts` with a sibling `X.browser.ts` is replaced by it (src/data/png.browser.ts);
 * - `new URL('./file', import.meta.url)` becomes `new URL('./file', String(import.meta.url))`;
 * - Node built-ins and the Node-only packages in `nodeOnly` become stubs exporting the same names,
 *   each a function that throws a LightconvError naming what is missing. The library imports them
 *   lazily inside functions that only Node reaches (reading files, worker threads, the plot
 *   rasteriser), so a page never calls a stub unless it asks for a file path.
 */
export function browserPlatform(nodeOnly: readonly string[]): Plugin {
  const errors = resolve(dirname(fileURLToPath(import.meta.url)), '../src/core/errors.ts');
  return {
    name: 'lightconv-browser-platform',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (!args.importer.includes(`${resolve('src')}/`)) return undefined;
        const swap = resolve(args.resolveDir, args.path.replace(/\.js$/, '.browser.ts'));
        return existsSync(swap) ? { path: swap } : undefined;
      });
      // `new URL('./file', import.meta.url)` names a file beside the Node build (the explorer's page
      // script); Vite and webpack would try to bundle it as an asset. String(…) hides the pattern.
      build.onLoad({ filter: /\/src\/.*\.ts$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        const pattern = /new URL\(([^,()]+),\s*import\.meta\.url\)/g;
        return pattern.test(text) ? { contents: text.replace(pattern, 'new URL($1, String(import.meta.url))'), loader: 'ts' } : undefined;
      });
      build.onResolve({ filter: /^[@a-z]/ }, (args) =>
        isBuiltin(args.path) || nodeOnly.includes(args.path) ? { path: args.path, namespace: 'node-only' } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'node-only' }, async (args) => {
        // The real module's export names, read here in Node, so every named import still links.
        const names = Object.keys(await import(args.path)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
        const lines = [
          `import { LightconvError } from ${JSON.stringify(errors)};`,
          `function stub(name) { return function () { throw new LightconvError(${JSON.stringify(`${args.path}: `)} + name + ' is Node-only and not in the browser build of lightconv (in the browser, pass bytes, not file paths)'); }; }`,
          ...names.map((n) => `export const ${n} = stub(${JSON.stringify(n)});`),
          `export default { ${names.join(', ')} };`,
        ];
        return { contents: lines.join('\n'), loader: 'js', resolveDir: dirname(errors) };
      });
    },
  };
}

/**
 * Every source module the given entries reach, as tsup entries (`core/tensor` → src/core/tensor.ts),
 * with a module's `.browser.ts` sibling in its place. Built as one entry each (with code
 * splitting), the browser build keeps the source's module structure: an app's bundler then drops
 * whole unused modules, with the dependencies they import (package.json: sideEffects false), where
 * one entry file holding the code of many modules would pull in every dependency they import.
 */
export function browserEntries(roots: Record<string, string>): Record<string, string> {
  const src = resolve('src');
  const { metafile } = buildSync({
    entryPoints: Object.values(roots),
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
    outdir: 'unused',
  });
  const entries: Record<string, string> = { ...roots };
  for (const input of Object.keys(metafile!.inputs)) {
    const file = resolve(input);
    if (!file.startsWith(`${src}/`) || !file.endsWith('.ts') || Object.values(roots).some((r) => resolve(r) === file)) continue;
    const swap = file.replace(/\.ts$/, '.browser.ts');
    const chosen = existsSync(swap) ? swap : file;
    entries[chosen.slice(src.length + 1).replace(/\.ts$/, '')] = chosen.slice(resolve('.').length + 1);
  }
  return entries;
}

/**
 * Removes the bare `import "./chunk-….js";` lines that code splitting leaves for evaluation order.
 * The package declares no side effects, so bundlers skip them anyway, and esbuild warns once per
 * line ("Ignoring this import because … was marked as having no side effects") in every app that
 * bundles the package; the chunks that are needed are still imported through their bindings.
 */
export function dropBareChunkImports(dir: string): void {
  for (const f of readdirSync(dir, { recursive: true })) {
    const file = join(dir, String(f));
    if (!file.endsWith('.js')) continue;
    const text = readFileSync(file, 'utf8');
    const out = text.replace(/^import "(\.\.?\/)+(?:[\w-]+\/)*chunk-\w+\.js";\n/gm, '');
    if (out !== text) writeFileSync(file, out);
  }
}
