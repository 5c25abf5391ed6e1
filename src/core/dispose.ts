/**
 * The key of the `[Symbol.dispose]()` methods, so that `using model = …` frees what an object
 * holds at the end of the block. Node before 20.4 (and some browsers) lack Symbol.dispose:
 * there the key is `Symbol.for('Symbol.dispose')`, the symbol that esbuild's compiled `using`
 * (tsup, tsx, vitest) looks up when Symbol.dispose is missing. Nothing global is modified.
 */
export const disposeSymbol: typeof Symbol.dispose = ((Symbol as { dispose?: symbol }).dispose ?? Symbol.for('Symbol.dispose')) as typeof Symbol.dispose;

// The declarations of TypeScript's 'esnext.disposable' lib (and of @types/node), repeated so the
// published types compile for consumers whose `lib` is older (es2022 in a browser project).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
  interface Disposable {
    [Symbol.dispose](): void;
  }
}
