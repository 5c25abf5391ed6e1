/**
 * Long fuzz runs with the generators of the test suite (tests/fuzz/generators.ts), every
 * sub-generator included, at the default budgets:
 *
 *   npm run fuzz -- --minutes 30                 # random seeds until the time is up
 *   npm run fuzz -- --minutes 5 --gen image      # one generator (model, image, checkpoint)
 *   npm run fuzz -- --replay image:1919675739    # one case again, in this process, with its outcome
 *   npm run fuzz -- --replay model:42 --default-only   # a case named by the test run (its sub-generators)
 *
 * Successful model runs are also repeated with plain arrays for every intermediate (no reused
 * kernel memory) and must agree with the first run (see runModelCase's `differential`).
 *
 * Cases run in a child process, one after another in-process (fast); this process is the
 * watchdog: it knows the case in flight (the child writes it to a status file before running
 * it), kills the child when a case runs past --case-seconds or its memory grows past
 * --rss-mib, records the case, and starts a fresh child. Every failing case — untyped
 * exception, wrong answer, hang, memory blow-up, crash — is written to --out (default
 * .scratch/fuzz-failures/) as the input file plus a JSON note; the exit status is 1 if any.
 */
import { fork } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuzzFailure, type FuzzCase, type Generator, Rand, type Restrict, defaultRestrict, makeCase, runCase, scratchDir } from '../tests/fuzz/generators.js';

const GENERATORS: readonly Generator[] = ['model', 'image', 'checkpoint'];

interface Options {
  minutes: number;
  gens: Generator[];
  out: string;
  caseSeconds: number;
  rssMib: number;
  replay?: string;
  /** Only the sub-generators of the default test run (as `npm test` makes its cases). */
  defaultOnly: boolean;
  child?: { status: string; until: number; seed: number };
}

function parseArgs(argv: string[]): Options {
  const o: Options = { minutes: 1, gens: [...GENERATORS], out: '.scratch/fuzz-failures', caseSeconds: 20, rssMib: 1024, defaultOnly: false };
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined) usage(`${flag} needs a value`);
    return v;
  };
  const num = (v: string, flag: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) usage(`${flag}: '${v}' is not a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--minutes') o.minutes = num(value(i++, a), a);
    else if (a === '--gen') {
      o.gens = value(i++, a).split(',') as Generator[];
      for (const g of o.gens) if (!GENERATORS.includes(g)) usage(`--gen: '${g}' is not one of ${GENERATORS.join(', ')}`);
    } else if (a === '--out') o.out = value(i++, a);
    else if (a === '--case-seconds') o.caseSeconds = num(value(i++, a), a);
    else if (a === '--rss-mib') o.rssMib = num(value(i++, a), a);
    else if (a === '--replay') o.replay = value(i++, a);
    else if (a === '--default-only') o.defaultOnly = true;
    else if (a === '--child') o.child = { status: argv[++i]!, until: Number(argv[++i]), seed: Number(argv[++i]) };
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument '${a}'`);
  }
  return o;
}

function usage(problem?: string): never {
  if (problem) console.error(`fuzz: ${problem}`);
  console.error('usage: npm run fuzz -- [--minutes N] [--gen model,image,checkpoint] [--out DIR] [--case-seconds S] [--rss-mib M] [--default-only] | --replay GEN:SEED [--default-only]');
  process.exit(problem ? 64 : 0);
}

const EXT: Record<Generator, string> = { model: 'onnx', image: 'bin', checkpoint: 'ckpt' };

/** Writes the case's input and a note about what happened to the failures folder. */
function record(out: string, c: FuzzCase, why: string, detail = '', defaultOnly = false): void {
  mkdirSync(out, { recursive: true });
  const base = join(out, `${c.gen}-${c.seed}`);
  const ext = c.gen === 'image' ? (c.name?.split('.').pop() ?? 'bin') : EXT[c.gen];
  writeFileSync(`${base}.${ext}`, c.bytes);
  writeFileSync(`${base}.json`, `${JSON.stringify({ case: `${c.gen}:${c.seed}`, what: c.note, why, detail, replay: `npm run fuzz -- --replay ${c.gen}:${c.seed}${defaultOnly ? ' --default-only' : ''}` }, null, 2)}\n`);
  console.log(`FAIL ${c.gen}:${c.seed}  ${why}  (${c.note})`);
}

/** The child: cases until `until`, each announced in the status file first. */
async function child(o: Options & { child: NonNullable<Options['child']> }): Promise<void> {
  process.on('disconnect', () => process.exit(0)); // the watchdog is gone: stop too
  const rand = new Rand(o.child.seed);
  const fd = openSync(o.child.status, 'w');
  const scratch = join(scratchDir(), `lightconv-fuzz-${process.pid}.ckpt`);
  const rss0 = process.memoryUsage().rss;
  let n = 0;
  try {
    while (Date.now() < o.child.until) {
      const gen = o.gens[n % o.gens.length]!;
      const seed = Math.floor(rand.next() * 2 ** 32);
      // Fixed width, always at offset 0: the watchdog reads the case in flight even if this process dies mid-case.
      writeSync(fd, `${gen.padEnd(10)} ${String(seed).padStart(10)} ${String(n).padStart(12)}\n`, 0);
      const c = makeCase(gen, seed, only(o));
      try {
        await runCase(c, gen === 'checkpoint' && seed % 4 === 0 ? scratch : null, { differential: true });
      } catch (e) {
        const err = e as Error;
        record(o.out, c, e instanceof FuzzFailure ? `wrong answer: ${err.message}` : `untyped ${err?.name}: ${err?.message}`, err?.stack ?? String(e), o.defaultOnly);
      }
      const grown = process.memoryUsage().rss - rss0;
      if (grown > o.rssMib * 2 ** 20) {
        record(o.out, c, `resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`, '', o.defaultOnly);
        process.exit(3); // start afresh: the memory may not come back
      }
      n++;
    }
  } finally {
    closeSync(fd);
    rmSync(scratch, { force: true });
  }
  // Exit once the count is sent (an open IPC channel would keep this process alive).
  if (process.send) process.send({ cases: n }, () => process.exit(0));
  else process.exit(0);
}

