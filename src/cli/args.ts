import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { LightconvError } from '../core/errors.js';

/**
 * Checks of command-line arguments, run while the command line is parsed — before a command
 * opens anything — so that a mistake gets one line naming the option, the path and the problem.
 */

/** Exit codes of the `lightconv` command (also listed in `lightconv --help` and the README). */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** An internal error: a bug, or a failure outside the input (out of memory, a crashed worker). */
  internal: 1,
  /** Bad input: a missing or unreadable file, a malformed model or image, an over-budget shape (a typed error). */
  badInput: 2,
  /** A usage error: unknown command or option, a missing or malformed option value. */
  usage: 64,
  /** Interrupted with Ctrl-C (training writes what was complete first). */
  interrupted: 130,
} as const;

/** A path named on the command line that cannot be used as given (missing, a folder, a FIFO…). */
export class InputPathError extends LightconvError {}

type Want = 'file' | 'folder' | 'file or folder';

function kindOf(st: import('node:fs').Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a folder';
  return 'not a regular file';
}

function statOrWhy(path: string): import('node:fs').Stats | string {
  try {
    return statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
    if (code === 'ENOTDIR') return 'does not exist (a part of the path is not a folder)';
    if (code === 'ELOOP') return 'is a loop of symbolic links';
    return `cannot be read (${code ?? (e as Error).message})`;
  }
}

/**
 * Throws an InputPathError unless `path` exists and is what the option needs: a regular file
 * (not a folder, FIFO, socket or device: reading one would hang or make no sense) or a folder.
 * `what` names the option, e.g. `--image`.
 */
export function checkInputPath(path: string, what: string, want: Want = 'file'): void {
  const fail = (why: string) => new InputPathError(`${what} ${path}: ${why}`);
  if (path === '') throw fail('empty path');
  const st = statOrWhy(path);
  if (typeof st === 'string') throw fail(st);
  if (st.isFile()) {
    if (want === 'folder') throw fail('is a file; expected a folder');
    return;
  }
  if (st.isDirectory()) {
    if (want === 'file') throw fail('is a folder; expected a file');
    return;
  }
  throw fail(`is ${kindOf(st)}, not a regular ${want === 'folder' ? 'folder' : 'file'}`);
}

/**
 * Throws an InputPathError unless a file can be written at `path`: its folder exists, and the
 * path is not a folder or a FIFO/device already (an existing regular file is replaced).
 */
export function checkOutputFile(path: string, what: string): void {
  const fail = (why: string) => new InputPathError(`${what} ${path}: ${why}`);
  if (path === '') throw fail('empty path');
  const st = statOrWhy(path);
  if (typeof st !== 'string') {
    if (st.isDirectory()) throw fail('is a folder; expected a file name');
    if (!st.isFile()) throw fail(`is ${kindOf(st)}; expected a regular file`);
    return;
  }
  const dir = dirname(resolve(path));
  const d = statOrWhy(dir);
  if (typeof d === 'string') throw fail(`its folder ${dir} ${d}`);
  if (!d.isDirectory()) throw fail(`${dir} is not a folder`);
}

/** Throws an InputPathError if `path` exists and is not a folder (a folder to write into, made if missing). */
export function checkOutputFolder(path: string, what: string): void {
  const st = statOrWhy(path);
  if (typeof st !== 'string' && !st.isDirectory()) throw new InputPathError(`${what} ${path}: exists and is not a folder`);
}

/** A commander parser for an option or argument naming a file (or folder) to read. */
export function inputPath(what: string, want: Want = 'file'): (v: string) => string {
  return (v) => {
    checkInputPath(v, what, want);
    return v;
  };
}

/** The same for a variadic argument (`<images...>`): each value checked, collected in order. */
export function inputPaths(what: string, want: Want = 'file'): (v: string, prev: string[] | undefined) => string[] {
  return (v, prev) => {
    checkInputPath(v, what, want);
    return [...(prev ?? []), v];
  };
}

/** The same for a repeatable option (`--input a.pb --input b.pb`). */
export function collectInputPaths(what: string, want: Want = 'file'): (v: string, prev: string[]) => string[] {
  return (v, prev) => {
    checkInputPath(v, what, want);
    return [...prev, v];
  };
}

/** A commander parser for a file to write (its folder must exist). */
export function outputFile(what: string): (v: string) => string {
  return (v) => {
    checkOutputFile(v, what);
    return v;
  };
}

/** A commander parser for a folder to write (made if missing; must not be a file). */
export function outputFolder(what: string): (v: string) => string {
  return (v) => {
    checkOutputFolder(v, what);
    return v;
  };
}

/** A commander parser for an integer in [min, max]; the message says what was expected. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`) : `an integer from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected ${range}`);
    }
    return n;
  };
}

/** A commander parser for a finite number, optionally bounded (`min` inclusive unless `above`). */
export function numberArg(opts: { min?: number; above?: number; max?: number } = {}): (v: string) => number {
  return (v) => {
    const n = v.trim() === '' ? NaN : Number(v);
    const ok = Number.isFinite(n) && (opts.min === undefined || n >= opts.min) && (opts.above === undefined || n > opts.above) && (opts.max === undefined || n <= opts.max);
    if (!ok) {
      const parts = [opts.min !== undefined ? `≥ ${opts.min}` : '', opts.above !== undefined ? `> ${opts.above}` : '', opts.max !== undefined ? `≤ ${opts.max}` : ''].filter(Boolean);
      throw new InvalidArgumentError(`expected a number${parts.length ? ` ${parts.join(' and ')}` : ''}`);
    }
    return n;
  };
}
