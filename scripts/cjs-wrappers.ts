import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes dist/<entry>.cjs as `module.exports = require('./<entry>.js')`: require() of the package
 * loads the ES module build itself (require(esm): Node ≥ 20.19 and ≥ 22.12 without flags; the
 * ES build has no top-level await, which require(esm) refuses). A separate CommonJS build would
 * carry a second Tensor class, which models loaded through `import` reject.
 */
export function writeCjsWrappers(dir: string, entries: readonly string[]): void {
  for (const e of entries) {
    writeFileSync(join(dir, `${e}.cjs`), `'use strict';\n// The ES module build, loaded through require(esm): one copy of the library whichever way it is loaded.\nmodule.exports = require('./${e}.js');\n`);
  }
}
