import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Every TypeScript block of the README and docs/ compiles as written, each as its own module
 * against the library's source (`lightconv` → src/index.ts): no variable used before it is
 * defined, no function or option the API does not have. Running them is check:readme's job (in
 * CI): it runs every README block as written against the built package, in a folder holding the
 * files they name — several need a model file or minutes of training.
 */
const ROOT = resolve(import.meta.dirname, '..');
const DOCS = ['README.md', 'docs/tutorial.md', 'examples/README.md'];

function blocks(file: string): { file: string; line: number; code: string }[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: { file: string; line: number; code: string }[] = [];
  const re = /^```ts\n([\s\S]*?)^```/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ file, line: text.slice(0, m.index).split('\n').length, code: m[1]! });
  return out;
}

describe('documentation snippets', () => {
  it('every ts block of the README and docs compiles on its own', () => {
    const all = DOCS.flatMap((f) => {
      try {
        return blocks(f);
      } catch {
        return [];
      }
    });
    expect(all.length).toBeGreaterThanOrEqual(10);
    const dir = join(ROOT, '.scratch', 'doc-snippets');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = all.map((b, i) => {
      const path = join(dir, `snippet_${i}.ts`);
      // A block without imports or exports is still a module (top-level await needs one).
      writeFileSync(path, `${b.code}\nexport {};\n`);
      return { path, ...b };
    });
    const program = ts.createProgram(
      files.map((f) => f.path),
      {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts', 'lib.dom.d.ts'],
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')],
        strict: true,
        skipLibCheck: true,
        noEmit: true,
        baseUrl: ROOT,
        paths: { lightconv: ['src/index.ts'], 'lightconv/onnx': ['src/onnx.ts'], 'lightconv/gpu': ['src/gpu.ts'] },
      },
    );
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && d.file.fileName.startsWith(dir))
      .map((d) => {
        const f = files.find((x) => x.path === d.file!.fileName)!;
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${f.file}:${f.line + 1 + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    rmSync(dir, { recursive: true, force: true });
    expect(problems).toEqual([]);
  }, 120_000);
});
