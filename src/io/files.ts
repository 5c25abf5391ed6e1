import { LightconvError, ResourceLimitError, ValueError } from '../core/errors.js';
import { fmtBytes, getLimits } from '../core/limits.js';

/**
 * The one way the library reads a file it is given (model, checkpoint, image, tensor file):
 * open first, then check the opened descriptor, so what is checked is what is read.
 *
 * - The file is opened non-blocking, so a FIFO (or a device) cannot hang the open; `fstat` on
 *   the descriptor then refuses anything that is not a regular file, before a byte is read.
 * - `noFollow` opens with O_NOFOLLOW where the platform has it: a symbolic link as the last
 *   component is refused instead of followed.
 * - The size is checked against a budget (default `maxModelBytes`) before the buffer is made,
 *   and exactly that many bytes are read (a file that shrinks meanwhile is an error).
 *
 * Errors are typed: `ValueError` for something that is not a regular file, `ResourceLimitError`
 * for one over budget, otherwise `LightconvError` (or what `error` makes) naming the path and
 * the system's error code. Messages never contain bytes of the file.
 *
 * Node only; node:fs is imported lazily (or passed in, for the synchronous variant).
 */

export interface RegularFileOptions {
  /** Refuse a symbolic link as the last path component (O_NOFOLLOW) instead of following it. */
  noFollow?: boolean;
  /** Largest size accepted, in bytes; default `getLimits().maxModelBytes`. */
  maxBytes?: number;
  /** Makes the error for a file that cannot be opened or read (default LightconvError). */
  error?: (message: string) => LightconvError;
}

type Fs = typeof import('node:fs');
type Stats = import('node:fs').Stats;

/** What a Stats describes, for messages. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function openFlags(fs: Fs, noFollow: boolean): number {
  const c = fs.constants;
  // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever.
  return c.O_RDONLY | (c.O_NONBLOCK ?? 0) | (noFollow ? (c.O_NOFOLLOW ?? 0) : 0);
}

function openFailure(path: string, e: NodeJS.ErrnoException, make: (m: string) => LightconvError, noFollow: boolean): LightconvError {
  const code = e.code ?? '';
  if (code === 'ELOOP' && noFollow) return new ValueError(`${path}: is a symbolic link, which is not followed here`);
  if (code === 'EISDIR') return new ValueError(`${path}: is a directory, not a regular file`);
  return make(`${path}: cannot read (${code || e.message})`);
}

/** Throws unless `st` is a regular file within the size budget. */
function checkStats(path: string, st: Stats, maxBytes: number): void {
  if (!st.isFile()) throw new ValueError(`${path}: is ${fileKind(st)}, not a regular file`);
  if (st.size > maxBytes) throw new ResourceLimitError(`${path}: file of ${fmtBytes(st.size)} is over the ${fmtBytes(maxBytes)} byte-buffer budget`);
}

/**
 * Opens `path` for reading and checks the descriptor (a regular file within the budget).
 * Returns the open FileHandle and its Stats; the caller closes it.
 */
export async function openRegularFile(path: string, opts: RegularFileOptions = {}): Promise<{ fh: import('node:fs/promises').FileHandle; stats: Stats }> {
  const [fs, fsp] = await Promise.all([import('node:fs'), import('node:fs/promises')]);
  const make = opts.error ?? ((m: string) => new LightconvError(m));
  let fh: import('node:fs/promises').FileHandle;
  try {
    fh = await fsp.open(path, openFlags(fs, opts.noFollow ?? false));
  } catch (e) {
    throw openFailure(path, e as NodeJS.ErrnoException, make, opts.noFollow ?? false);
  }
  try {
    const stats = await fh.stat();
    checkStats(path, stats, opts.maxBytes ?? getLimits().maxModelBytes);
    return { fh, stats };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Reads a whole regular file (see openRegularFile); never blocks on a FIFO, never reads past the budget. */
export async function readRegularFile(path: string, opts: RegularFileOptions = {}): Promise<Uint8Array> {
  const { fh, stats } = await openRegularFile(path, opts);
  const make = opts.error ?? ((m: string) => new LightconvError(m));
  try {
    const out = new Uint8Array(stats.size);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await fh.read(out, done, out.length - done, done);
      if (bytesRead === 0) throw make(`${path}: ended after ${done} of ${out.length} bytes (changed while being read?)`);
      done += bytesRead;
    }
    return out;
  } catch (e) {
    if (e instanceof LightconvError) throw e;
    throw make(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Synchronous openRegularFile with the caller's node:fs: returns the descriptor and its Stats; the caller closes it. */
export function openRegularFileSync(fs: Fs, path: string, opts: RegularFileOptions = {}): { fd: number; stats: Stats } {
  const make = opts.error ?? ((m: string) => new LightconvError(m));
  let fd: number;
  try {
    fd = fs.openSync(path, openFlags(fs, opts.noFollow ?? false));
  } catch (e) {
    throw openFailure(path, e as NodeJS.ErrnoException, make, opts.noFollow ?? false);
  }
  try {
    const stats = fs.fstatSync(fd);
    checkStats(path, stats, opts.maxBytes ?? getLimits().maxModelBytes);
    return { fd, stats };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Reads `length` bytes at `position` from an open descriptor, all of them or an error. */
export function readExactSync(fs: Fs, fd: number, length: number, position: number, fail: (done: number) => LightconvError): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const got = fs.readSync(fd, out, done, length - done, position + done);
    if (got === 0) throw fail(done);
    done += got;
  }
  return out;
}

/** Synchronous readRegularFile with the caller's node:fs (for decode workers). */
export function readRegularFileSync(fs: Fs, path: string, opts: RegularFileOptions = {}): Uint8Array {
  const make = opts.error ?? ((m: string) => new LightconvError(m));
  const { fd, stats } = openRegularFileSync(fs, path, opts);
  try {
    return readExactSync(fs, fd, stats.size, 0, (done) => make(`${path}: ended after ${done} of ${stats.size} bytes (changed while being read?)`));
  } catch (e) {
    if (e instanceof LightconvError) throw e;
    throw make(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  } finally {
    fs.closeSync(fd);
  }
}
