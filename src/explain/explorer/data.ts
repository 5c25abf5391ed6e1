/**
 * What the explorer page receives from Node (the `data.js` beside its index.html): the model as
 * ONNX bytes and the preprocessed input, which the page runs through the engine itself (so any
 * output element's arithmetic can be shown), plus what needs the tape and is cheaper to do once in
 * Node: Grad-CAM overlays and the gradient magnitude per layer, for the most probable classes.
 */
export interface ExplorerData {
  version: 1;
  /** The model as the page names it (file name or architecture). */
  title: string;
  /** ONNX ModelProto bytes, base64. */
  model: string;
  /** The preprocessed image, [1, C, H, W] float32 (little-endian), base64. */
  input: { shape: number[]; data: string };
  /** What the model sees (the input de-normalised), PNG data URL. */
  image: string;
  /** How the image became the input, in words (resize, crop, normalisation). */
  preprocess: string;
  classes: string[];
  /** Per class, for this image. */
  probabilities: number[];
  predicted: number;
  /** Most probable first; the page's class selector offers these. */
  cams: ExplorerCam[];
  /** One entry per class in `cams`, same order. */
  gradients: ExplorerGradients[];
  /** Colour maps as 256 RGB triples: feature maps and the CAM legend. */
  lut: { maps: number[]; cam: number[]; mapsName: string; camName: string };
}

export interface ExplorerCam {
  classIndex: number;
  className: string;
  probability: number;
  method: string;
  /** The layer whose maps were weighted. */
  layer: string | null;
  /** The CAM's largest value before scaling to 0…1: 0 when no region raised the class's score. */
  peak: number;
  /** The heat map blended over `image`, PNG data URL. */
  overlay: string;
}

export interface ExplorerGradients {
  classIndex: number;
  /** Cross-entropy of the image with this class as its label. */
  loss: number;
  /** Per layer with parameters, in execution order. */
  layers: { output: string; layer: string; norm: number; params: number }[];
}

export const DATA_GLOBAL = '__LIGHTCONV_EXPLORER__';
