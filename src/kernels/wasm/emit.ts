/**
 * A tiny WebAssembly emitter: enough of the binary format to write the SIMD micro-kernels in
 * TypeScript and turn them into module bytes at load time (no C, no emscripten, no committed
 * binaries). Only what the kernels use is here.
 *
 * Pitfalls this file guards against (each cost an afternoon in the prototype):
 * - `i32.const` takes a *signed* LEB128: 64 must be written 0xC0 0x00, since a lone 0x40 is −64.
 * - Blocks without results use the empty block type 0x40.
 * - Memory alignment hints are log2 bytes and may not exceed the natural alignment
 *   (2 for f32, 4 for v128); they are only hints, so unaligned addresses are still fine.
 * - Addresses are unsigned: memory reaches 4 GiB, so an address past 2^31 is a negative i32.
 *   Loads and stores read it unsigned and i32.add wraps, but pointer comparisons must be
 *   the unsigned ones (ltU, geU, …): a signed one ends a loop early over a block that
 *   straddles 2^31.
 */

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

function sleb(out: number[], v: number): void {
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return;
  }
}

const f32Bytes = new Uint8Array(4);
const f32View = new DataView(f32Bytes.buffer);

/**
 * One function body. Locals are declared with `local(type)` and addressed by index; the
 * instruction helpers append bytes and return `this`, so code reads top to bottom.
 */
export class Fn {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(
    readonly name: string,
    readonly params: readonly ValType[],
    readonly results: readonly ValType[] = [],
  ) {}

  private tempLocals: number[] = [];
  /** `n` scratch v128 locals, shared by every caller in this function. */
  temps(n: number): number[] {
    while (this.tempLocals.length < n) this.tempLocals.push(this.local(0x7b));
    return this.tempLocals.slice(0, n);
  }

  /** A new local of `type`; returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  private simd(opcode: number): this {
    this.code.push(0xfd);
    uleb(this.code, opcode);
    return this;
  }

  private memarg(align: number, offset: number): this {
    uleb(this.code, align);
    uleb(this.code, offset);
    return this;
  }

  get(i: number): this {
    this.op(0x20);
    uleb(this.code, i);
    return this;
  }
  set(i: number): this {
    this.op(0x21);
    uleb(this.code, i);
    return this;
  }
  tee(i: number): this {
    this.op(0x22);
    uleb(this.code, i);
    return this;
  }
  i32(v: number): this {
    this.op(0x41);
    sleb(this.code, v);
    return this;
  }
  f32(v: number): this {
    f32View.setFloat32(0, v, true);
    return this.op(0x43, ...f32Bytes);
  }

  // Control flow (blocks without results).
  block(): this {
    return this.op(0x02, 0x40);
  }
  loop(): this {
    return this.op(0x03, 0x40);
  }
  if_(): this {
    return this.op(0x04, 0x40);
  }
  else_(): this {
    return this.op(0x05);
  }
  end(): this {
    return this.op(0x0b);
  }
  br(depth: number): this {
    this.op(0x0c);
    uleb(this.code, depth);
    return this;
  }
  brIf(depth: number): this {
    this.op(0x0d);
    uleb(this.code, depth);
    return this;
  }
  drop(): this {
    return this.op(0x1a);
  }
  /** Calls function `index` of the same module (its position in moduleBytes' list). */
  call(index: number): this {
    this.op(0x10);
    uleb(this.code, index);
    return this;
  }

  // f32 scalar arithmetic (tails of vector loops).
  f32add(): this {
    return this.op(0x92);
  }
  f32mul(): this {
    return this.op(0x94);
  }

  // i32 arithmetic and comparisons.
  add(): this {
    return this.op(0x6a);
  }
  sub(): this {
    return this.op(0x6b);
  }
  mul(): this {
    return this.op(0x6c);
  }
  shl(): this {
    return this.op(0x74);
  }
  eqz(): this {
    return this.op(0x45);
  }
  ne(): this {
    return this.op(0x47);
  }
  ltS(): this {
    return this.op(0x48);
  }
  gtS(): this {
    return this.op(0x4a);
  }
  geS(): this {
    return this.op(0x4e);
  }
  /** Unsigned comparisons: the ones for byte addresses. */
  ltU(): this {
    return this.op(0x49);
  }
  geU(): this {
    return this.op(0x4f);
  }
  and(): this {
    return this.op(0x71);
  }
  or(): this {
    return this.op(0x72);
  }

  // f32 memory.
  f32Load(offset = 0): this {
    return this.op(0x2a).memarg(2, offset);
  }
  f32Store(offset = 0): this {
    return this.op(0x38).memarg(2, offset);
  }

