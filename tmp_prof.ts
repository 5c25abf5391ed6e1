import { Tensor } from './src/core/tensor.js';
import { Rng } from './src/core/rng.js';
import { mobileNetV3 } from './src/models/index.js';
import { crossEntropy } from './src/train/losses.js';
import { SGD } from './src/train/optim.js';
import * as K from './src/kernels/index.js';
import { batchNormTrainingCard } from './src/kernels/normalization.js';
const cards: any[] = [K.convCard, K.gemmCard, K.binaryCard, K.unaryCard, K.globalAveragePoolCard, K.reshapeCard, K.flattenCard, batchNormTrainingCard];
const tf = new Map<string, number>(); const tg = new Map<string, number>();
for (const c of cards) {
  const g = c.grad; if (g) c.grad = (...a: any[]) => { const t = performance.now(); const r = g(...a); const nm = c.name + (a[1]?.group > 1 ? "-dw" : a[0][1]?.shape[2] === 1 ? "-1x1" : ""); tg.set(nm, (tg.get(nm) ?? 0) + performance.now() - t); return r; };
  for (const k of ['cpu', 'reference']) { const f = c[k]; if (f) c[k] = (...a: any[]) => { const t = performance.now(); const r = f(...a); tf.set(c.name, (tf.get(c.name) ?? 0) + performance.now() - t); return r; }; }
}
const size = Number(process.argv[2] ?? 64);
const model = mobileNetV3('small', { numClasses: 1000 });
const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const x = Tensor.randn([16, 3, size, size], { seed: 1 });
const labels = Array.from({ length: 16 }, (_, i) => i);
for (let s = 0; s < 3; s++) {
  tf.clear(); tg.clear();
  const t0 = performance.now();
  opt.zeroGrad();
  const l = crossEntropy(model.forward(x), labels);
  const t1 = performance.now();
  l.backward();
  const t2 = performance.now();
  opt.step();
  const t3 = performance.now();
  console.log(`fwd ${(t1-t0).toFixed(0)} bwd ${(t2-t1).toFixed(0)} step ${(t3-t2).toFixed(0)}`);
}
console.log('fwd', [...tf].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', '));
console.log('grad', [...tg].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', '));
