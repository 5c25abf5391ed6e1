import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { CAM_METHODS, type CamMethod, gradCam } from '../explain/cam.js';
import { COLORMAP_NAMES, type ColormapName, saveOverlay } from '../explain/overlay.js';
import { inputPath, outputFile } from './args.js';

const method = (v: string): CamMethod => {
  if (!(CAM_METHODS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${CAM_METHODS.join(', ')}`);
  return v as CamMethod;
};

const colormap = (v: string): ColormapName => {
  if (!(COLORMAP_NAMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${COLORMAP_NAMES.join(', ')}`);
  return v as ColormapName;
};

/** Adds `gradcam`: a class activation map of one image drawn over it (PNG with a colour bar). */
export function register(program: Command): void {
  program
    .command('gradcam')
    .description('where in an image the evidence for a class lies: Grad-CAM, Grad-CAM++, occlusion or gradient saliency, drawn over the image as a PNG with a colour bar')
    .requiredOption('--model <file.onnx>', 'an ONNX classifier (one written by lightconv train brings its classes and preprocessing)', inputPath('--model'))
    .requiredOption('--image <file>', 'a PNG, JPEG or DICOM image', inputPath('--image'))
    .requiredOption('--out <file.png>', 'the picture to write (.svg for the SVG instead)', outputFile('--out'))
    .option('--layer <name>', 'the layer whose maps are weighted: a module path such as features.12, or an ONNX node name (default: the last convolution with maps larger than 1×1)')
    .option('--class <name|index>', 'the class to explain (default: the predicted one)')
    .option('--method <method>', `${CAM_METHODS.join(', ')}`, method, 'gradcam')
    .option('--colormap <name>', COLORMAP_NAMES.join(', '), colormap, 'inferno')
    .action(async (o: { model: string; image: string; out: string; layer?: string; class?: string; method: CamMethod; colormap: ColormapName }) => {
      const cam = await gradCam(o.model, o.image, { method: o.method, ...(o.layer ? { layer: o.layer } : {}), ...(o.class !== undefined ? { target: o.class } : {}) });
      await saveOverlay(cam, o.image, o.out, { colormap: o.colormap });
      console.log(`${o.method}: class ${cam.classIndex} '${cam.className}' (probability ${cam.score.toFixed(3)})${cam.layer ? ` at layer ${cam.layer} (${cam.raw!.width}×${cam.raw!.height} maps)` : ''}`);
      // The last maps of a small input (the demo's 32 px) are 2×2: say how to get a finer map.
      if (cam.layer && !o.layer && Math.min(cam.raw!.width, cam.raw!.height) < 4) console.log(`the maps are coarse: an earlier layer (--layer) gives finer ones; \`lightconv activations\` lists each layer's map size`);
      console.log(`wrote ${resolve(o.out)}`);
    });
}
