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
    sourcemap: true,
    clean: true,
    target: 'es2022',
    splitting: true,
    treeshake: true,
  },
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
    // The shebang comes from src/cli/main.ts; esbuild keeps it at the top of the bundle.
  },
]);
