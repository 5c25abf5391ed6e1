// A Tensor made through require() runs in a model loaded through import(): the .cjs entries load
// the ES module build (require(esm)), so there is one Tensor class, one backend and one kernel memory.
const lc = require('lightconv');
const [model, digits] = process.argv.slice(2);
import('lightconv/onnx').then(async (esm) => {
  if (esm.Tensor !== lc.Tensor) throw new Error('require and import give two Tensor classes');
  const m = await esm.loadOnnx(model);
  const out = await m.run(lc.Tensor.zeros([1, 1, 32, 32]));
  const y = Object.values(out)[0];
  if (!(y instanceof lc.Tensor) || y.shape.join() !== `1,${digits}`) throw new Error(`unexpected output ${y && y.shape}`);
  m.dispose();
  console.log('one Tensor class through require and import');
});
