/**
 * A test-only entry of the browser bundle (built next to lightconv/onnx and lightconv/gpu, so
 * it shares their module instances): the WebAssembly pool's internals, which no public entry
 * exports.
 */
export { runtime } from '../../src/kernels/wasm/runtime.js';
export { tuning } from '../../src/kernels/wasm/pool.js';
