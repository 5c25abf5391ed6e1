/**
 * Typed errors. Every error the engine raises on bad input is one of these, and its
 * message names the thing at fault (op, node, tensor, file) and the offending values.
 */
export class LightconvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A shape does not fit an op: wrong rank, mismatched dims, a negative or non-integer dim. */
export class ShapeError extends LightconvError {}

/** A malformed, inconsistent or unsafe ONNX model or TensorProto. */
export class OnnxError extends LightconvError {}

/** A value that does not fit an op's rules (bad attribute, wrong dtype, out-of-range index). */
export class ValueError extends LightconvError {}

/** One or more ops the engine cannot run; lists every one of them at once. */
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

/** A declared size exceeds a configured budget (bytes, rank, element count); raised before allocation. */
export class ResourceLimitError extends LightconvError {}
