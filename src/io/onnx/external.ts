import { OnnxError } from '../../core/errors.js';
import { fileKind, openRegularFileSync, readExactSync } from '../files.js';
import type { ExternalReader } from './tensor_proto.js';

/**
 * External tensor data, read only from plain files inside the model's own folder: no absolute
 * locations, no `..`, no symlinks, no hard links, and offset + length within the file. A model
 * file must not be able to read anything else on the machine.
 *
 * Checking a path and then opening it is a race (the file can be swapped for a symlink in
 * between), so the checks that matter are made on the opened descriptor: the file is opened
 * with O_NOFOLLOW (a symlink as the last component fails to open) and non-blocking (a FIFO
 * cannot hang the open), then `fstat` must show a regular file with one link and the same
 * device and inode as the path that was checked, and the descriptor's own path (from
 * /proc/self/fd on Linux, else the path's realpath) must lie inside the model's folder.
 */
export async function externalReader(modelPath: string): Promise<ExternalReader> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const dir = fs.realpathSync(path.dirname(path.resolve(modelPath)));
  const inside = (p: string) => p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
  return (location, offset, length, tensorName) => {
    const fail = (why: string) => new OnnxError(`${tensorName}: external data '${location}' ${why}`);
    if (location.includes('\0')) throw fail('contains a NUL byte');
    if (path.isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.startsWith('\\')) throw fail('is an absolute path');
    const parts = location.split(/[\\/]/);
    if (parts.includes('..')) throw fail("leaves the model's folder ('..')");
    const file = path.join(dir, ...parts);
    let st;
    let cur = dir;
    for (const part of parts.filter((p) => p && p !== '.')) {
      cur = path.join(cur, part);
      try {
        st = fs.lstatSync(cur);
      } catch {
        throw fail(`does not exist in ${dir}`);
      }
      if (st.isSymbolicLink()) throw fail('is (or passes through) a symbolic link');
    }
    if (!st || !st.isFile()) throw fail(`is ${st ? fileKind(st) : 'the folder itself'}, not a regular file`);

    let fd: number;
    let fst;
    try {
      ({ fd, stats: fst } = openRegularFileSync(fs, file, { noFollow: true, maxBytes: Number.MAX_SAFE_INTEGER, error: (m) => new OnnxError(m) }));
    } catch (e) {
      throw fail(`cannot be opened safely (${(e as Error).message.replace(`${file}: `, '')})`);
    }
    try {
      // The descriptor is what will be read: it must be the very file checked above.
      if (fst.dev !== st.dev || fst.ino !== st.ino) throw fail('changed between the check and the open (replaced while loading?)');
      if (fst.nlink !== 1) throw fail(`has ${fst.nlink} hard links; a hard link could name a file outside the folder`);
      let real: string;
      try {
        real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        real = fs.realpathSync(file);
      }
      if (!inside(real)) throw fail(`resolves outside the model's folder ${dir}`);
      if (offset + length > fst.size) throw fail(`is ${fst.size} bytes, too short for offset ${offset} + length ${length}`);
      return readExactSync(fs, fd, length, offset, () => fail('ended early'));
    } finally {
      fs.closeSync(fd);
    }
  };
}
