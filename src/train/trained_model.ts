import { ValueError } from '../core/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/image.js';
import { type Preprocess, preprocessFromMetadata } from '../data/transforms.js';
import { type OnnxModel, loadOnnx } from '../io/onnx/model.js';

/** A model with what it needs to be used: its classes and its preprocessing (from the ONNX metadata). */
export interface TrainedModel {
  model: OnnxModel;
  file: string;
  classes: string[];
  preprocess: Preprocess;
  /** Whether classes and preprocessing came from the model's metadata (else defaults). */
  described: boolean;
}

/**
 * Loads an ONNX classifier with the classes and preprocessing that training stored in its
 * metadata (`lightconv.classes`, `lightconv.preprocess`). A model without them gets the
 * torchvision defaults for its declared input size and classes named by index.
 *
 * @example
 * ```ts
 * import { Tensor, loadTrainedModel, preprocessImage, readImage } from 'lightconv';
 *
 * const { model, classes, preprocess } = await loadTrainedModel('runs/exp1/model.onnx');
 * const x = preprocessImage(await readImage('lesion.png'), preprocess); // CHW float32
 * const input = new Tensor(x, [1, preprocess.channels, preprocess.inputSize, preprocess.inputSize]);
 * const logits = Object.values(await model.run(input))[0]!;
 * ```
 */
export async function loadTrainedModel(file: string): Promise<TrainedModel> {
  const model = await loadOnnx(file);
  const meta = Object.fromEntries(model.graph.metadata);
  const first = model.inputs[0];
  if (!first || model.inputs.length !== 1) throw new ValueError(`${file}: expected a classifier with one image input, got ${model.inputs.length} inputs`);
  const pre = preprocessFromMetadata(meta);
  const outShape = model.outputs[0]?.shape;
  const numClasses = typeof outShape?.[1] === 'number' ? outShape[1] : undefined;
  let classes: string[] | undefined;
  if (meta['lightconv.classes']) {
    try {
      const c = JSON.parse(meta['lightconv.classes']) as unknown;
      if (Array.isArray(c) && c.every((x) => typeof x === 'string')) classes = c;
    } catch {
      /* falls through to the error below */
    }
    if (!classes) throw new ValueError(`${file}: metadata 'lightconv.classes' is not a JSON list of names`);
  }
  if (classes && numClasses !== undefined && classes.length !== numClasses) throw new ValueError(`${file}: metadata names ${classes.length} classes but the model outputs ${numClasses}`);
  const [, c, h] = (first.shape ?? []).map((d) => (typeof d === 'number' ? d : undefined));
  const size = h ?? 224;
  const preprocess: Preprocess = pre ?? { inputSize: size, resize: Math.round(size / 0.875), crop: size, channels: c === 1 ? 1 : 3, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
  return { model, file, classes: classes ?? Array.from({ length: numClasses ?? 0 }, (_, i) => String(i)), preprocess, described: Boolean(pre && classes) };
}
