/**
 * Builds the API reference (typedoc, options from typedoc.json) into docs/api and checks it:
 * every exported top-level function and class has an `@example`, every example type-checks
 * against the sources (`lightconv`, `lightconv/onnx`, `lightconv/gpu` mapped to src/), and
 * typedoc reports no validation warnings (missing documentation, broken links). Exit 1 with the
 * list otherwise.
 *
 *   npx tsx scripts/check-docs.ts        (npm run check:docs)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Application, type DeclarationReflection, type ProjectReflection, ReflectionKind, TypeDocReader, TSConfigReader, PackageJsonReader } from 'typedoc';
import ts from 'typescript';

const app = await Application.bootstrapWithPlugins({ options: 'typedoc.json' }, [
  new TypeDocReader(),
  new PackageJsonReader(),
  new TSConfigReader(),
]);

// Collect validation warnings (still printed) for the summary and the exit status.
const failures: string[] = [];
const logger = app.logger;
const origValidationWarning = logger.validationWarning.bind(logger) as (text: string) => void;
(logger as { validationWarning: (text: string) => void }).validationWarning = (text: string) => {
  failures.push(`typedoc: ${text}`);
  origValidationWarning(text);
};

const project = await app.convert();
if (!project) {
  console.error('check-docs: typedoc could not convert the project (see the errors above)');
  process.exit(1);
}
app.validate(project);

/** The package-relative file that declares `r` (typedoc.json disables `sources`, the symbol id still has it). */
function fileOf(p: ProjectReflection, r: DeclarationReflection): string | undefined {
  return p.getSymbolIdFromReflection(r)?.packagePath;
}

function hasExample(r: DeclarationReflection): boolean {
  const comments = [r.comment, ...(r.signatures ?? []).map((s) => s.comment)];
  return comments.some((c) => c?.blockTags.some((t) => t.tag === '@example'));
}

function hasComment(r: DeclarationReflection): boolean {
  return r.hasComment() || (r.signatures ?? []).some((s) => s.hasComment());
}

// Exported top-level declarations, once each (a name re-exported by several entry points, or
// reached through a namespace such as `transforms`, is counted at its first place). Functions
// and classes need an @example besides their comment.
const seen = new Set<string>();
let exports = 0;
let documented = 0;
let total = 0;
let withExample = 0;
function visit(container: { children?: DeclarationReflection[] }): void {
  for (const r of container.children ?? []) {
    if (r.kindOf(ReflectionKind.Namespace | ReflectionKind.Module)) {
      visit(r);
      continue;
    }
    if (r.kindOf(ReflectionKind.Reference)) continue;
    const file = fileOf(project!, r);
    const key = `${file}#${r.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    exports++;
    if (hasComment(r)) documented++;
    if (!r.kindOf(ReflectionKind.Function | ReflectionKind.Class)) continue;
    total++;
    if (hasExample(r)) {
      withExample++;
      continue;
    }
    const kind = r.kindOf(ReflectionKind.Class) ? 'class' : 'function';
    failures.push(`${r.name} (${kind}, ${file ?? 'unknown file'}) has no @example`);
  }
}
visit(project);

// Every example, once, compiled as its own module with the package's names mapped to src/.
const examples = new Map<string, { where: string; file: string | undefined }>();
for (const r of Object.values(project.reflections)) {
  if (!r.isDeclaration()) continue;
  const file = fileOf(project, r);
  for (const c of [r.comment, ...(r.signatures ?? []).map((sig) => sig.comment)]) {
    for (const tag of c?.blockTags ?? []) {
      if (tag.tag !== '@example') continue;
      const text = tag.content.map((part) => part.text).join('');
      for (const m of text.matchAll(/```(?:ts|typescript)\n([\s\S]*?)```/g)) {
        if (!examples.has(m[1]!)) examples.set(m[1]!, { where: r.getFriendlyFullName(), file });
      }
    }
  }
}
const root = resolve('.');
// Inside the package (an ignored folder), so that imports such as 'ndarray' resolve as a user's would.
mkdirSync(join(root, '.scratch'), { recursive: true });
const dir = mkdtempSync(join(root, '.scratch', 'doc-examples-'));
try {
  const owner = new Map<string, { where: string; file: string | undefined }>();
  [...examples].forEach(([code, info], i) => {
    const path = join(dir, `example${i}.ts`);
    writeFileSync(path, `${code}\nexport {};\n`);
    owner.set(resolve(path), info);
  });
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile).config, ts.sys, root);
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    declaration: false,
    baseUrl: root,
    paths: { lightconv: ['src/index.ts'], 'lightconv/onnx': ['src/onnx.ts'], 'lightconv/gpu': ['src/gpu.ts'] },
  };
  const program = ts.createProgram([...owner.keys()], options);
  for (const sf of program.getSourceFiles()) {
    const info = owner.get(resolve(sf.fileName));
    if (!info) continue;
    for (const d of [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]) {
      const line = d.start === undefined ? 0 : sf.getLineAndCharacterOfPosition(d.start).line + 1;
      failures.push(`the @example of ${info.where} (${info.file ?? 'unknown file'}) does not compile: line ${line}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

await app.generateDocs(project, app.options.getValue('out'));
if (app.logger.hasErrors()) failures.push('typedoc reported errors while generating the HTML (see above)');

const missingDocs = failures.filter((f) => f.startsWith('typedoc:')).length;
console.log(`check-docs: ${documented} of ${exports} exports documented; ${withExample} of ${total} exported functions and classes have an @example; ${examples.size} examples type-checked`);
console.log(`check-docs: ${missingDocs} typedoc validation warnings`);
console.log(`check-docs: HTML written to ${app.options.getValue('out')}/index.html`);
if (failures.length) {
  console.error(`\ncheck-docs: ${failures.length} problems:`);
  for (const f of failures) console.error(`  ${f}`);
  process.exit(1);
}
