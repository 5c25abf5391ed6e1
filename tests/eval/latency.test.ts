import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { measureLatency } from '../../src/eval/latency.js';

describe('measureLatency', () => {
  it('warm-up calls are not timed; order statistics are consistent', async () => {
    let calls = 0;
    const r = await measureLatency(() => {
      calls++;
      let s = 0;
      for (let i = 0; i < 20_000; i++) s += Math.sqrt(i);
      return s;
    }, { warmup: 2, runs: 9 });
    expect(calls).toBe(11);
    expect(r.runs).toBe(9);
    expect(r.times).toHaveLength(9);
    const sorted = [...r.times].sort((a, b) => a - b);
    expect(r.min).toBe(sorted[0]);
    expect(r.median).toBe(sorted[4]); // odd count: the middle value
    expect(r.p95).toBeCloseTo(sorted[7]! + 0.6 * (sorted[8]! - sorted[7]!), 12); // 0.95·8 = 7.6
    expect(r.min).toBeLessThanOrEqual(r.median);
    expect(r.median).toBeLessThanOrEqual(r.p95);
  });
  it('awaits promises: a 5 ms timer measures at least ~5 ms', async () => {
    const r = await measureLatency(() => new Promise((res) => setTimeout(res, 5)), { warmup: 0, runs: 3 });
    // Node may fire a timer up to 1 ms early after rounding; 4 ms is the safe lower bound.
    expect(r.min).toBeGreaterThanOrEqual(4);
  });
  it('defaults: 3 warm-up, 20 timed', async () => {
    let calls = 0;
    const r = await measureLatency(() => calls++);
    expect([calls, r.runs]).toEqual([23, 20]);
  });
  it('typed errors', async () => {
    await expect(measureLatency(() => 0, { runs: 0 })).rejects.toThrow(ValueError);
    await expect(measureLatency(() => 0, { warmup: -1 })).rejects.toThrow(/warmup must be a non-negative integer/);
  });
});
