import { readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { LightconvError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { readOnnx } from '../io/onnx/model.js';
import { decodeTensorProto } from '../io/onnx/tensor_proto.js';
import { crossEntropy } from '../train/losses.js';
import { OnnxTrainable } from '../train/onnx_trainable.js';
import { AdamW, Adam, type Optimizer, SGD } from '../train/optim.js';
import { type CaseResult, type Tolerance, compare } from './conformance.js';

/**
 * Training references (a folder with manifest.json beside model.onnx, see the fixtures README,
 * "autograd/"): the net of model.onnx is run in *training mode* through the autograd tape
 * (OnnxTrainable: BN with batch statistics, running stats updated PyTorch's way), the loss the
 * manifest names is computed, and everything the manifest lists is compared:
 *   forward      logits and loss of the training-mode forward
 *   gradients    d loss / d every parameter and d loss / d input
 *   bn           BN running statistics (and num_batches_tracked) after that forward
 *   <opt>        for each optimizer folder (sgd/, adamw/, adam/): N steps from the initial state
 *                on the same batch — the N losses, parameters, BN buffers and optimizer state
 * Hyperparameters (label smoothing, lr, momentum, betas, eps, weight decay, nesterov, BN
 * momentum) are read from the manifest's training_semantics text, with PyTorch's defaults where
 * it names none; tolerances from recommended_tolerance. Each group is one result line.
 */

interface Manifest {
  files: { file: string; pytorch_name: string | null }[];
  training_semantics?: Record<string, unknown>;
  recommended_tolerance?: Record<string, { abs: number; rel: number }>;
  onnx?: { initializer_to_pytorch?: Record<string, { pytorch_name: string }> };
}

export async function isAutogradCase(dir: string): Promise<boolean> {
  return (await stat(join(dir, 'manifest.json')).catch(() => undefined))?.isFile() ?? false;
}

/** A number after `key=` (or `key ` for prose such as "momentum 0.1") in a text, or undefined. */
function num(text: string, key: string): number | undefined {
  const m = text.match(new RegExp(`\\b${key}(?:\\s*=\\s*|\\s+)([-+]?[0-9][0-9.eE+-]*)`));
  return m ? Number(m[1]) : undefined;
}

export async function runAutogradCase(dir: string, base: string): Promise<CaseResult[]> {
  const name = relative(base, dir) || basename(dir);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const sem = manifest.training_semantics ?? {};
  const text = (k: string) => (typeof sem[k] === 'string' ? (sem[k] as string) : '');
  const tol = (k: string, fb: Tolerance): Tolerance => manifest.recommended_tolerance?.[k] ?? fb;
  const tFwd = tol('forward_logits_loss', { abs: 1e-5, rel: 1e-4 });
  const tGrad = tol('gradients', { abs: 1e-5, rel: 1e-3 });
  const tBn = tol('bn_running_stats', { abs: 1e-5, rel: 1e-4 });

  // PyTorch name → ONNX initializer name (identical unless the manifest maps them).
  const toOnnx = new Map<string, string>();
  for (const [init, v] of Object.entries(manifest.onnx?.initializer_to_pytorch ?? {})) toOnnx.set(v.pytorch_name, init);
  const onnxName = (pt: string) => toOnnx.get(pt) ?? pt;

  const tensors = new Map<string, Tensor>();
  for (const f of manifest.files) {
    if (!f.file.endsWith('.pb') || !f.file.startsWith('tensors/')) continue;
    const path = join(dir, f.file);
    tensors.set(f.file.slice('tensors/'.length, -'.pb'.length), decodeTensorProto(new Uint8Array(await readFile(path)), path).tensor);
  }
  const need = (k: string) => {
    const t = tensors.get(k);
    if (!t) throw new LightconvError(`${name}: manifest lists no tensors/${k}.pb`);
    return t;
  };
  const graph = await readOnnx(join(dir, 'model.onnx'));
  const lossText = text('loss');
  const smoothing = num(lossText, 'label_smoothing') ?? 0;
  const reduction = (lossText.match(/reduction\s*=\s*\\?"?(\w+)/)?.[1] ?? 'mean') as 'mean' | 'sum';
  const bnMomentum = text('mode').match(/momentum\s+([0-9.eE-]+)/)?.[1];
  const x = need('input');
  const labels = need('labels');

  /** A fresh net at the initial weights (init/*), in training mode. */
  const fresh = () => {
    const net = new OnnxTrainable(graph, bnMomentum ? { bnMomentum: Number(bnMomentum) } : {});
    const sd: Record<string, Tensor> = {};
    for (const [k, t] of tensors) if (k.startsWith('init/')) sd[onnxName(k.slice(5))] = t;
    net.loadStateDict(sd);
    return net;
  };
  const classWeights = lossText.match(/\bweight\s*=\s*(?:torch\.tensor\()?\[([^\]]*)\]/)?.[1]?.split(',').map(Number);
  const lossOf = (net: OnnxTrainable, input: Tensor) => {
    const logits = net.forward(input);
    return { logits, loss: crossEntropy(logits, labels, { labelSmoothing: smoothing, reduction, ...(classWeights ? { weight: classWeights } : {}) }) };
  };

  const results: CaseResult[] = [];
  const group = (g: string, tolerance: Tolerance, body: (cmp: (got: Tensor, ref: Tensor, what: string, t?: Tolerance) => void) => void) => {
    const r: CaseResult = { name: `${name}/${g}`, status: 'pass', sets: 0, maxAbs: 0, maxRel: 0, ms: 0, tolerance };
    const t0 = performance.now();
    const failures: string[] = [];
    try {
      body((got, ref, what, t = tolerance) => {
        r.sets++;
        try {
          const e = compare(got.dtype === ref.dtype ? got : new Tensor(ref.dtype === 'float32' ? Float32Array.from(got.dataSync()) : got.dataSync(), got.shape, ref.dtype), ref, t, what);
          r.maxAbs = Math.max(r.maxAbs, e.abs);
          r.maxRel = Math.max(r.maxRel, e.rel);
        } catch (e) {
          failures.push((e as Error).message);
        }
      });
    } catch (e) {
      failures.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    }
    if (failures.length) {
      r.status = 'fail';
      r.detail = `${failures.length} mismatch${failures.length > 1 ? 'es' : ''}; first: ${failures[0]}`;
    } else r.detail = `${r.sets} tensors`;
    r.ms = performance.now() - t0;
    results.push(r);
  };

  // One training-mode forward + backward from the initial state.
  const net = fresh();
  const input = x.clone().requireGrad();
  const { logits, loss } = lossOf(net, input);
  loss.backward();
  group('forward', tFwd, (cmp) => {
    cmp(logits, need('logits'), 'logits');
    cmp(loss, need('loss'), 'loss');
  });
  group('gradients', tGrad, (cmp) => {
    const params = new Map(net.namedParameters());
    for (const [k, ref] of tensors) {
      if (!k.startsWith('grad/')) continue;
      const pt = k.slice(5);
      const got = pt === 'input' ? input.grad : params.get(onnxName(pt))?.grad;
      if (!got) throw new LightconvError(`no gradient for '${pt}'`);
      cmp(got, ref, `grad ${pt}`);
    }
  });
  const bnCheck = (cmp: (got: Tensor, ref: Tensor, what: string) => void, m: OnnxTrainable, prefix: string) => {
    const bufs = new Map(m.namedBuffers());
    for (const [k, ref] of tensors) {
      if (!k.startsWith(prefix)) continue;
      const pt = k.slice(prefix.length);
      const got = bufs.get(onnxName(pt));
      if (!got) throw new LightconvError(`no buffer '${pt}'`);
      cmp(got, ref, pt);
    }
  };
  group('bn running stats after 1 forward', tBn, (cmp) => bnCheck(cmp, net, 'bn_after_1_forward/'));

  // Optimizer runs: each folder with losses.pb.
  for (const opt of [...new Set([...tensors.keys()].filter((k) => /^[^/]+\/losses$/.test(k)).map((k) => k.split('/')[0]!))]) {
    const spec = text(opt);
    const tolKey = Object.keys(manifest.recommended_tolerance ?? {}).find((k) => new RegExp(`^params_after_(\\d+_)?${opt}_steps$`).test(k));
    const tParams = tolKey ? tol(tolKey, { abs: 1e-5, rel: 1e-4 }) : { abs: 1e-5, rel: 1e-4 };
    if (!/^(sgd|adamw?)\b/.test(opt)) {
      results.push({ name: `${name}/${opt}`, status: 'skip', detail: `optimizer '${opt}' is not one of sgd, adam, adamw`, sets: 0, maxAbs: 0, maxRel: 0, ms: 0, tolerance: tParams });
      continue;
    }
    group(opt, tParams, (cmp) => {
      const m = fresh();
      const params = m.parameters();
      const lr = num(spec, 'lr') ?? 1e-3;
      const wd = num(spec, 'weight_decay') ?? (opt === 'adamw' ? 1e-2 : 0);
      let optimizer: Optimizer<{ lr: number }>;
      if (opt.startsWith('sgd')) {
        optimizer = new SGD(params, { lr, momentum: num(spec, 'momentum') ?? 0, dampening: num(spec, 'dampening') ?? 0, weightDecay: wd, nesterov: /nesterov\s*=?\s*True/.test(spec) });
      } else {
        const betas = spec.match(/betas\s*=\s*\(\s*([0-9.eE-]+)\s*,\s*([0-9.eE-]+)\s*\)/);
        const o = { lr, betas: (betas ? [Number(betas[1]), Number(betas[2])] : [0.9, 0.999]) as [number, number], eps: num(spec, 'eps') ?? 1e-8, weightDecay: wd, amsgrad: /amsgrad\s*=?\s*True/.test(spec) };
        optimizer = opt.startsWith('adamw') ? new AdamW(params, o) : new Adam(params, o);
      }
      const refLosses = need(`${opt}/losses`);
      const losses: number[] = [];
      for (let s = 0; s < refLosses.size; s++) {
        optimizer.zeroGrad();
        const { loss: l } = lossOf(m, x);
        losses.push(l.dataSync()[0]!);
        l.backward();
        optimizer.step();
      }
      cmp(Tensor.fromArray(losses, refLosses.shape), refLosses, 'losses', tFwd);
      const named = new Map(m.namedParameters());
      const bufs = new Map(m.namedBuffers());
      for (const [k, ref] of tensors) {
        if (!k.startsWith(`${opt}/`) || k === `${opt}/losses`) continue;
        const [folder, pt] = [k.slice(opt.length + 1, k.lastIndexOf('/')), k.slice(k.lastIndexOf('/') + 1)];
        const p = named.get(onnxName(pt));
        if (folder.startsWith('params_after')) cmp(p ?? fail(pt), ref, `param ${pt}`);
        else if (folder.startsWith('bn_after')) cmp(bufs.get(onnxName(pt)) ?? fail(pt), ref, `buffer ${pt}`, tBn);
        else {
          // Optimizer state: momentum_buffer / exp_avg / exp_avg_sq (…_after_N_steps).
          const key = folder.replace(/_after_\d+_steps$/, '');
          const st = p ? (optimizer.state.get(p)?.[key] as Tensor | undefined) : undefined;
          cmp(st ?? fail(`${key} of ${pt}`), ref, `${key} ${pt}`, tGrad);
        }
      }
    });
  }
  return results;
}

function fail(what: string): never {
  throw new LightconvError(`nothing to compare for '${what}'`);
}

