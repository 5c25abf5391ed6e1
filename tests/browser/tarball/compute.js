// Runs in both Node and the browser, from the installed package: the same calls, so the runner
// (tests/browser/tarball.ts) can compare the browser's numbers with Node's. `fetchBytes(name)`
// returns a fixture file's bytes (fs in Node, fetch on the page).
import { IMAGENET_MEAN, IMAGENET_STD, SGD, Tensor, centerCrop, crossEntropy, decodeImage, lightCnn, resizeShorter, toTensor } from 'lightconv';
import { decodeTensor, loadOnnx, setThreads } from 'lightconv/onnx';

export async function compute(fetchBytes) {
  setThreads(1);
  const out = {};

  // The fixture model on its test input, and on the fixture photo through the image pipeline
  // (PNG decoding is pngjs in Node, fast-png in the browser build).
  const model = await loadOnnx(await fetchBytes('model.onnx'));
  const input = decodeTensor(await fetchBytes('test_data_set_0/input_0.pb'));
  const name = model.inputs[0].name;
  const y = (await model.run({ [name]: input }))[model.outputs[0].name];
  // One Tensor class whichever entry made it: lightconv/onnx's outputs are lightconv's Tensors.
  out.oneTensorClass = y instanceof Tensor;
  out.onnx = Array.from(y.dataSync());
  const img = decodeImage(await fetchBytes('image.png'));
  out.pixels = { width: img.width, height: img.height, sum: img.rgb.reduce((a, b) => a + b, 0), head: Array.from(img.rgb.subarray(0, 12)) };
  const x = toTensor(centerCrop(resizeShorter(img, 37), 32, 32), { mean: IMAGENET_MEAN, std: IMAGENET_STD }).reshape([1, 3, 32, 32]);
  out.photo = Array.from((await model.run({ [name]: x }))[model.outputs[0].name].dataSync());
  // Two threads (a Web Worker on shared WebAssembly memory in the browser, which needs the page
  // cross-origin isolated; worker_threads in Node) split the same work: the same bits as one.
  setThreads(2);
  const y2 = Array.from((await model.run({ [name]: input }))[model.outputs[0].name].dataSync());
  out.twoThreadsSame = y2.every((v, i) => Object.is(v, out.onnx[i]));
  setThreads(1);

  // One training step of a small native CNN: forward in train mode (BN batch statistics, seeded
  // dropout), cross-entropy, backward, SGD with momentum; then the loss and the updated model.
  const net = lightCnn({ numClasses: 3, resolution: 16, hidden: 8, seed: 1 });
  const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9 });
  const batch = Tensor.rand([4, 3, 16, 16], { seed: 3, low: -1, high: 1 });
  net.train();
  opt.zeroGrad();
  const loss = crossEntropy(net.forward(batch), [0, 2, 1, 2]);
  loss.backward();
  opt.step();
  out.loss = loss.dataSync()[0];
  out.firstWeights = Array.from(net.parameters()[0].dataSync().subarray(0, 16));
  net.train(false);
  out.evalLogits = Array.from(net.forward(batch).dataSync());
  return out;
}
