import { readOnnx } from '../../src/io/onnx/model.js';
import { assembleGraph } from '../../src/io/onnx/assemble.js';
import { decodeTensor } from '../../src/io/onnx/tensor_proto.js';
import { noGrad } from '../../src/core/autograd.js';
import { readFileSync } from 'node:fs';
for (const d of process.argv.slice(2)) {
  try {
    const g = await readOnnx(d + '/model.onnx');
    const { net, report } = assembleGraph(g, d);
    for (const set of ['test_data_set_0', 'test_data_set_1']) {
      const x = decodeTensor(new Uint8Array(readFileSync(`${d}/${set}/input_0.pb`)));
      const ref = decodeTensor(new Uint8Array(readFileSync(`${d}/${set}/output_0.pb`)));
      const t0 = performance.now();
      const y = noGrad(() => net.forward(x));
      let m = 0; const a = y.dataSync(), b = ref.dataSync();
      for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
      console.log(d, report.family, report.bnNodes, set, y.shape, 'maxabs', m.toExponential(2), (performance.now()-t0).toFixed(0), 'ms');
    }
  } catch (e) { console.log(d, 'ERR', (e as Error).name, (e as Error).message); }
}
