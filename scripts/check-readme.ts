/**
 * Runs the README's training examples as written and checks what the README says of them:
 * `npm run demo`, then every command of the block marked `<!-- readme-check: commands -->`
 * (with `npx lightconv` run as the built CLI, `node dist/cli.js`), then the TypeScript block
 * marked `<!-- readme-check: examples/train-digits.ts -->`, which must equal that file, then the
 * commands of docs/tutorial.md. Each README training run must reach ≥ 95 % test accuracy in eval
 * mode. Needs `npm run build` first.
 *
 *   npx tsx scripts/check-readme.ts
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const readme = readFileSync('README.md', 'utf8');

function block(marker: string): string {
  const at = readme.indexOf(`<!-- readme-check: ${marker} -->`);
  if (at < 0) throw new Error(`README.md has no block marked '${marker}'`);
  const m = /```\w*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`README.md: no code block after the '${marker}' marker`);
  return m[1]!;
}

function run(cmd: string, args: string[]): string {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  const t0 = performance.now();
  const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const lines = out.trimEnd().split('\n');
  console.log(lines.slice(-4).join('\n'));
  console.log(`  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  return out;
}

function checkAccuracy(runDir: string, bar: number): void {
  const m = JSON.parse(readFileSync(`${runDir}/metrics.json`, 'utf8')) as { accuracy: number; evaluated_on: string };
  console.log(`  ${runDir}: ${m.evaluated_on} accuracy ${m.accuracy.toFixed(4)}`);
  if (!(m.accuracy >= bar)) throw new Error(`${runDir}: test accuracy ${m.accuracy} is below ${bar}`);
  if (!existsSync(`${runDir}/report.md`)) throw new Error(`${runDir}: no report.md`);
}

const failures: string[] = [];
const attempt = (what: string, f: () => void) => {
  try {
    f();
  } catch (e) {
    failures.push(`${what}: ${(e as Error).message}`);
    console.error(`FAILED ${what}: ${(e as Error).message}`);
  }
};

rmSync('runs', { recursive: true, force: true });
attempt('npm run demo', () => {
  run('npm', ['run', '--silent', 'demo']);
  // The README states no figure for the demo: a sanity bar (measured: 0.952 on the 62 test patches).
  checkAccuracy('lightconv-demo', 0.9);
  // The report explains: Grad-CAM pictures and the slide heat map.
  for (const f of ['explain/gradcam_1.png', 'explain/slide_heatmap.png']) if (!existsSync(`lightconv-demo/${f}`)) throw new Error(`lightconv-demo: no ${f}`);
  if (!readFileSync('lightconv-demo/report.md', 'utf8').includes('## Explanations')) throw new Error('lightconv-demo/report.md has no Explanations section');
});

for (const line of block('commands').split('\n')) {
  const cmd = line.replace(/\s+#.*$/, '').trim();
  if (!cmd) continue;
  if (!cmd.startsWith('npx lightconv ')) throw new Error(`README.md: unexpected command in the checked block: ${cmd}`);
  const args = cmd.slice('npx lightconv '.length).split(/\s+/);
  attempt(cmd, () => {
    const out = run('node', ['dist/cli.js', ...args]);
    const outDir = args[args.indexOf('--out') + 1];
    if (args[0] === 'train' && outDir) checkAccuracy(outDir, 0.95); // the README's promise
    // `run --image examples/digit-7.png` must name the digit with no preprocessing flags.
    if (args[0] === 'run' && !/^\s+\d+\s+p=[\d.]+\s+logit=\S+\s+7$/m.test(out.split('\n').find((l) => /p=/.test(l)) ?? '')) {
      throw new Error(`expected the top class to be 7:\n${out}`);
    }
  });
}

attempt('examples/train-digits.ts', () => {
  if (block('examples/train-digits.ts') !== readFileSync('examples/train-digits.ts', 'utf8')) throw new Error('the README block differs from examples/train-digits.ts');
  const out = run('npx', ['tsx', 'examples/train-digits.ts']);
  const acc = Number(/test accuracy ([\d.]+)/.exec(out)?.[1]);
  console.log(`  examples/train-digits.ts: test accuracy ${acc}`);
  if (!(acc >= 0.95)) throw new Error(`test accuracy ${acc} is below the README's 95 %`);
});

// docs/tutorial.md: its commands as written; the walk-through prints three checked computations.
attempt('docs/tutorial.md', () => {
  const doc = readFileSync('docs/tutorial.md', 'utf8');
  const sh = /```sh\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!sh) throw new Error('docs/tutorial.md has no sh block');
  const cmds = sh.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
  let out = '';
  for (const cmd of cmds) {
    const args = cmd.split(/\s+/);
    if (args[0] !== 'npx') throw new Error(`docs/tutorial.md: unexpected command ${cmd}`);
    out = args[1] === 'lightconv' ? run('node', ['dist/cli.js', ...args.slice(2)]) : run('npx', args.slice(1));
  }
  const checked = out.match(/within the tolerance/g)?.length ?? 0;
  if (checked !== 3) throw new Error(`expected 3 arithmetic checks within tolerance, got ${checked}:\n${out}`);
  for (const f of ['1_features.0.png', '4_features.1.png', 'index.md']) if (!existsSync(`tutorial-maps/${f}`)) throw new Error(`tutorial-maps/${f} missing`);
});

if (failures.length) {
  console.error(`\n${failures.length} README check(s) failed:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('\nREADME examples: all checks passed');
