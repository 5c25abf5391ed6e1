// Step through MobileNetV3-Small's first inverted-residual block (features.1) on one image: what each
// layer computed, in words and with the arithmetic of single output values, and its channel maps.
// The walk-through that uses it: docs/tutorial.md. Run, after training a model:
//   npx lightconv train --data datasets/ihc_patches --arch mobilenet_v3_small --input-size 64 --epochs 8 --folds 0 --explain 0 --out tutorial-run
//   npx tsx examples/first-block.ts tutorial-run/best.onnx datasets/ihc_patches/dab_positive/y024_x216.png tutorial-maps
import { Tensor, assemble, collectSteps, loadTrainedModel, preprocessImage, readImage, saveActivationMaps } from 'lightconv';

const [modelFile = 'tutorial-run/best.onnx', imageFile = 'datasets/ihc_patches/dab_positive/y024_x216.png', outDir = 'tutorial-maps'] = process.argv.slice(2);

// The trained ONNX file brings its classes and preprocessing; assemble() rebuilds the native
// network from it, so the steps follow torchvision's modules (features.1.block.0, …).
const trained = await loadTrainedModel(modelFile);
const net = await assemble(modelFile);
const p = trained.preprocess;
const x = new Tensor(preprocessImage(await readImage(imageFile), p), [1, p.channels, p.inputSize, p.inputSize]);

const steps = await collectSteps(net, x, { classes: trained.classes });
const show = (name: string) => {
  const s = steps.find((st) => st.name === name)!;
  console.log(`\n## ${s.layer}  [${s.input.shape.join('×')}] → [${s.output.shape.join('×')}]  ${s.macs.toLocaleString('en-US')} MACs  ${s.ms.toFixed(2)} ms`);
  console.log(s.explain());
  return s;
};
show('features.0');
for (const name of ['features.1.block.0.0', 'features.1.block.0.1', 'features.1.block.0.2', 'features.1.block.1', 'features.1.block.2.0', 'features.1.block.2.1', 'features.1']) show(name);

// One output value of the depthwise conv, of the SE block's first 1×1 conv and of the projection,
// recomputed from their inputs and weights.
console.log('\n## The arithmetic of single values');
for (const [name, index] of [['features.1.block.0.0', [0, 5, 7, 9]], ['features.1.block.1.fc1', [0, 2, 0, 0]], ['features.1.block.2.0', [0, 3, 7, 9]]] as const) {
  const a = steps.find((st) => st.name === name)!.at([...index]);
  console.log(`\n${name} at [${index.join(', ')}]:\n${a.text}`);
}

const { files } = await saveActivationMaps(net, x, outDir, { layers: ['features.0', 'features.1.block.0', 'features.1.block.1', 'features.1'], preprocess: p });
console.log(`\nwrote ${files.length} files to ${outDir}/`);

const y = steps.at(-1)!.output.f32();
console.log(`prediction: ${trained.classes[y[1]! > y[0]! ? 1 : 0]} (logits ${[...y].map((v) => v.toFixed(3)).join(', ')})`);
