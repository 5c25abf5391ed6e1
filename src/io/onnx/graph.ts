import type { DType } from '../../core/dtype.js';
import { OnnxError, ResourceLimitError } from '../../core/errors.js';
import { fmtBytes, getLimits } from '../../core/limits.js';
import type { Tensor } from '../../core/tensor.js';
import { lookupOp } from './ops/index.js';
import { type AttrValue, OnnxNode } from './node.js';
import protobuf from 'protobufjs/minimal.js';
import { onnx } from './proto/onnx.js';
import { type ExternalReader, dtypeFromOnnx, onnxTypeName, safeInt, tensorFromProto } from './tensor_proto.js';

/**
 * The newest default-domain (ai.onnx) opset the engine knows. Opsets 19–22 changed the ops it
 * runs only by widening their types (and Pad's 'wrap' mode, AveragePool's dilations, which the
 * adapters check); a newer one is refused at load instead of run with older semantics.
 */
export const MAX_OPSET = 22;

/**
 * The newest IR version (file format) the engine reads: 10, the one ONNX released with opset 22
 * (ONNX 1.16–1.17). The pinned proto/onnx.proto names IR 8, but IR 9 and 10 added only element
 * types (float8, int4 — refused per tensor as unsupported), function overloads and metadata
 * fields that no graph the engine runs depends on. A newer format may carry fields this decoder
 * would silently skip, so it is refused, as a newer opset is.
 */
export const MAX_IR_VERSION = 10;

/** A graph input or output as declared: element type and shape (symbolic dims as their names). */
export interface ValueInfo {
  readonly name: string;
  /** 'tensor', or the kind of a non-tensor value (sequence, map, optional…) the engine cannot run. */
  readonly kind: string;
  readonly dtype: DType | undefined;
  /** ONNX's name for the element type, e.g. FLOAT. */
  readonly elemType: string;
  /** Dims: a number, a symbolic name, or null when unknown; undefined when the rank is unknown. */
  readonly shape: ReadonlyArray<number | string | null> | undefined;
}

/** An op type the engine cannot run, as a model's load reports it: where it occurs and why. */
export interface UnsupportedOp {
  /** The ONNX op type (or, for graph inputs/outputs, the kind of value). */
  opType: string;
  /** The op's domain ('' for the default ai.onnx domain). */
  domain: string;
  /** The names of the nodes (or values) that use it. */
  nodes: string[];
  /** Why, where the op type itself is known: e.g. "opset 5; needs ≥ 6". */
  reason?: string;
}

/**
 * A decoded and validated ONNX graph: nodes in topological order, initializers as tensors,
 * declared inputs and outputs. Structural problems (duplicate or missing values, cycles, bad
 * tensors) raise an OnnxError naming the value or node; ops the engine lacks are collected in
 * `unsupported` so that all of them can be reported at once.
 *
 * @example
 * ```ts
 * import { readOnnx } from 'lightconv/onnx';
 *
 * const g = await readOnnx('model.onnx');
 * console.log(g.opCounts(), g.parameterCount(), g.unsupported.map((u) => u.opType));
 * ```
 */
