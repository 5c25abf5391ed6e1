import { defineConfig } from 'tsup';
import { browserEntries, browserPlatform, dropBareChunkImports } from './scripts/browser-platform.js';
import { writeCjsWrappers } from './scripts/cjs-wrappers.js';

export default defineConfig([
  {
    // ESM: the three entries, the CLI and the loader's decode thread in one build, so the CLI
    // shares the library's chunks instead of carrying a second copy of it. decode_worker.js sits
    // beside index.js and cli.js, where `new URL('./decode_worker.js', import.meta.url)` finds it
    // from either. The shebang comes from src/cli/main.ts and stays at the top of cli.js.
    entry: { index: 'src/index.ts', onnx: 'src/onnx.ts', gpu: 'src/gpu.ts', cli: 'src/cli/main.ts', decode_worker: 'src/data/decode_worker.ts' },
    format: ['esm'],
    // gpu.js compiles the kernels in src/gpu/kernels from their source text: never minify (a
    // minifier rewrites them), and leave gpu.js (an optional peer) out of the bundle.
    minify: false,
    external: ['gpu.js'],
    dts: { entry: { index: 'src/index.ts', onnx: 'src/onnx.ts', gpu: 'src/gpu.ts' } },
    // ESM shims __filename/__dirname with a static node:path import, which browsers lack: code
    // under src uses import.meta.url, never those two.
    shims: true,
    // No source maps: they were over half the unpacked package, and the code ships unminified.
    sourcemap: false,
    // dist/browser is the browser build's, which cleans it itself (the builds run at the same time).
    clean: ['!browser/**', '!explorer_page.js', '!app_page.js'],
    target: 'es2022',
    splitting: true,
    treeshake: true,
    onSuccess: async () => writeCjsWrappers('dist', ['index', 'onnx', 'gpu']),
  },
  {
    // require(): the .cjs entries load the ES module build (require(esm), Node ≥ 20.19 / 22.12),
    // so one Tensor class, one backend registry and one kernel memory serve both ways of loading
    // the package. This build emits only the CommonJS-flavoured declarations (.d.cts) the
    // "require" condition's types point at; the runtime files are one-line wrappers the ES build writes.
    entry: { index: 'src/index.ts', onnx: 'src/onnx.ts', gpu: 'src/gpu.ts' },
    format: ['cjs'],
    external: ['gpu.js'],
    dts: { only: true },
    target: 'es2022',
  },
  {
    // The browser build (package.json exports, "browser" condition): the same entries with Node's
    // parts swapped out (scripts/browser-platform.ts), so bundlers take the package as installed
    // with no configuration. One ESM build, one file per source module (scripts/browser-platform.ts
    // says why): one Tensor class across the entries, and tree-shaking by module.
    entry: browserEntries({ index: 'src/index.ts', onnx: 'src/onnx.ts', gpu: 'src/gpu.ts' }),
    outDir: 'dist/browser',
    format: ['esm'],
    platform: 'browser',
    minify: false,
    external: ['gpu.js'],
    // Stubbed, not imported: only Node reaches them (progress bars on a terminal, PNG via zlib).
    noExternal: ['cli-progress', 'pngjs'],
    esbuildPlugins: [browserPlatform(['cli-progress', 'pngjs'])],
    // Keep `node:` on built-ins so the plugin above sees them (tsup strips it and marks them external).
    removeNodeProtocol: false,
    dts: false,
    shims: false,
    sourcemap: false,
    clean: true,
    // Quiet: its entry list (one per source module) and ~250 output files would flood the log.
    silent: true,
    target: 'es2022',
    splitting: true,
    onSuccess: async () => dropBareChunkImports('dist/browser'),
  },
  {
    // The page scripts of lightconv explore and lightconv app: the engine and each page in one
    // classic script, so a page also works opened from file:// (Chromium refuses module scripts
    // there). Found beside the library by src/explain/page_script.ts.
    entry: { explorer_page: 'src/explain/explorer/page.ts', app_page: 'src/app/page.ts' },
    format: ['iife'],
    platform: 'browser',
    outExtension: () => ({ js: '.js' }),
    minify: true,
    external: ['gpu.js'],
    noExternal: ['cli-progress', 'pngjs'],
    esbuildPlugins: [browserPlatform(['cli-progress', 'pngjs'])],
    removeNodeProtocol: false,
    dts: false,
    sourcemap: false,
    clean: false,
    target: 'es2022',
  },
]);
