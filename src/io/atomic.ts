import { LightconvError } from '../core/errors.js';

/**
 * The one way the library writes a file: nothing it saves can replace a good file with a
 * damaged one.
 *
 * Each file goes to a temporary file beside its target: every byte is written (short writes are
 * continued; a write that makes no progress is an error), the file is fsynced, its size on disk
 * is checked against the bytes meant (and an optional `verify` re-reads it, e.g. to check a
 * checksum), and only then is it renamed over the target and the folder fsynced so the rename
 * itself survives a crash. On any failure every temporary file is removed and the targets are
 * left exactly as they were (a rename replaces a file whole or not at all).
 *
 * Node only; `node:fs` is imported lazily so that modules importing this still load in browsers.
 */

/** The part of a FileHandle the writer uses (tests substitute failing ones). */
export interface AtomicFileHandle {
  write(data: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/** The file operations a save needs; `nodeAtomicIo()` gives node:fs's. */
export interface AtomicIo {
  open(path: string, flags: string, mode?: number): Promise<AtomicFileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, opts: { force: boolean }): Promise<void>;
  /** fsyncs a folder so that a rename in it is durable (may be a no-op where folders cannot be opened). */
  syncDir(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
}

export interface AtomicFile {
  path: string;
  data: string | Uint8Array;
  /** Called with the temporary file's bytes as read back from disk; throw to abort the save. */
  verify?: (bytes: Uint8Array) => void;
}

export interface AtomicOptions {
  /** Substitute file operations (tests inject short writes and failures). */
  io?: AtomicIo;
  /** Create missing folders (default true); false makes a missing folder an error. */
  mkdir?: boolean;
  /** Makes the error raised on failure (default LightconvError); the message says the target is unchanged. */
  error?: (message: string) => Error;
}

/** A temporary name beside `path`, unique to this process and call. */
export function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** What tempName appends to a target's file name: `.tmp-<pid>-<up to 8 base-36 characters>`. */
const TEMP_SUFFIX = /^\.tmp-(\d+)-[0-9a-z]{1,8}$/;

/** How old a temporary file of a dead process must be before a later save removes it. */
export const STALE_TEMP_MS = 10 * 60 * 1000;

/**
 * Removes temporary files that saves of `paths` killed midway left beside them: regular files
 * named exactly `<path>.tmp-<pid>-<id>` (tempName's pattern), last modified more than `maxAgeMs`
 * ago, whose process is no longer running. One listing per folder. Best effort: returns the
 * paths removed, never throws.
 */
export async function removeStaleTemps(paths: string | readonly string[], maxAgeMs = STALE_TEMP_MS): Promise<string[]> {
  const removed: string[] = [];
  const byDir = new Map<string, Map<string, string>>();
  for (const p of typeof paths === 'string' ? [paths] : paths) {
    const base = baseOf(p);
    const m = byDir.get(dirOf(p)) ?? byDir.set(dirOf(p), new Map()).get(dirOf(p))!;
    m.set(base, p.slice(0, p.length - base.length));
  }
  try {
    const fs = await import('node:fs/promises');
    const now = Date.now();
    for (const [dir, targets] of byDir) {
      for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
        const at = name.lastIndexOf('.tmp-');
        const prefix = at > 0 ? targets.get(name.slice(0, at)) : undefined;
        if (prefix === undefined) continue;
        const m = TEMP_SUFFIX.exec(name.slice(at));
        if (!m || alive(Number(m[1]))) continue;
        const full = prefix + name;
        const st = await fs.lstat(full).catch(() => undefined);
        if (!st?.isFile() || now - st.mtimeMs <= maxAgeMs) continue;
        await fs.rm(full, { force: true }).then(
          () => removed.push(full),
          () => undefined,
        );
      }
    }
  } catch {
    // Cleaning up is a courtesy; the save itself has succeeded.
  }
  return removed;
}

/** Whether a process with this id is running (EPERM: running, as another user). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function baseOf(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}

/** node:fs's operations, for `AtomicOptions.io` wrappers. */
export async function nodeAtomicIo(): Promise<AtomicIo> {
  const fs = await import('node:fs/promises');
  return {
    open: (p, f, m) => fs.open(p, f, m),
    rename: (a, b) => fs.rename(a, b),
    rm: (p, o) => fs.rm(p, o),
    mkdir: async (p) => void (await fs.mkdir(p, { recursive: true })),
    readFile: async (p) => new Uint8Array(await fs.readFile(p)),
    syncDir: async (p) => {
      // Windows cannot open a folder for fsync; its renames are journaled by NTFS.
      if (process.platform === 'win32') return;
      const fh = await fs.open(p, 'r');
      try {
        await fh.sync();
      } catch (e) {
        // Some file systems (certain FUSE and network mounts) refuse fsync on folders.
        if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EBADF'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      } finally {
        await fh.close();
      }
    },
  };
}

function dirOf(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i < 0 ? '.' : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** Writes all of `data` to `fh` from position 0, continuing after short writes. */
async function writeAll(fh: AtomicFileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, done);
    if (!(Number.isInteger(bytesWritten) && bytesWritten > 0 && bytesWritten <= data.length - done)) {
      throw new Error(`write stopped after ${done} of ${data.length} bytes (wrote ${bytesWritten}; disk full?)`);
    }
    done += bytesWritten;
  }
}

