import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LightconvError } from '../../src/core/errors.js';
import { STALE_TEMP_MS, removeStaleTemps, tempName, writeFileAtomic } from '../../src/io/atomic.js';

/**
 * Class 4 leftovers: a save into a folder that exists but refuses new files reports the real
 * error (not "the folder does not exist"), and temporary files left by a killed save are removed
 * by the next successful save of the same target — only exact matches of the writer's pattern,
 * only old ones, only of processes no longer running.
 */

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-atomic-gaps-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The id of a process that has exited (the writer's temp names carry their process's id). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;
const old = async (p: string, content = 'partial') => {
  await writeFile(p, content);
  const t = (Date.now() - STALE_TEMP_MS - 60_000) / 1000;
  await utimes(p, t, t);
  return p;
};

describe('ENOENT is "the folder does not exist" only when it does not', () => {
  it('a missing folder is named; a file as the folder is named; /proc reports the real error', async () => {
    await expect(writeFileAtomic(join(dir, 'none', 'm.onnx'), 'x', { mkdir: false })).rejects.toThrow(/the folder .*none does not exist/);
    await writeFile(join(dir, 'f'), 'x');
    await expect(writeFileAtomic(join(dir, 'f', 'm.onnx'), 'x', { mkdir: false })).rejects.toThrow(/cannot write .*\/f\/m\.onnx: .*\/f is not a folder; any previous file there is unchanged$/);
    if (existsSync('/proc/self') && process.platform === 'linux') {
      const err = await writeFileAtomic('/proc/m.onnx', 'x', { mkdir: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LightconvError);
      const msg = (err as Error).message;
      expect(msg).not.toMatch(/does not exist/);
      // The real cause: the system's code and the path it failed on.
      expect(msg).toMatch(/^cannot write \/proc\/m\.onnx: (ENOENT|EACCES|EPERM)\b.*\/proc\/m\.onnx\.tmp-/);
    }
  });
});

describe('temporary files of a killed save are removed by the next save of that target', () => {
  it('removes old ones of dead processes only, matching the exact pattern', async () => {
    const target = join(dir, 'model.onnx');
    const dead = deadPid();
    const stale = await old(`${target}.tmp-${dead}-abc123de`);
    const stale2 = await old(tempName(target).replace(`.tmp-${process.pid}-`, `.tmp-${dead}-`));
    const keep = [
      await old(`${target}.tmp-${dead}-abc123de.bak`), // not the pattern
      await old(`${target}.tmp-${dead}-ABC`), // upper case: not tempName's
      await old(`${target}.tmp-${process.pid}-zzzz`), // a live process (this one) may still be writing
      await old(join(dir, `other.onnx.tmp-${dead}-abc`)), // another target
      await old(`${target}x.tmp-${dead}-abc`), // another target sharing a prefix
    ];
    const recent = `${target}.tmp-${dead}-fresh1`;
    await writeFile(recent, 'recent'); // younger than STALE_TEMP_MS: perhaps a save in progress
    await mkdir(`${target}.tmp-${dead}-adir`);
    await utimes(`${target}.tmp-${dead}-adir`, 1, 1);

    await writeFileAtomic(target, 'new model');
    expect(await readFile(target, 'utf8')).toBe('new model');
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(stale2)).toBe(false);
    for (const k of [...keep, recent, `${target}.tmp-${dead}-adir`]) expect(existsSync(k), k).toBe(true);
    // And nothing of this save's own is left.
    expect((await readdir(dir)).filter((n) => n.startsWith(`model.onnx.tmp-${process.pid}-`) && n !== `model.onnx.tmp-${process.pid}-zzzz`)).toEqual([]);
  });

  it('a failed save removes nothing but its own temporary file', async () => {
    const target = join(dir, 'a.ckpt');
    const stale = await old(`${target}.tmp-${deadPid()}-k1`);
    await expect(writeFileAtomic(target, 'x', { verify: () => { throw new Error('bad'); } })).rejects.toThrow(/bad/);
    expect(existsSync(stale)).toBe(true);
    expect(await removeStaleTemps(target)).toEqual([stale]);
  });
});
