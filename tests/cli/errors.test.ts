import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as registerActivations } from '../../src/cli/activations.js';
import { register as registerBench } from '../../src/cli/bench.js';
import { register as registerGradcam } from '../../src/cli/gradcam.js';
import { register as registerModels } from '../../src/cli/models.js';
import { register as registerWorkflow } from '../../src/cli/workflow.js';

/**
 * The command line answers mistakes in one line: a missing, folder or FIFO path, a file to
 * write into a missing folder, a malformed number. One line on stderr naming the option, the
 * path and the problem, the documented exit status, no stack trace (unless --debug), no hang.
 */

const MODEL = 'tests/fixtures/models/ops_mix/model.onnx';
/** A hung child (a FIFO opened for reading) is killed after this long and the test fails. */
const HANG_MS = 30_000;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The `lightconv` command from the sources, as tests/workflow/cli.test.ts runs it. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LIGHTCONV_DEBUG: '', ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), HANG_MS);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs cases a few at a time (each child is mostly Node and tsx starting up). */
async function runAll<T>(items: readonly T[], f: (x: T) => Promise<void>, width = 3): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(f));
}

function expectOneLine(r: Result, what: string): string {
  expect(r.signal, `${what}: killed (a hang?)`).toBeNull();
  const lines = r.stderr.trim().split('\n');
  expect(lines, `${what}: ${r.stderr}`).toHaveLength(1);
  expect(lines[0], what).toMatch(/^lightconv: /);
  expect(r.stderr, what).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

let dir: string;
let fifo: string;
let folder: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightconv-cli-errors-'));
  fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  folder = join(dir, 'a-folder');
  await import('node:fs/promises').then((fs) => fs.mkdir(folder));
  await writeFile(join(dir, 'labels.txt'), 'a\nb\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lightconv: bad paths are one line with exit status 2', () => {
  it('missing, folder and FIFO paths for a model, --input, --image, --labels and other file options', async () => {
    const missing = () => join(dir, 'missing.onnx');
    const cases: [string, () => string[], RegExp][] = [
      ['info: missing model', () => ['info', missing()], /InputPathError: model \S+missing\.onnx: does not exist$/],
      ['info: folder as model', () => ['info', folder], /InputPathError: model \S+a-folder: is a folder; expected a file$/],
      ['info: FIFO as model', () => ['info', fifo], /InputPathError: model \S+pipe: is a FIFO \(named pipe\), not a regular file$/],
      ['run --input FIFO', () => ['run', MODEL, '--input', fifo], /--input \S+pipe: is a FIFO/],
      ['run --image missing', () => ['run', MODEL, '--image', join(dir, 'scan.png')], /--image \S+scan\.png: does not exist$/],
      ['run --labels folder', () => ['run', MODEL, '--labels', folder], /--labels \S+a-folder: is a folder/],
    ];
    await runAll(cases, async ([what, args, message]) => {
      const r = await cli(args());
      const line = expectOneLine(r, what);
      expect(r.code, `${what}: ${line}`).toBe(2);
      expect(line, what).toMatch(message);
      expect(r.stdout, what).toBe('');
    });
  }, 120_000);
});

describe('lightconv: usage errors are one line with exit status 64', () => {
  it('a malformed number, an unknown option, an unknown command', async () => {
    const cases: [string, string[], RegExp][] = [
      ['run --seed abc', ['run', MODEL, '--seed', 'abc'], /option '--seed <n>' argument 'abc' is invalid\. expected an integer from 0 to 4294967295/],
      ['unknown option', ['run', MODEL, '--frobnicate'], /unknown option '--frobnicate'/],
      ['unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ];
    await runAll(cases, async ([what, args, message]) => {
      const r = await cli(args);
      const line = expectOneLine(r, what);
      expect(r.code, `${what}: ${line}`).toBe(64);
      expect(line, what).toMatch(message);
    });
  }, 120_000);
});

describe('lightconv: stack traces and help', () => {
  it('--debug (anywhere on the line) and LIGHTCONV_DEBUG=1 add the stack trace; the exit status stays 2', async () => {
    const runs = await Promise.all([cli(['info', folder, '--debug']), cli(['info', folder], { LIGHTCONV_DEBUG: '1' })]);
    for (const r of runs) {
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^lightconv: InputPathError: model \S+a-folder: is a folder/);
      expect(r.stderr).toMatch(/\n\s+at /);
    }
  }, 60_000);

  it('--help lists the exit statuses and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Exit status: 0 success; 1 internal error.*2 bad input/);
    expect(r.stdout).toMatch(/64 usage error/);
    expect(r.stdout).toMatch(/--debug/);
  }, 60_000);
});

describe('path and number checks of the other commands (parsed in-process)', () => {
  /** The commands registered outside main.ts, on a program that throws instead of exiting. */
  async function parseError(args: string[]): Promise<Error> {
    const { Command } = await import('commander');
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    for (const register of [registerModels, registerWorkflow, registerGradcam, registerActivations, registerBench]) register(program);
    try {
      await program.parseAsync(args, { from: 'user' });
    } catch (e) {
      return e as Error;
    }
    throw new Error(`${args.join(' ')} was accepted`);
  }

  it('every file or folder option is checked before the command runs', async () => {
    const { InputPathError } = await import('../../src/cli/args.js');
    const missing = join(dir, 'missing.onnx');
    const cases: [string[], RegExp][] = [
      [['bench', folder], /^model \S+a-folder: is a folder; expected a file$/],
      [['summary', missing], /^model \S+missing\.onnx: does not exist$/],
      [['summary', 'mobilenet_v9'], /^model 'mobilenet_v9' is neither an ONNX file nor an architecture/],
      [['export', 'light_cnn', '--out', folder], /^--out \S+a-folder: is a folder; expected a file name$/],
      [['export', 'light_cnn', '--out', fifo], /^--out \S+pipe: is a FIFO \(named pipe\); expected a regular file$/],
      [['export', 'light_cnn', '--out', join(dir, 'no', 'such', 'm.onnx')], /^--out \S+m\.onnx: its folder \S+such does not exist$/],
      [['predict', '--model', MODEL, fifo], /^image \S+pipe: is a FIFO \(named pipe\), not a regular file$/],
      [['predict', '--model', missing, folder], /^--model \S+missing\.onnx: does not exist$/],
      [['predict', '--model', MODEL, join(dir, 'labels.txt', 'x.png')], /^image \S+x\.png: does not exist \(a part of the path is not a folder\)$/],
      [['eval', '--model', MODEL, '--data', MODEL, '--out', join(dir, 'ev')], /^--data \S+model\.onnx: is a file; expected a folder$/],
      [['train', '--data', fifo, '--arch', 'light_cnn', '--out', join(dir, 'tr')], /^--data \S+pipe: is a FIFO \(named pipe\), not a regular folder$/],
      [['train', '--data', folder, '--arch', 'light_cnn', '--weights', folder, '--out', join(dir, 'tr')], /^--weights \S+a-folder: is a folder/],
      [['gradcam', '--model', MODEL, '--image', join(dir, 'nope.png'), '--out', join(dir, 'cam.png')], /^--image \S+nope\.png: does not exist$/],
      [['activations', '--model', folder, '--image', MODEL, '--out', join(dir, 'act')], /^--model \S+a-folder: is a folder/],
      [['activations', '--model', MODEL, '--image', MODEL, '--out', MODEL], /^--out \S+model\.onnx: exists and is not a folder$/],
      [['compare', join(dir, 'runA'), folder], /^run \S+runA: does not exist$/],
    ];
    for (const [args, message] of cases) {
      const e = await parseError(args);
      expect(e, args.join(' ')).toBeInstanceOf(InputPathError);
      expect(e.message, args.join(' ')).toMatch(message);
    }
    for (const out of ['no', 'ev', 'tr', 'cam.png', 'act']) expect(existsSync(join(dir, out)), out).toBe(false);
  }, 60_000);

  it('malformed numbers are usage errors naming the option and what was expected', async () => {
    const cases: [string[], RegExp][] = [
      [['export', 'light_cnn', '--out', join(dir, 'm.onnx'), '--seed', '-1'], /'--seed <n>' argument '-1' is invalid\. expected an integer from 0 to 4294967295/],
      [['train', '--data', folder, '--arch', 'light_cnn', '--out', join(dir, 'tr2'), '--seed', 'abc'], /'--seed <n>' argument 'abc' is invalid/],
      [['bench', MODEL, '--runs', '1e99'], /'--runs <n>' argument '1e99' is invalid\. expected a positive integer/],
      [['bench', MODEL, '--batch', '0'], /'--batch <n>' argument '0' is invalid\. expected a positive integer/],
      [['eval', '--model', MODEL, '--data', folder, '--out', join(dir, 'ev'), '--batch', ' '], /'--batch <n>' argument ' ' is invalid/],
    ];
    for (const [args, message] of cases) {
      const e = (await parseError(args)) as Error & { code?: string; exitCode?: number };
      expect(e.code, args.join(' ')).toBe('commander.invalidArgument');
      expect(e.message, args.join(' ')).toMatch(message);
    }
    expect(existsSync(join(dir, 'm.onnx'))).toBe(false);
  }, 60_000);

  it('the number parsers accept exactly the documented ranges', async () => {
    const { intArg, numberArg } = await import('../../src/cli/args.js');
    const seed = intArg(0, 2 ** 32 - 1);
    expect(seed('0')).toBe(0);
    expect(seed('4294967295')).toBe(4294967295);
    for (const bad of ['4294967296', '-1', 'abc', '', '1.5', '0x10', '1e3', 'NaN']) expect(() => seed(bad), bad).toThrow(/expected an integer from 0 to 4294967295/);
    const tol = numberArg({ min: 0 });
    expect(tol('1e-4')).toBe(1e-4);
    for (const bad of ['-1', 'Infinity', 'abc', '']) expect(() => tol(bad), bad).toThrow(/expected a number ≥ 0/);
  });
});
