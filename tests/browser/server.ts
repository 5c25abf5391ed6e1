import { readFile, stat } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

/**
 * A small static server on 127.0.0.1 for the browser test: `/` is the page, `/page.js` its
 * script, `/lib/*` the built ESM bundle, `/gpu.js/*` gpu.js's browser build and `/fixture/*` the
 * repo's model fixtures; `generated` adds small in-memory files (the case list). Only GET, only
 * files under those roots. Every response makes the page cross-origin isolated (COOP + COEP),
 * which SharedArrayBuffer, a shared WebAssembly memory and its Web Workers need.
 */
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
};

export async function serve(roots: Record<string, string>, generated: Record<string, string> = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      if (Object.hasOwn(generated, path)) {
        res.writeHead(200, { ...ISOLATION, 'content-type': TYPES[extname(path)] ?? 'text/plain', 'cache-control': 'no-store' });
        res.end(generated[path]);
        return;
      }
      const file = resolveFile(roots, path === '/' ? '/index.html' : path);
      if (req.method !== 'GET' || !file || !(await stat(file)).isFile()) throw new Error('not found');
      res.writeHead(200, { ...ISOLATION, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404, ISOLATION).end('not found');
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(() => ok())) };
}

function resolveFile(roots: Record<string, string>, path: string): string | undefined {
  for (const [prefix, dir] of Object.entries(roots)) {
    if (prefix !== '/' && !path.startsWith(prefix)) continue;
    const rest = prefix === '/' ? path : path.slice(prefix.length - 1);
    const full = normalize(join(dir, rest));
    if (full === dir || full.startsWith(dir.endsWith(sep) ? dir : dir + sep)) return full;
  }
  return undefined;
}
