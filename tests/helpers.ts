import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { expect, vi } from 'vitest';
import { Rng } from '../src/core/rng.js';
import { Tensor } from '../src/core/tensor.js';

/**
 * Asserts |a − b| ≤ atol + rtol·|b| elementwise, with atol scaled to the largest |b|: float32
 * sums in another order than the float64 reference differ by round-off proportional to the
 * output's magnitude (and to the reduction length), not to each element's.
 */
export function expectClose(
  actual: Tensor | ArrayLike<number>,
  expected: Tensor | ArrayLike<number>,
  opts: { atol?: number; rtol?: number; what?: string } = {},
): void {
  const a = actual instanceof Tensor ? actual.dataSync() : actual;
  const b = expected instanceof Tensor ? expected.dataSync() : expected;
  if (actual instanceof Tensor && expected instanceof Tensor) {
    expect(actual.shape, `${opts.what ?? ''} shape`).toEqual(expected.shape);
  }
  expect(a.length, `${opts.what ?? ''} length`).toBe(b.length);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  const atol = (opts.atol ?? 1e-5) * Math.max(1, scale);
  const rtol = opts.rtol ?? 1e-4;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) {
      throw new Error(`${opts.what ?? 'values'} differ at ${i}: got ${x}, expected ${y} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** A seeded random float32 tensor in [-1, 1). */
export function randomTensor(shape: number[], seed: number): Tensor {
  return Tensor.rand(shape, { seed, low: -1, high: 1 });
}

export { Rng };

/** Runs a CLI command registered by `register` in-process and returns what it printed with console.log. */
export async function runCommand(register: (program: Command) => void, args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    await program.parseAsync(['node', 'lightconv', ...args]);
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

/**
 * A real full disk: a 1 MiB tmpfs mounted on a fresh folder, or null where mounting is not
 * permitted (it needs root or CAP_SYS_ADMIN; tests skip then). `unmount` removes it.
 */
export function mountSmallTmpfs(prefix: string): { dir: string; unmount: () => void } | null {
  if (process.platform !== 'linux') return null;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
