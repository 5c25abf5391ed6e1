import { OnnxError } from '../../core/errors.js';
import type { ExternalReader } from './tensor_proto.js';

/**
 * External tensor data, read only from plain files inside the model's own folder: no absolute
 * locations, no `..`, no symlinks, and offset + length within the file. A model file must not
 * be able to read anything else on the machine.
 */
export async function externalReader(modelPath: string): Promise<ExternalReader> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const dir = fs.realpathSync(path.dirname(path.resolve(modelPath)));
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
    if (!st || !st.isFile()) throw fail('is not a regular file');
    if (offset + length > st.size) {
      throw fail(`is ${st.size} bytes, too short for offset ${offset} + length ${length}`);
    }
    const out = new Uint8Array(length);
    const fd = fs.openSync(file, 'r');
    try {
      let done = 0;
      while (done < length) {
        const got = fs.readSync(fd, out, done, length - done, offset + done);
        if (got === 0) throw fail('ended early');
        done += got;
      }
    } finally {
      fs.closeSync(fd);
    }
    return out;
  };
}
