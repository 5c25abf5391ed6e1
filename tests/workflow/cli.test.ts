import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageFolderSubset } from './datasets.js';

/** The `lightconv` command from the sources, as a child process (signals, exit codes, stderr). */
function cli(args: string[], opts: { onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(d.toString(), child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dirs: string[] = [];
let data: string;
beforeAll(async () => {
  data = await imageFolderSubset('datasets/ihc_patches', ['dab_negative', 'dab_positive'], 16);
  dirs.push(data);
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('lightconv train from the command line', () => {
  it('Ctrl-C stops after the current batch, writes what is complete and leaves no half-written file', async () => {
    const out = `${data}-cancelled`;
    dirs.push(out);
    let sent = false;
    const r = await cli(['train', '--data', data, '--arch', 'light_cnn', '--input-size', '16', '--epochs', '200', '--batch', '4', '--folds', '2', '--out', out], {
      onStdout: (chunk, child) => {
        // After the first complete epoch of the first fold.
        if (!sent && /fold 1 epoch 1:/.test(chunk)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/cancelled after/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const m = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8'));
    expect(m.status).toBe('cancelled');
    const history = await readFile(join(out, 'history.csv'), 'utf8');
    expect(history.split('\n').filter((l) => /^1,/.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(out, 'best.onnx'))).toBe(false);
    const files = await readdir(out, { recursive: true });
    expect(files.filter((f) => /\.tmp-/.test(String(f)))).toEqual([]);
  }, 120_000);

  it('bad input: one line on stderr naming the problem, exit status 2, no stack trace, nothing written', async () => {
    const out = `${data}-bad`;
    const empty = `${data}-empty`;
    dirs.push(out, empty);
    await mkdir(join(empty, 'a'), { recursive: true });
    await mkdir(join(empty, 'b'), { recursive: true });
    await writeFile(join(empty, 'a', 'x.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    const cases: [string[], RegExp][] = [
      [['train', '--data', join(data, 'missing'), '--arch', 'light_cnn', '--out', out], /cannot read|does not exist|missing/],
      [['train', '--data', data, '--arch', 'light_cnn', '--input-size', '16', '--folds', '40', '--out', out], /--folds 40 is larger than the smallest class 'dab_negative'/],
      [['train', '--data', empty, '--arch', 'light_cnn', '--input-size', '16', '--out', out], /b/],
      [['compare', data, data], /metrics\.json/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^lightconv: \w+Error: /);
      expect(lines[0]).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
  }, 120_000);

  it('run --image needs no flags for a model that carries its preprocessing (examples/digits.onnx)', async () => {
    for (const digit of [3, 5, 7, 8]) {
      const r = await cli(['run', 'examples/digits.onnx', '--image', `examples/digit-${digit}.png`]);
      expect(r.code).toBe(0);
      const top = r.stdout.split('\n').find((l) => /p=/.test(l))!;
      expect(top.trim().split(/\s+/)[0], r.stdout).toBe(String(digit));
      expect(top.trim().split(/\s+/).at(-1)).toBe(String(digit)); // the class name from the metadata
    }
  }, 60_000);
});