export class OnnxGraph {
  private constructor(
    readonly name: string,
    readonly irVersion: number,
    readonly producer: string,
    readonly opsets: ReadonlyMap<string, number>,
    readonly nodes: readonly OnnxNode[],
    readonly initializers: ReadonlyMap<string, Tensor>,
    /** Inputs the caller feeds (declared inputs that no initializer backs). */
    readonly inputs: readonly ValueInfo[],
    readonly outputs: readonly ValueInfo[],
    readonly unsupported: readonly UnsupportedOp[],
    /** The model's metadata_props (key → value), e.g. `lightconv.preprocess` written by training. */
    readonly metadata: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** Decodes serialized ModelProto bytes. `what` names the source in errors (a file name). */
  static decode(bytes: Uint8Array, what = 'model', readExternal?: ExternalReader): OnnxGraph {
    const limits = getLimits();
    if (bytes.length > limits.maxModelBytes) {
      throw new ResourceLimitError(`${what}: ${fmtBytes(bytes.length)} exceeds the ${fmtBytes(limits.maxModelBytes)} model budget`);
    }
    if (bytes.length === 0) throw new OnnxError(`${what}: empty file`);
    let m: onnx.ModelProto;
    try {
      // Unknown fields and enum values are kept ($unknowns), not dropped, so that an attribute
      // type beyond the schema is seen (attrValue) rather than read as an untyped attribute.
      const reader = protobuf.Reader.create(bytes);
      reader.discardUnknown = false;
      m = onnx.ModelProto.decode(reader);
    } catch (e) {
      throw new OnnxError(`${what}: not a valid ONNX model (${(e as Error).message})`);
    }
    return OnnxGraph.fromProto(m, what, readExternal);
  }

  /** Builds the graph from a decoded ModelProto (see `decode`); `readExternal` supplies external tensor data. */
  static fromProto(m: onnx.ModelProto.$Properties, what = 'model', readExternal?: ExternalReader): OnnxGraph {
    const g = m.graph;
    if (!g) throw new OnnxError(`${what}: has no graph`);
    const irVersion = safeInt(m.ir_version ?? 0, `${what} ir_version`);
    if (irVersion > MAX_IR_VERSION) {
      throw new OnnxError(`${what}: IR version ${irVersion} is newer than the newest this engine reads (${MAX_IR_VERSION}); re-export the model with an older ONNX (IR ≤ ${MAX_IR_VERSION}, opset ≤ ${MAX_OPSET})`);
    }
    const opsets = new Map<string, number>();
    for (const o of m.opset_import ?? []) {
      const domain = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
      const label = `${what}: opset import of '${domain || 'ai.onnx'}'`;
      const version = safeInt(o.version ?? 0, label);
      if (opsets.has(domain)) throw new OnnxError(`${label} appears twice (versions ${opsets.get(domain)} and ${version})`);
      if (version < 1) throw new OnnxError(`${label}: version ${version} is not a positive integer`);
      // A newer opset may have changed the meaning of ops the engine runs: refused, not guessed.
      if (domain === '' && version > MAX_OPSET) {
        throw new OnnxError(`${label}: version ${version} is newer than the newest this engine knows (${MAX_OPSET}); re-export the model at opset ${MAX_OPSET} or lower`);
      }
      opsets.set(domain, version);
    }
    // Models from before opset imports existed (IR 2) mean opset 1.
    if (!opsets.has('')) opsets.set('', irVersion < 3 ? 1 : 0);
    const nodesIn = g.node ?? [];
    if (nodesIn.length > getLimits().maxNodes) {
      throw new ResourceLimitError(`${what}: ${nodesIn.length} nodes exceed the limit of ${getLimits().maxNodes}`);
    }

    // Every value name is defined exactly once: by an initializer, a graph input, or a node output.
    const producedBy = new Map<string, string>();
    const define = (name: string, by: string) => {
      if (!name) throw new OnnxError(`${what}: ${by} defines a value with an empty name`);
      const prev = producedBy.get(name);
      if (prev !== undefined) throw new OnnxError(`${what}: value '${name}' is defined twice (by ${prev} and by ${by})`);
      producedBy.set(name, by);
    };

    const initializers = new Map<string, Tensor>();
    const initTypes = new Map<string, number>();
    for (const t of g.initializer ?? []) {
      const name = t.name ?? '';
      define(name, `initializer '${name}'`);
      initializers.set(name, tensorFromProto(t, `${what}: initializer`, readExternal));
      initTypes.set(name, t.data_type ?? 0);
    }
    if ((g.sparse_initializer ?? []).length > 0) throw new OnnxError(`${what}: sparse initializers are not supported`);

    const inputs: ValueInfo[] = [];
    const seenInputs = new Set<string>();
    for (const vi of g.input ?? []) {
      const info = valueInfo(vi, `${what} graph input`);
      if (seenInputs.has(info.name)) throw new OnnxError(`${what}: graph input '${info.name}' is declared twice`);
      seenInputs.add(info.name);
      // An input with an initializer of the same name is optional: the initializer is its default,
      // and must be of the type the input declares (else a fed value and the default would differ).
      if (initializers.has(info.name)) {
        const declared = vi.type?.tensor_type?.elem_type ?? 0;
        const stored = initTypes.get(info.name) ?? 0;
        if (declared !== 0 && declared !== stored) {
          throw new OnnxError(`${what}: graph input '${info.name}' is declared ${onnxTypeName(declared)}, but its initializer holds ${onnxTypeName(stored)}`);
        }
        continue;
      }
      define(info.name, `graph input '${info.name}'`);
      inputs.push(info);
    }

    const rawNodes = nodesIn.map((n, i) => toNode(n, i, opsets, what, readExternal));
    for (const n of rawNodes) for (const o of n.outputs) if (o) define(o, n.label);

    for (const n of rawNodes) {
      for (const name of n.inputs) {
        if (name && !producedBy.has(name)) throw new OnnxError(`${what}: ${n.label} reads '${name}', which no node, initializer or graph input defines`);
      }
    }
    const outputs = (g.output ?? []).map((vi) => valueInfo(vi, `${what} graph output`));
    const seenOutputs = new Set<string>();
    for (const o of outputs) {
      if (seenOutputs.has(o.name)) throw new OnnxError(`${what}: graph output '${o.name}' is declared twice`);
      seenOutputs.add(o.name);
      if (!producedBy.has(o.name)) throw new OnnxError(`${what}: graph output '${o.name}' is not produced by anything`);
    }
    const nodes = topoSort(rawNodes, new Set([...initializers.keys(), ...inputs.map((i) => i.name)]), what);

    const metadata = new Map<string, string>();
    for (const e of m.metadata_props ?? []) if (e.key) metadata.set(e.key, e.value ?? '');
    return new OnnxGraph(g.name ?? '', irVersion, [m.producer_name, m.producer_version].filter(Boolean).join(' '), opsets, nodes, initializers, inputs, outputs, findUnsupported(nodes, inputs, outputs), metadata);
  }

  /** How many nodes of each op type, most frequent first. */
  opCounts(): Map<string, number> {
    const c = new Map<string, number>();
    for (const n of this.nodes) c.set(n.opType, (c.get(n.opType) ?? 0) + 1);
    return new Map([...c].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  }

  /** Elements in floating-point initializers: the model's parameters (and BN statistics). */
  parameterCount(): number {
    let n = 0;
    for (const t of this.initializers.values()) if (t.dtype === 'float32' || t.dtype === 'float64') n += t.size;
    return n;
  }
}

function valueInfo(vi: onnx.ValueInfoProto.$Properties, what: string): ValueInfo {
  const name = vi.name ?? '';
  if (!name) throw new OnnxError(`${what} has no name`);
  const tp = vi.type;
  if (!tp || !tp.tensor_type) {
    const kind = tp?.sequence_type ? 'sequence' : tp?.map_type ? 'map' : tp?.optional_type ? 'optional' : tp?.sparse_tensor_type ? 'sparse tensor' : 'tensor';
    return { name, kind, dtype: undefined, elemType: kind === 'tensor' ? 'UNDEFINED' : kind, shape: undefined };
  }
  const elem = tp.tensor_type.elem_type ?? 0;
  const shape = tp.tensor_type.shape
    ? (tp.tensor_type.shape.dim ?? []).map((d, i) =>
        d.dim_value !== undefined && d.dim_value !== null ? safeInt(d.dim_value, `${what} '${name}' dim ${i}`) : d.dim_param ? d.dim_param : null,
      )
    : undefined;
  return { name, kind: 'tensor', dtype: dtypeFromOnnx(elem), elemType: onnxTypeName(elem), shape };
}

function toNode(n: onnx.NodeProto.$Properties, index: number, opsets: ReadonlyMap<string, number>, what: string, readExternal?: ExternalReader): OnnxNode {
  const opType = n.op_type ?? '';
  const name = n.name || `#${index}`;
  if (!opType) throw new OnnxError(`${what}: node '${name}' has no op_type`);
  const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
  const attrs = new Map<string, AttrValue>();
  for (const a of n.attribute ?? []) {
    const an = a.name ?? '';
    if (!an) throw new OnnxError(`${what}: ${opType} node '${name}' has an attribute without a name`);
    if (attrs.has(an)) throw new OnnxError(`${what}: ${opType} node '${name}' sets attribute '${an}' twice`);
    // Names starting with '_' are the optimizer's own (fused activations): a file may not set them.
    if (an.startsWith('_')) throw new OnnxError(`${what}: ${opType} node '${name}' sets attribute '${an}'; names starting with '_' are reserved for the engine's internal rewrites`);
    attrs.set(an, attrValue(a, `${what}: ${opType} node '${name}' attribute '${an}'`, readExternal));
  }
  return new OnnxNode(name, opType, domain, opsets.get(domain) ?? 0, [...(n.input ?? [])], [...(n.output ?? [])], attrs);
}

const A = onnx.AttributeProto.AttributeType;
const utf8 = new TextDecoder();

/** The AttributeProto field that holds a value of each attribute type. */
const VALUE_FIELD: Readonly<Record<number, keyof onnx.AttributeProto.$Properties>> = {
  [A.FLOAT]: 'f', [A.INT]: 'i', [A.STRING]: 's', [A.TENSOR]: 't', [A.GRAPH]: 'g', [A.SPARSE_TENSOR]: 'sparse_tensor', [A.TYPE_PROTO]: 'tp',
  [A.FLOATS]: 'floats', [A.INTS]: 'ints', [A.STRINGS]: 'strings', [A.TENSORS]: 'tensors', [A.GRAPHS]: 'graphs', [A.SPARSE_TENSORS]: 'sparse_tensors', [A.TYPE_PROTOS]: 'type_protos',
};
const SINGLE = new Set([A.FLOAT, A.INT, A.STRING, A.TENSOR, A.GRAPH, A.SPARSE_TENSOR, A.TYPE_PROTO]);

/**
 * The value fields an attribute sets: a scalar field as decoded (an own property: protobufjs keeps
 * defaults on the prototype), a list when non-empty.
 */
function setFields(a: onnx.AttributeProto.$Properties): string[] {
  return Object.entries(VALUE_FIELD)
    .filter(([t, f]) => {
      const v = (a as Record<string, unknown>)[f];
      return SINGLE.has(Number(t)) ? Object.hasOwn(a, f) && v !== null && v !== undefined : Array.isArray(v) && v.length > 0;
    })
    .map(([, f]) => f);
}

function attrValue(a: onnx.AttributeProto.$Properties, what: string, readExternal?: ExternalReader): AttrValue {
  const fields = setFields(a);
  const byField = (f: string) => Number(Object.keys(VALUE_FIELD).find((t) => VALUE_FIELD[Number(t)] === f));
  let type = a.type ?? 0;
  // protobufjs keeps an enum value it does not know (a type number beyond the schema's) and any
  // unknown field aside, as if absent: the attribute would be read as some other type.
  if (((a as { $unknowns?: unknown[] }).$unknowns ?? []).length > 0) {
    throw new OnnxError(`${what}: has an attribute type or field that this engine's ONNX schema does not know`);
  }
  if (type === 0) {
    // Old models omit `type`: it is the one field that is set (none: an int 0, as before).
    if (fields.length > 1) throw new OnnxError(`${what}: has no type and sets ${fields.map((f) => `'${f}'`).join(' and ')}; which one is meant?`);
    type = fields.length ? byField(fields[0]!) : A.INT;
  } else {
    const want = VALUE_FIELD[type];
    if (want === undefined) throw new OnnxError(`${what}: unknown attribute type ${type}`);
    // A value in another field than the declared type's would be ignored (or read as 0): refused.
    const other = fields.filter((f) => f !== want);
    if (other.length) throw new OnnxError(`${what}: declared ${A[type]} but sets ${other.map((f) => `'${f}'`).join(' and ')}${fields.includes(want) ? '' : ` and not '${want}'`}`);
    if (SINGLE.has(type) && !fields.includes(want)) throw new OnnxError(`${what}: declared ${A[type]} but has no value (field '${want}' is not set)`);
  }
  switch (type) {
    case A.FLOAT:
      return a.f ?? 0;
    case A.INT:
      return safeInt(a.i ?? 0, what);
    case A.STRING:
      return utf8.decode(a.s ?? new Uint8Array());
    case A.TENSOR:
      if (!a.t) throw new OnnxError(`${what}: tensor attribute without a tensor`);
      return tensorFromProto(a.t, what, readExternal);
    case A.FLOATS:
      return [...(a.floats ?? [])];
    case A.INTS:
      return (a.ints ?? []).map((v, i) => safeInt(v, `${what}[${i}]`));
    case A.STRINGS:
      return (a.strings ?? []).map((s) => utf8.decode(s));
    case A.TENSORS:
      return (a.tensors ?? []).map((t, i) => tensorFromProto(t, `${what}[${i}]`, readExternal));
    default:
      // Graphs (If/Loop bodies), sparse tensors, type protos: kept as a marker; no supported op reads them.
      return `<${A[type] ?? type}>`;
  }
}

/** Kahn's algorithm over value availability; a leftover node means a cycle. Stable for sorted input. */
function topoSort(nodes: readonly OnnxNode[], available: Set<string>, what: string): OnnxNode[] {
  const waiting = new Map<OnnxNode, number>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of nodes) {
    const missing = new Set(n.inputs.filter((i) => i && !available.has(i)));
    waiting.set(n, missing.size);
    for (const v of missing) {
      const list = consumers.get(v);
      if (list) list.push(n);
      else consumers.set(v, [n]);
    }
  }
  const order: OnnxNode[] = [];
  const ready = nodes.filter((n) => waiting.get(n) === 0);
  for (let i = 0; i < ready.length; i++) {
    const n = ready[i]!;
    order.push(n);
    for (const o of n.outputs) {
      for (const c of consumers.get(o) ?? []) {
        const left = waiting.get(c)! - 1;
        waiting.set(c, left);
        if (left === 0) ready.push(c);
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((n) => !order.includes(n)).slice(0, 5).map((n) => `'${n.name}'`);
    throw new OnnxError(`${what}: the graph has a cycle through ${stuck.join(', ')}`);
  }
  return order;
}

function findUnsupported(nodes: readonly OnnxNode[], inputs: readonly ValueInfo[], outputs: readonly ValueInfo[]): UnsupportedOp[] {
  const found = new Map<string, UnsupportedOp>();
  const note = (opType: string, domain: string, node: string, reason?: string) => {
    const key = `${domain}|${opType}|${reason ?? ''}`;
    const e = found.get(key);
    if (e) e.nodes.push(node);
    else found.set(key, { opType, domain, nodes: [node], ...(reason ? { reason } : {}) });
  };
  for (const n of nodes) {
    const op = n.domain === '' ? lookupOp(n.opType) : undefined;
    if (!op) note(n.opType, n.domain, n.name);
    else if (op.sinceVersion !== undefined && n.opset < op.sinceVersion) note(n.opType, n.domain, n.name, `opset ${n.opset}; needs ≥ ${op.sinceVersion}`);
    else if (op.untilVersion !== undefined && n.opset > op.untilVersion) note(n.opType, n.domain, n.name, `opset ${n.opset}; removed after opset ${op.untilVersion}`);
  }
  for (const v of [...inputs, ...outputs]) {
    if (v.kind !== 'tensor') note(`${v.kind} value`, '', v.name, 'only tensors are supported');
    else if (!v.dtype) note(`${v.elemType} tensor`, '', v.name, 'element type not supported');
  }
  return [...found.values()];
}
