import type { Command } from 'commander';
import { checkLoopback, explorerData, explorerFiles, serveExplorer, writeExplorer } from '../explain/explorer/write.js';
import { inputPath, intArg, outputFolder } from './args.js';

/** Adds `explore`: the explorer page for one model and image, served on the loopback address or written to a folder. */
export function register(program: Command): void {
  program
    .command('explore')
    .description('an interactive page of the network and one image: every layer\'s feature maps, SE/ECA attention, MACs and time, Grad-CAM per class, gradient magnitudes, and the arithmetic of any element you click; served on 127.0.0.1, or written as a static folder with --out')
    .argument('<model>', 'a model file written by lightconv train (brings its classes and preprocessing), or any ONNX classifier', inputPath('MODEL'))
    .requiredOption('--image <file>', 'a PNG, JPEG or DICOM image', inputPath('--image'))
    .option('--out <dir>', 'write the static page (index.html, explorer.js, data.js, style.css) into this folder instead of serving it', outputFolder('--out'))
    .option('--port <n>', 'port to serve on (default: a free one)', intArg(0, 65535))
    .option('--host <address>', 'loopback address to serve on: 127.0.0.1 (default), ::1 or localhost; nothing else is accepted')
    .option('--classes <n>', 'Grad-CAM and gradients for this many of the most probable classes', intArg(1), 10)
    .option('--layer <name>', 'the Grad-CAM layer: a module scope such as features.3, or an ONNX node name (default: the last convolution with maps larger than 1×1, which on small inputs can be 2×2)')
    .action(async (model: string, o: { image: string; out?: string; port?: number; host?: string; classes: number; layer?: string }) => {
      // Refused before any work: the page shows the model and the image to whoever can reach it.
      const host = checkLoopback(o.host ?? '127.0.0.1');
      if (o.out) {
        const r = await writeExplorer(model, o.image, o.out, { classes: o.classes, ...(o.layer ? { layer: o.layer } : {}) });
        console.log(`wrote ${r.files.join(', ')} to ${r.dir}/ (open index.html, or serve the folder)`);
        return;
      }
      const files = await explorerFiles(await explorerData(model, o.image, { classes: o.classes, ...(o.layer ? { layer: o.layer } : {}) }));
      const server = await serveExplorer(files, { host, ...(o.port !== undefined ? { port: o.port } : {}) });
      console.log(`explorer: ${server.url}  (Ctrl-C stops)`);
      await new Promise<void>((done) => {
        process.once('SIGINT', () => void server.close().then(done));
      });
    });
}