/** Resident set of a process in bytes (Linux /proc), or 0 where unavailable. */
function rssOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

async function supervise(o: Options): Promise<number> {
  const until = Date.now() + o.minutes * 60_000;
  const status = join(scratchDir(), `lightconv-fuzz-status-${process.pid}`);
  const self = fileURLToPath(import.meta.url);
  const out = resolve(o.out);
  const notes = () => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.json')).length : 0);
  const before = notes();
  let cases = 0;
  let children = 0;
  /** The case the child runs now and how many it completed before it. */
  const inFlight = (): { gen: Generator; seed: number; done: number } | null => {
    if (!existsSync(status)) return null;
    const [gen, seed, done] = readFileSync(status, 'utf8').trim().split(/\s+/);
    return gen && seed ? { gen: gen as Generator, seed: Number(seed), done: Number(done) } : null;
  };
  console.log(`fuzzing ${o.gens.join(', ')} for ${o.minutes} min; failures go to ${out}/`);
  while (Date.now() < until - 1000) {
    const seed = Math.floor(Math.random() * 2 ** 32);
    children++;
    rmSync(status, { force: true }); // the previous child's last case is not this one's
    const started = Date.now();
    const proc = fork(self, ['--child', status, String(until), String(seed), '--gen', o.gens.join(','), '--out', out, '--rss-mib', String(o.rssMib), ...(o.defaultOnly ? ['--default-only'] : [])], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    let killedFor: string | null = null;
    let lastCase = '';
    let caseStart = Date.now();
    let baseRss = 0;
    const timer = setInterval(() => {
      const now = inFlight();
      const key = now ? `${now.gen}:${now.seed}` : '';
      if (key !== lastCase) {
        lastCase = key;
        caseStart = Date.now();
      }
      const rss = rssOf(proc.pid!);
      if (!baseRss && rss) baseRss = rss;
      if (Date.now() - caseStart > o.caseSeconds * 1000) killedFor = `still running after ${o.caseSeconds} s (a hang?)`;
      else if (baseRss && rss - baseRss > (o.rssMib + 256) * 2 ** 20) killedFor = `resident memory grew by ${((rss - baseRss) / 2 ** 20).toFixed(0)} MiB while running`;
      if (killedFor) proc.kill('SIGKILL');
    }, 100);
    const code = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; n: number }>((res) => {
      let n = 0;
      proc.on('message', (m: { cases?: number }) => (n = m.cases ?? n));
      proc.on('exit', (c, s) => res({ code: c, signal: s, n }));
    });
    clearInterval(timer);
    rmSync(join(scratchDir(), `lightconv-fuzz-${proc.pid}.ckpt`), { force: true }); // left by a killed child
    const last = inFlight();
    cases += code.code === 0 ? code.n : (last?.done ?? 0);
    if (code.code === 0 || code.code === 3) continue; // 3: the child recorded a memory blow-up and stopped
    if (last) {
      record(out, makeCase(last.gen, last.seed, only(o)), killedFor ?? `the process died (${code.signal ?? `exit ${code.code}`}): a crash or out of memory`, '', o.defaultOnly);
    }
    if (Date.now() - started < 2000 && !last) {
      console.error(`fuzz: the runner exits at once (${code.signal ?? code.code}); stopping`);
      return 2;
    }
  }
  rmSync(status, { force: true });
  // Recorded by the children (untyped errors, wrong answers, memory) and by this watchdog (hangs, crashes).
  const found = notes() - before;
  console.log(`${children} runner(s); ${cases} cases completed; ${found} new failing case(s)${found ? ` in ${out}/` : ''}`);
  return found > 0 ? 1 : 0;
}

function only(o: Options): Restrict {
  return o.defaultOnly ? defaultRestrict() : {};
}

async function replay(spec: string, restrict: Restrict): Promise<number> {
  const [gen, s] = spec.split(':');
  if (!GENERATORS.includes(gen as Generator) || !/^\d+$/.test(s ?? '')) usage(`--replay: '${spec}' is not GEN:SEED`);
  const c = makeCase(gen as Generator, Number(s), restrict);
  console.log(`${spec}: ${c.note} (${c.bytes.length} bytes)`);
  const t0 = performance.now();
  const scratch = join(scratchDir(), `lightconv-fuzz-replay-${process.pid}.ckpt`);
  try {
    const outcome = await runCase(c, gen === 'checkpoint' ? scratch : null, { differential: true });
    console.log(`${outcome} in ${(performance.now() - t0).toFixed(0)} ms`);
    return 0;
  } catch (e) {
    console.log(`FAIL after ${(performance.now() - t0).toFixed(0)} ms:`, e instanceof FuzzFailure ? e.message : e);
    return 1;
  } finally {
    rmSync(scratch, { force: true });
  }
}

const o = parseArgs(process.argv.slice(2));
if (o.child) await child(o as Options & { child: NonNullable<Options['child']> });
else process.exitCode = o.replay ? await replay(o.replay, only(o)) : await supervise(o);
