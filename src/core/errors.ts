/**
 * Typed errors. Every error the engine raises on bad input is one of these, and its
 * message names the thing at fault (op, node, tensor, file) and the offending values.
 *
 * @example
 * ```ts
 * import { LightconvError, loadOnnx } from 'lightconv';
 *
 * try {
 *   await loadOnnx('model.onnx');
 * } catch (e) {
 *   if (e instanceof LightconvError) console.error(`${e.name}: ${e.message}`); // e.g. UnsupportedOpError
 *   else throw e;
 * }
 * ```
 */
export class LightconvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A shape does not fit an op: wrong rank, mismatched dims, a negative or non-integer dim.
 *
 * @example
 * ```ts
 * import { ShapeError, Tensor, add } from 'lightconv';
 *
 * try {
 *   add(Tensor.zeros([2, 3]), Tensor.zeros([4]));
 * } catch (e) {
 *   console.log(e instanceof ShapeError); // true: [2, 3] and [4] do not broadcast
 * }
 * ```
 */
export class ShapeError extends LightconvError {}

/**
 * A malformed, inconsistent or unsafe ONNX model or TensorProto.
 *
 * @example
 * ```ts
 * import { OnnxError, readOnnx } from 'lightconv';
 *
 * try {
 *   await readOnnx(new Uint8Array([0xff, 0xff, 0xff])); // not a ModelProto
 * } catch (e) {
 *   console.log(e instanceof OnnxError); // true
 * }
 * ```
 */
export class OnnxError extends LightconvError {}

/**
 * A value that does not fit an op's rules (bad attribute, wrong dtype, out-of-range index).
 *
 * @example
 * ```ts
 * import { Tensor, ValueError } from 'lightconv';
 *
 * try {
 *   Tensor.fromArray([1.5], [1], 'int64');
 * } catch (e) {
 *   console.log(e instanceof ValueError); // true: 1.5 is not an integer
 * }
 * ```
 */
export class ValueError extends LightconvError {}

/**
 * One or more ops the engine cannot run; lists every one of them at once.
 *
 * @example
 * ```ts
 * import { UnsupportedOpError, loadOnnx } from 'lightconv';
 *
 * try {
 *   await loadOnnx('model.onnx');
 * } catch (e) {
 *   if (e instanceof UnsupportedOpError) for (const op of e.ops) console.log(op.opType, op.nodes.length);
 * }
 * ```
 */
export class UnsupportedOpError extends LightconvError {
  constructor(
    /** Each unsupported op with the nodes that use it. */
    readonly ops: ReadonlyArray<{ opType: string; domain: string; nodes: string[]; reason?: string }>,
    where = 'model',
  ) {
    super(
      `${where} uses ${ops.length} unsupported op${ops.length === 1 ? '' : 's'}: ` +
        ops
          .map((o) => {
            const name = o.domain && o.domain !== 'ai.onnx' ? `${o.domain}.${o.opType}` : o.opType;
            const shown = o.nodes.slice(0, 3).map((n) => `'${n}'`).join(', ');
            const more = o.nodes.length > 3 ? ` and ${o.nodes.length - 3} more` : '';
            return `${name}${o.reason ? ` (${o.reason})` : ''} at ${shown}${more}`;
          })
          .join('; '),
    );
  }
}

/**
 * A declared size exceeds a configured budget (bytes, rank, element count); raised before
 * allocation.
 *
 * @example
 * ```ts
 * import { ResourceLimitError, Tensor, setLimits } from 'lightconv';
 *
 * const before = setLimits({ maxTensorBytes: 1024 });
 * try {
 *   Tensor.zeros([1024]); // 4 KiB of float32
 * } catch (e) {
 *   console.log(e instanceof ResourceLimitError); // true
 * } finally {
 *   setLimits(before);
 * }
 * ```
 */
export class ResourceLimitError extends LightconvError {}
