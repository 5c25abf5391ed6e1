import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', onnx: 'src/onnx.ts', gpu: 'src/gpu.ts' },
    format: ['esm', 'cjs'],
    // gpu.js compiles the kernels in src/gpu/kernels from their source text: never minify (a
    // minifier rewrites them), and leave gpu.js (an optional peer) out of the bundle.
    minify: false,
    external: ['gpu.js'],
    dts: true,
    // import.meta.url in the CommonJS build (src/data/loader.ts finds its worker script by it).
    // Its ESM half shims __filename/__dirname with a static node:path import, which browsers lack:
    // code under src uses import.meta.url, never those two.
    shims: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    splitting: true,
    treeshake: true,
  },
  {
    // The loader's decode thread sits beside index.js and cli.js, where `new URL('./decode_worker.js',
    // import.meta.url)` finds it from either.
    entry: { cli: 'src/cli/main.ts', decode_worker: 'src/data/decode_worker.ts' },
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
    // The shebang comes from src/cli/main.ts; esbuild keeps it at the top of the bundle.
  },
]);
