import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { register } from '../../src/cli/bench.js';
import { getThreads } from '../../src/core/threads.js';
import { runCommand } from '../helpers.js';

function bench(...args: string[]): Promise<string> {
  return runCommand(register, ['bench', ...args]);
}

const model = join(import.meta.dirname, '..', 'fixtures', 'models', 'effnet_mini', 'model.onnx');

describe('CLI: bench', () => {
  it('--json reports the fields benchmarkers script against, and a per-op profile that adds up', async () => {
    const j = JSON.parse(await bench(model, '--runs', '4', '--batch', '2', '--json', '--profile'));
    expect(j).toMatchObject({ backend: 'cpu', batch: 2, threads: 1, runs: 4, warmup: 3 });
    expect(j.median_ms).toBeGreaterThan(0);
    expect(j.min_ms).toBeLessThanOrEqual(j.median_ms);
    const ops = j.profile.map((p: { op: string }) => p.op);
    expect(ops).toContain('Conv');
    expect(ops).toContain('Conv (grouped)');
    // Node times are parts of the run: their medians cannot add up to much more than the run's.
    const sum = j.profile.reduce((a: number, p: { median_ms: number }) => a + p.median_ms, 0);
    expect(sum).toBeLessThan(1.5 * j.median_ms + 1);
  });

  it('with --threads the warm-up is longer (the thread choice settles) and the thread count is restored', async () => {
    const j = JSON.parse(await bench(model, '--runs', '2', '--threads', '2', '--json'));
    expect(j).toMatchObject({ threads: 2, warmup: 12, kernels: 'wasm-simd' });
    expect(getThreads()).toBe(1);
    const ts = JSON.parse(await bench(model, '--runs', '2', '--kernels', 'ts', '--json'));
    expect(ts.kernels).toBe('ts');
  });

  it('rejects a backend it does not have and a bad kernel choice, by name', async () => {
    await expect(bench(model, '--backend', 'gpu')).rejects.toThrow(/--backend gpu/);
    await expect(bench(model, '--kernels', 'fast')).rejects.toThrow(/'wasm' or 'ts'/);
  });
});
