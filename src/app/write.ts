import { LightconvError, ValueError } from '../core/errors.js';
import { type PageFiles, checkLoopback, servePage } from '../explain/page_server.js';
import { pageScript } from '../explain/page_script.js';
import { APP_CSS, appHtml, serviceWorker } from './template.js';

/**
 * The diagnosis page (lightconv app): a static folder with the engine and the page (app.js), the
 * model (model.js, its ONNX bytes as base64 in a script, so the page also opens from file://,
 * where fetch() of a local file is refused) and a service worker that keeps the files for
 * offline use. The page runs the model, Grad-CAM included, in the browser.
 */

export { checkLoopback };

/** The global model.js sets. */
export const MODEL_GLOBAL = '__LIGHTCONV_APP_MODEL__';

/** Sent with every file so the page is cross-origin isolated: SharedArrayBuffer, so the WebAssembly kernels run threads. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/** The page's script: prebuilt (dist/app_page.js) when the package ships it, else bundled from src/app/page.ts. */
export function appScript(): Promise<string> {
  return pageScript('app', new URL('./app_page.js', import.meta.url), new URL('./page.ts', import.meta.url));
}

/** The page's files for the ONNX model at `modelPath`: index.html, style.css, app.js, model.js, sw.js. */
export async function appFiles(modelPath: string): Promise<Map<string, string>> {
  const { readRegularFile } = await import('../io/files.js');
  const bytes = await readRegularFile(modelPath);
  const { readOnnx } = await import('../io/onnx/model.js');
  let graph: Awaited<ReturnType<typeof readOnnx>>;
  try {
    graph = await readOnnx(bytes);
  } catch (e) {
    // The same typed error, naming the file (the decoder saw only bytes).
    if (e instanceof LightconvError && !e.message.includes(modelPath)) e.message = `${modelPath}: ${e.message}`;
    throw e;
  }
  const first = graph.inputs[0];
  if (graph.inputs.length !== 1 || first?.shape?.length !== 4) {
    throw new ValueError(`${modelPath}: the app needs a classifier with one image input [N, C, H, W], got ${graph.inputs.map((i) => `'${i.name}' ${JSON.stringify(i.shape ?? '?')}`).join(', ') || 'no inputs'}`);
  }
  const name = modelPath.split(/[\\/]/).pop() ?? modelPath;
  const model = `window.${MODEL_GLOBAL} = ${JSON.stringify({ name, bytes: Buffer.from(bytes).toString('base64') })};\n`;
  const files = new Map<string, string>([
    ['index.html', appHtml(name)],
    ['style.css', APP_CSS],
    ['app.js', await appScript()],
    ['model.js', model],
  ]);
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  for (const [k, v] of files) hash.update(k).update(v);
  files.set('sw.js', serviceWorker([...files.keys()], hash.digest('hex').slice(0, 16)));
  return files;
}

/** Writes the page for the ONNX model at `modelPath` into `outDir` (created if needed). */
export async function writeApp(modelPath: string, outDir: string): Promise<{ dir: string; files: string[] }> {
  const files = await appFiles(modelPath);
  const { writeFilesAtomic } = await import('../io/atomic.js');
  const { join, resolve } = await import('node:path');
  // Every file written whole, then all renamed in place: an interrupted write leaves the old page.
  await writeFilesAtomic([...files].map(([name, body]) => ({ path: join(outDir, name), data: body })));
  return { dir: resolve(outDir), files: [...files.keys()] };
}

/** Serves the page on a loopback address, cross-origin isolated (ISOLATION_HEADERS); port 0: a free one. */
export function serveApp(files: PageFiles, opts: { host?: string; port?: number } = {}): Promise<{ url: string; close: () => Promise<void> }> {
  return servePage(files, { ...opts, what: 'app', headers: { ...ISOLATION_HEADERS } });
}
