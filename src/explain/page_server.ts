import { LightconvError, ValueError } from '../core/errors.js';

/** Serving a page the CLI writes (the explorer, the diagnosis app) on this machine only. */

const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

/**
 * A ValueError unless `host` is a loopback address: the pages show a model and images, for this
 * machine only.
 *
 * @example
 * ```ts
 * import { checkLoopback } from 'lightconv';
 *
 * checkLoopback('localhost'); // 'localhost'
 * checkLoopback('0.0.0.0'); // throws a ValueError
 * ```
 */
export function checkLoopback(host: string, what = 'explore'): string {
  if (!LOOPBACK.has(host.trim().toLowerCase())) {
    throw new ValueError(`${what} serves on the loopback address only (127.0.0.1, ::1 or localhost), not '${host}': the page shows your model and image to whoever can reach it. To share it, write it with --out DIR and publish that folder deliberately`);
  }
  return host.trim().toLowerCase() === '[::1]' ? '::1' : host.trim().toLowerCase();
}

/** Page files: name → contents. */
export type PageFiles = ReadonlyMap<string, string | Uint8Array>;

export interface ServeOptions {
  host?: string;
  /** 0: a free one. */
  port?: number;
  /** The command, for messages. */
  what?: string;
  /** Sent with every response (e.g. COOP/COEP for cross-origin isolation). */
  headers?: Record<string, string>;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  json: 'application/json',
  webmanifest: 'application/manifest+json',
  png: 'image/png',
  svg: 'image/svg+xml',
};

/** Serves the files on a loopback address; GET and HEAD only, no other paths. */
export async function servePage(files: PageFiles, opts: ServeOptions = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const what = opts.what ?? 'explore';
  const host = checkLoopback(opts.host ?? '127.0.0.1', what);
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ValueError(`${what}: --port must be an integer 0…65535, got ${opts.port}`);
  const { createServer } = await import('node:http');
  const extra = opts.headers ?? {};
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.slice(1) || 'index.html';
    const body = files.get(path);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || body === undefined) {
      res.writeHead(404, { ...extra, 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { ...extra, 'content-type': TYPES[path.split('.').pop()!] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => fail(new LightconvError(`${what}: cannot listen on ${host}:${port} (${e.code ?? e.message})`)));
    server.listen(port, host, ok);
  });
  const addr = server.address() as { port: number };
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${addr.port}/`,
    close: () =>
      new Promise((ok) => {
        server.close(() => ok());
        // A browser's keep-alive connections would otherwise hold the server open.
        server.closeAllConnections();
      }),
  };
}
