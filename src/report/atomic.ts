/** Writes that never leave a half-written file: a temporary file beside the target, then rename. */
import { LightconvError } from '../core/errors.js';

/** A temporary name beside `path`, unique to this process and call. */
export function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Writes each file to a temporary file beside it, then renames them over their targets once all
 * are written. On failure the temporary files are removed and an existing target is left as it
 * was (a rename replaces a file whole or not at all).
 */
export async function writeFilesAtomic(files: Array<{ path: string; data: string | Uint8Array }>): Promise<void> {
  const fs = await import('node:fs/promises');
  const nodePath = await import('node:path');
  const tmps = files.map((f) => tempName(f.path));
  let current = files[0]?.path ?? '';
  try {
    for (const f of files) await fs.mkdir(nodePath.dirname(f.path), { recursive: true });
    for (let i = 0; i < files.length; i++) {
      current = files[i]!.path;
      await fs.writeFile(tmps[i]!, files[i]!.data);
    }
    for (let i = 0; i < files.length; i++) {
      current = files[i]!.path;
      await fs.rename(tmps[i]!, files[i]!.path);
    }
  } catch (err) {
    await Promise.all(tmps.map((t) => fs.rm(t, { force: true }))).catch(() => {});
    const e = err as NodeJS.ErrnoException;
    throw new LightconvError(`cannot write ${current}: ${e.code ? `${e.code}: ` : ''}${e.message}`);
  }
}