  // SIMD (f32x4). Alignment hint 2 (4 bytes): true for every f32 address we use.
  v128Load(offset = 0): this {
    return this.simd(0x00).memarg(2, offset);
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b).memarg(2, offset);
  }
  loadSplat(offset = 0): this {
    return this.simd(0x09).memarg(2, offset);
  }
  v128Zero(): this {
    this.simd(0x0c);
    for (let i = 0; i < 16; i++) this.code.push(0);
    return this;
  }
  splat(): this {
    return this.simd(0x13);
  }
  splatI32(): this {
    return this.simd(0x11);
  }
  extractLane(lane: number): this {
    return this.simd(0x1f).op(lane);
  }
  /** i8x16.shuffle picking four f32 lanes (0–3 from the first operand, 4–7 from the second). */
  shuffle32(l0: number, l1: number, l2: number, l3: number): this {
    this.simd(0x0d);
    for (const l of [l0, l1, l2, l3]) for (let b = 0; b < 4; b++) this.code.push(l * 4 + b);
    return this;
  }
  fadd(): this {
    return this.simd(0xe4);
  }
  fneg(): this {
    return this.simd(0xe1);
  }
  fnearest(): this {
    return this.simd(0x6a);
  }
  /** i32x4.trunc_sat_f32x4_s */
  truncSat(): this {
    return this.simd(0xf8);
  }
  iadd32x4(): this {
    return this.simd(0xae);
  }
  ishl32x4(): this {
    return this.simd(0xab);
  }
  fsub(): this {
    return this.simd(0xe5);
  }
  fmul(): this {
    return this.simd(0xe6);
  }
  /**
   * acc + a·b for the vectors a, b on the stack: f32x4.mul then f32x4.add (two roundings), or with
   * `fused` f32x4.relaxed_madd (relaxed SIMD), which is one fused rounding where the hardware has
   * FMA and the same two roundings where it has not.
   */
  madd(acc: number, fused: boolean): this {
    return fused ? this.get(acc).simd(0x105) : this.fmul().get(acc).fadd();
  }
  fdiv(): this {
    return this.simd(0xe7);
  }
  fmin(): this {
    return this.simd(0xe8);
  }
  fmax(): this {
    return this.simd(0xe9);
  }
  /** f32x4.pmax: b where a < b, else a (a NaN in b never wins, as in `if (v > m) m = v`). */
  fpmax(): this {
    return this.simd(0xeb);
  }
  /** f32x4.pmin: b where b < a, else a (a NaN or −0 in a is kept, as in `x > hi ? hi : x`). */
  fpmin(): this {
    return this.simd(0xea);
  }
  /** i32x4.shr_s (shift count an i32 on top of the stack). */
  ishrS32x4(): this {
    return this.simd(0xac);
  }
  isub32x4(): this {
    return this.simd(0xb1);
  }
  flt(): this {
    return this.simd(0x43);
  }
  fge(): this {
    return this.simd(0x46);
  }
  fabs(): this {
    return this.simd(0xe0);
  }
  bitselect(): this {
    return this.simd(0x52);
  }
}

function section(out: number[], id: number, body: number[]): void {
  out.push(id);
  uleb(out, body.length);
  out.push(...body);
}

function name(out: number[], s: string): void {
  const b = new TextEncoder().encode(s);
  uleb(out, b.length);
  out.push(...b);
}

/**
 * Module bytes: the functions, all exported by name, over one memory imported as `env.memory`
 * (shared when `shared` is set, so worker threads can run on the same data).
 */
export function moduleBytes(fns: readonly Fn[], memory: { initial: number; maximum: number; shared: boolean }): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  uleb(types, fns.length);
  for (const f of fns) {
    types.push(0x60);
    uleb(types, f.params.length);
    types.push(...f.params);
    uleb(types, f.results.length);
    types.push(...f.results);
  }
  section(out, 1, types);
  const imports: number[] = [1];
  name(imports, 'env');
  name(imports, 'memory');
  imports.push(0x02, memory.shared ? 0x03 : 0x01);
  uleb(imports, memory.initial);
  uleb(imports, memory.maximum);
  section(out, 2, imports);
  const funcs: number[] = [];
  uleb(funcs, fns.length);
  fns.forEach((_, i) => uleb(funcs, i));
  section(out, 3, funcs);
  const exports: number[] = [];
  uleb(exports, fns.length);
  fns.forEach((f, i) => {
    name(exports, f.name);
    exports.push(0x00);
    uleb(exports, i);
  });
  section(out, 7, exports);
  const code: number[] = [];
  uleb(code, fns.length);
  for (const f of fns) {
    const body: number[] = [];
    // One local entry per local (count 1 each): simple, and the count stays small.
    const locals = (f as unknown as { locals: ValType[] }).locals;
    uleb(body, locals.length);
    for (const t of locals) body.push(1, t);
    body.push(...f.code, 0x0b);
    uleb(code, body.length);
    code.push(...body);
  }
  section(out, 10, code);
  return new Uint8Array(out);
}