/**
 * Writes each file through a temporary file, then renames all of them over their targets once
 * every one is written, synced and checked. Throws (`opts.error`, default LightconvError) naming
 * the file and the cause; the targets are then unchanged and no temporary file is left.
 */
export async function writeFilesAtomic(files: readonly AtomicFile[], opts: AtomicOptions = {}): Promise<void> {
  const io = opts.io ?? (await nodeAtomicIo());
  const enc = new TextEncoder();
  const tmps = files.map((f) => tempName(f.path));
  const made: string[] = [];
  let current = files[0]?.path ?? '';
  try {
    const dirs = [...new Set(files.map((f) => dirOf(f.path)))];
    if (opts.mkdir !== false) for (const d of dirs) await io.mkdir(d);
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      current = f.path;
      const data = typeof f.data === 'string' ? enc.encode(f.data) : f.data;
      // 'wx': never reuse (or follow a planted symlink at) an existing name.
      const fh = await io.open(tmps[i]!, 'wx', 0o666);
      made.push(tmps[i]!);
      try {
        await writeAll(fh, data);
        await fh.sync();
        const size = (await fh.stat()).size;
        if (size !== data.length) throw new Error(`${size} bytes on disk after writing ${data.length}`);
      } finally {
        await fh.close();
      }
      if (f.verify) {
        const back = await io.readFile(tmps[i]!);
        if (back.length !== data.length) throw new Error(`read back ${back.length} bytes, wrote ${data.length}`);
        f.verify(back);
      }
    }
    for (let i = 0; i < files.length; i++) {
      current = files[i]!.path;
      await io.rename(tmps[i]!, files[i]!.path);
      made.splice(made.indexOf(tmps[i]!), 1);
    }
  } catch (err) {
    await Promise.all(made.map((t) => io.rm(t, { force: true }).catch(() => undefined)));
    const e = err as NodeJS.ErrnoException;
    // ENOENT says the folder is missing only when it is: /proc exists, but refuses new files so.
    const missing = (e.code === 'ENOENT' || e.code === 'ENOTDIR') && opts.mkdir === false ? await folderProblem(dirOf(current)) : undefined;
    const why = missing ?? `${e.code && !e.message.includes(e.code) ? `${e.code}: ` : ''}${e.message}`;
    const msg = `cannot write ${current}: ${why}; any previous file there is unchanged`;
    throw opts.error ? opts.error(msg) : new LightconvError(msg);
  }
  // After the renames: the new files are in place, so a failure here must not claim otherwise.
  const dirs = [...new Set(files.map((f) => dirOf(f.path)))];
  for (const d of dirs) {
    try {
      await io.syncDir(d);
    } catch (err) {
      const msg = `wrote ${files.map((f) => f.path).join(', ')} but could not fsync the folder ${d} (${(err as Error).message}); a crash now may undo the save`;
      throw opts.error ? opts.error(msg) : new LightconvError(msg);
    }
  }
  // Temporary files of earlier saves of these targets that were killed midway.
  await removeStaleTemps(files.map((f) => f.path));
}

/** Why a file cannot be created in `dir`, if the folder itself is the problem: missing or not a folder. */
async function folderProblem(dir: string): Promise<string | undefined> {
  const { stat } = await import('node:fs/promises');
  try {
    const st = await stat(dir);
    return st.isDirectory() ? undefined : `${dir} is not a folder`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? `the folder ${dir} does not exist` : undefined;
  }
}

/** One file; see writeFilesAtomic. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicOptions & { verify?: (bytes: Uint8Array) => void } = {}): Promise<void> {
  await writeFilesAtomic([{ path, data, ...(opts.verify ? { verify: opts.verify } : {}) }], opts);
}
