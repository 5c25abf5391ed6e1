import type { Command } from 'commander';
import { appFiles, checkLoopback, serveApp, writeApp } from '../app/write.js';
import { inputPath, intArg, outputFolder } from './args.js';

/** Adds `app`: the diagnosis page (image in, top classes, Grad-CAM, latency), served on the loopback address or written to a folder. */
export function register(program: Command): void {
  program
    .command('app')
    .description('a diagnosis page for the browser: open an image (file, drop or camera) and see the top classes, the Grad-CAM overlay and the latency, with the model running in the browser (drop another ONNX model on it to switch); served cross-origin isolated on 127.0.0.1, or written as a static folder with --out. A research tool, not a diagnostic device')
    .requiredOption('--model <file>', 'the ONNX classifier to show, e.g. best.onnx from lightconv train or lightconv demo (brings its classes and preprocessing); no model is built in', inputPath('--model'))
    .option('--out <dir>', 'write the static page (index.html, app.js, model.js, style.css, sw.js) into this folder instead of serving it', outputFolder('--out'))
    .option('--port <n>', 'port to serve on (default: a free one)', intArg(0, 65535))
    .option('--host <address>', 'loopback address to serve on: 127.0.0.1 (default), ::1 or localhost; nothing else is accepted')
    .action(async (o: { model: string; out?: string; port?: number; host?: string }) => {
      // Refused before any work: the page shows the model and the images to whoever can reach it.
      const host = checkLoopback(o.host ?? '127.0.0.1', 'app');
      if (o.out) {
        const r = await writeApp(o.model, o.out);
        console.log(`wrote ${r.files.join(', ')} to ${r.dir}/ (serve the folder with COOP/COEP headers for threads, or open index.html: one thread, no camera)`);
        return;
      }
      const server = await serveApp(await appFiles(o.model), { host, ...(o.port !== undefined ? { port: o.port } : {}) });
      console.log(`app: ${server.url}  (Ctrl-C stops)`);
      await new Promise<void>((done) => {
        process.once('SIGINT', () => void server.close().then(done));
      });
    });
}
