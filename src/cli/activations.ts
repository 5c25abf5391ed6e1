import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { fmtShape } from '../core/shape.js';
import { saveActivationMaps } from '../explain/activations.js';
import { inputPath, intArg, outputFolder } from './args.js';

const positiveInt = intArg(1);

const layerList = (v: string) => {
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('expected layer names separated by commas, e.g. features.1,features.4');
  return names;
};

/** Adds `activations`: per layer a PNG grid of the channel maps of one image, plus index.md. */
export function register(program: Command): void {
  program
    .command('activations')
    .description("draw each layer's channel maps for one image (a PNG grid per layer, each channel scaled to its own range) and an index.md")
    .requiredOption('--model <file.onnx>', 'an ONNX model (one written by lightconv train brings its preprocessing)', inputPath('--model'))
    .requiredOption('--image <file>', 'a PNG, JPEG or DICOM image', inputPath('--image'))
    .requiredOption('--out <dir>', 'folder for the PNGs and index.md', outputFolder('--out'))
    .option('--layers <a,b,…>', 'layers to draw: blocks such as features.1,features.4, or ONNX node names (default: every block with spatial maps)', layerList)
    .option('--max-channels <n>', 'channels per grid, the first ones', positiveInt, 64)
    .action(async (o: { model: string; image: string; out: string; layers?: string[]; maxChannels: number }) => {
      const { maps, files } = await saveActivationMaps(o.model, o.image, o.out, { ...(o.layers ? { layers: o.layers } : {}), maxChannels: o.maxChannels });
      for (const m of maps) console.log(`${m.layer.padEnd(24)} ${fmtShape(m.shape).padEnd(18)} ${m.shown}/${m.channels} channels${m.constant.length ? `, ${m.constant.length} constant` : ''}`);
      console.log(`wrote ${files.length - 1} PNGs and index.md to ${resolve(o.out)}/`);
    });
}
