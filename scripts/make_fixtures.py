#!/usr/bin/python3
"""Deterministic generator for lightconv's test fixtures and its demo model.

Run it from the repository root with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 scripts/make_fixtures.py                # everything
    /usr/bin/python3 scripts/make_fixtures.py --only fixtures
    /usr/bin/python3 scripts/make_fixtures.py --only demo

It reads the source data from ``--datasets`` (default ``../shared/datasets`` beside the repo: the retina photo,
three other photos used only to calibrate BatchNorm statistics, and the 8x8 handwritten digits);
nothing it writes refers to that folder, so the tests never need it.

It writes (and overwrites):

``tests/fixtures/models/<name>/`` for ``mnv3_mini``, ``mnv3_mini_bn``, ``mnv3_mini_opset11``,
``effnet_mini``, ``eca_mini``, ``eca_mini_opset11`` and ``ops_mix``, in ONNX backend-test layout::

    model.onnx                   graph input ``input`` [batch, C, H, W] (symbolic ``batch``),
                                 graph output ``logits`` [batch, classes]
    test_data_set_0/input_0.pb   onnx.TensorProto (numpy_helper.from_array), float32
    test_data_set_0/output_0.pb  reference logits: PyTorch eval mode, float32, CPU, 1 thread
                                 (ops_mix: the numpy formula in ``make_ops_mix``)
    test_data_set_1/...          another batch size (seeded N(0,1) input)
    image.png                    (CNN fixtures) the 32x32 RGB crop behind test_data_set_0
    meta.json                    provenance, seed, op counts, parameter count, stats, tolerance

``examples/``: ``digits.onnx`` (a trained MobileNet-style digit classifier, BN folded, opset 17),
``digit-<label>.png`` (original 8x8 test-split images), ``digits-labels.txt``,
``digits-reference.json`` (PyTorch logits per shipped PNG) and ``README.md``.

Every random draw is seeded and torch runs on one CPU thread; two runs give identical files.
onnxruntime is not installable here, so the usual onnxruntime cross-check is skipped (recorded in
meta.json); instead each CNN fixture records max |float32 - float64| of the same PyTorch model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import PIL
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from torchvision import transforms
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
EXAMPLES = ROOT / "examples"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SIZE = 32
RESIZE = 37  # 32 / 0.875 = 36.6 -> 37, torchvision's Resize(256) + CenterCrop(224) ratio
CALIB_PHOTOS = ["chelsea.png", "ihc_colon.png", "cell_phase.png", "retina_microaneurysms.png"]
TOLERANCE = {"abs": 1e-4, "rel": 1e-3}
DYNAMIC_AXES = {"input": {0: "batch"}, "logits": {0: "batch"}}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def versions() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "onnxruntime": None,
    }


def dump_json(obj, indent: int = 0) -> str:
    """json.dumps(indent=2), except that lists of scalars stay on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {dump_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)) and obj:
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + dump_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pb(arr: np.ndarray, name: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(numpy_helper.from_array(np.ascontiguousarray(arr), name).SerializeToString())


def stats(a: np.ndarray) -> dict:
    a = a.astype(np.float64)
    return {"mean": round(float(a.mean()), 6), "std": round(float(a.std()), 6),
            "min": round(float(a.min()), 6), "max": round(float(a.max()), 6)}


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def photo_transform(size: int = SIZE, resize: int = RESIZE):
    """torchvision preprocessing up to (not including) ToTensor: Resize(shorter side) + CenterCrop."""
    return transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(size)])


def to_normalized(img: Image.Image) -> torch.Tensor:
    """ToTensor + Normalize(ImageNet) -> [3, H, W] float32; equals (png/255 - mean)/std in float32."""
    t = transforms.ToTensor()(img)
    return transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)(t)


def photo_input(datasets: Path) -> tuple[torch.Tensor, Image.Image]:
    img = Image.open(datasets / "images" / "retina_fundus.png").convert("RGB")
    crop = photo_transform()(img)
    x = to_normalized(crop).unsqueeze(0)
    # the README promise: (png/255 - mean)/std in float32 reproduces the tensor bit for bit
    arr = np.asarray(crop, dtype=np.float32) / np.float32(255)
    ref = (arr - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    assert np.array_equal(ref.transpose(2, 0, 1)[None], x.numpy()), "normalisation not bit-exact"
    return x, crop


def calibration_batch(datasets: Path, g: torch.Generator) -> torch.Tensor:
    """4 seeded random 32x32 crops of other photos (shorter side resized to 48) + 4 N(0,1) images."""
    xs = []
    for name in CALIB_PHOTOS:
        img = transforms.Resize(48)(Image.open(datasets / "images" / name).convert("RGB"))
        w, h = img.size
        left = int(torch.randint(0, w - SIZE + 1, (1,), generator=g))
        top = int(torch.randint(0, h - SIZE + 1, (1,), generator=g))
        xs.append(to_normalized(img.crop((left, top, left + SIZE, top + SIZE))))
    x = torch.stack(xs)
    return torch.cat([x, torch.randn(4, 3, SIZE, SIZE, generator=g)])


@torch.no_grad()
def randomise(model: nn.Module, seed: int, datasets: Path) -> dict:
    """The reference fixtures' recipe, at small size (see ../shared/fixtures/README.md).

    1. every Conv/Linear bias += N(0, 0.05);
    2. every BN: weight ~ U(0.6, 1.4), bias ~ N(0, 0.1); running stats re-estimated (cumulative
       average) on 2 calibration batches with only the BN layers in train mode, then perturbed:
       mean += N(0, 0.05) * sigma, var *= U(0.9, 1.1);
    3. every Linear weight (in order) is scaled so that input @ W.T has std 1 on a third calibration
       batch (the reference scales only the last layer; here the hidden Linear of MobileNetV3's
       classifier needs it too, or the logits hardly depend on the input).
    """
    g = torch.Generator().manual_seed(seed + 10000)
    model.eval()
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and m.bias is not None:
            m.bias.add_(torch.randn(m.bias.shape, generator=g) * 0.05)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.weight.copy_(torch.rand(bn.weight.shape, generator=g) * 0.8 + 0.6)
        bn.bias.copy_(torch.randn(bn.bias.shape, generator=g) * 0.1)
    if bns:
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        for _ in range(2):
            model(calibration_batch(datasets, g))
        for bn, mom in zip(bns, momenta):
            bn.momentum = mom
            bn.eval()
            sigma = bn.running_var.sqrt()
            bn.running_mean.add_(torch.randn(bn.running_mean.shape, generator=g) * 0.05 * sigma)
            bn.running_var.mul_(torch.rand(bn.running_var.shape, generator=g) * 0.2 + 0.9)
    # 3. Linear layers, in order: weight scaled so that x @ W.T (bias excluded) has std 1 on a third
    #    calibration batch. torchvision's N(0, 0.01) Linear init would otherwise leave the logits
    #    dominated by the (input-independent) biases.
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    xcal = calibration_batch(datasets, g)
    scales = []
    for lin in linears:
        seen = []
        h = lin.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
        model(xcal)
        h.remove()
        std = float((seen[0] @ lin.weight.T).std())
        lin.weight.div_(std)
        scales.append(round(1 / std, 4))
    return {
        "bias_noise": "every Conv/Linear bias += N(0, 0.05)",
        "bn": "weight ~ U(0.6,1.4), bias ~ N(0,0.1); running stats re-estimated on 2 calibration "
              "batches (4 seeded 32x32 crops of chelsea/ihc_colon/cell_phase/retina_microaneurysms "
              "resized to shorter side 48 + 4 N(0,1) images), then mean += N(0,0.05)*sigma, "
              "var *= U(0.9,1.1)",
        "linear_scale": "each Linear weight (in module order) multiplied by " + str(scales) +
                        " so that input @ W.T has std 1 on a 3rd calibration batch (bias unchanged)",
        "generator_seed": seed + 10000,
    }


def count_macs(model: nn.Module, x: torch.Tensor) -> dict:
    per_type: Counter = Counter()
    hooks = []

    def hook(m, inp, out):
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            k = int(np.prod(m.kernel_size)) * (m.in_channels // m.groups)
            per_type[type(m).__name__] += out[0].numel() * k
        elif isinstance(m, nn.Linear):
            per_type["Linear"] += m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return {"total": int(sum(per_type.values())), "by_layer_type": dict(sorted(per_type.items()))}


def export(model: nn.Module, x: torch.Tensor, path: Path, opset: int, keep_bn: bool) -> dict:
    model.eval()
    kwargs = dict(input_names=["input"], output_names=["logits"], dynamic_axes=DYNAMIC_AXES,
                  opset_version=opset)
    if keep_bn:
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, x, str(path), **kwargs)
    return {
        "function": "torch.onnx.export",
        "opset_version": opset,
        "training": "torch.onnx.TrainingMode.PRESERVE (model in eval())" if keep_bn
                    else "default (EVAL)",
        "do_constant_folding": not keep_bn,
        "input_names": ["input"],
        "output_names": ["logits"],
        "dynamic_axes": DYNAMIC_AXES,
    }


def onnx_summary(path: Path) -> dict:
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    ops = Counter(n.op_type for n in m.graph.node)
    init_names = {i.name for i in m.graph.initializer}
    conv_bias = sum(1 for n in m.graph.node if n.op_type == "Conv" and len(n.input) > 2 and n.input[2])
    eps = sorted({round(a.f, 8) for n in m.graph.node if n.op_type == "BatchNormalization"
                  for a in n.attribute if a.name == "epsilon"})

    def vi(v):
        dims = [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
        return {"name": v.name, "shape": dims, "elem_type": v.type.tensor_type.elem_type}

    return {
        "ir_version": m.ir_version,
        "opset": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
        "op_type_counts": dict(sorted(ops.items())),
        "node_count": len(m.graph.node),
        "initializer_count": len(init_names),
        "initializer_elements": int(sum(int(np.prod(i.dims)) for i in m.graph.initializer)),
        "conv_nodes_with_bias": conv_bias,
        "batchnorm_epsilons": eps,
        "graph_inputs": [vi(v) for v in m.graph.input if v.name not in init_names],
        "graph_outputs": [vi(v) for v in m.graph.output],
        "file_size": path.stat().st_size,
        "sha256": sha256(path),
    }


def run_onnx_graph(path: Path, x: np.ndarray) -> np.ndarray:
    """A small node-by-node interpreter for the ops in these fixtures (torch.nn.functional / numpy
    per node, float64), a check that the exported graph computes what the PyTorch module does."""
    m = onnx.load(str(path))
    env = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
    env["input"] = torch.from_numpy(x)
    f64 = lambda t: t.double() if t.is_floating_point() else t  # noqa: E731
    env = {k: f64(v) for k, v in env.items()}
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    for n in m.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
        ins = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Constant":
            out = f64(torch.from_numpy(numpy_helper.to_array(a["value"]).copy()))
        elif op == "Conv":
            w, b = ins[1], ins[2] if len(ins) > 2 else None
            nd = w.dim() - 2
            pads = a.get("pads", [0] * 2 * nd)
            assert pads[:nd] == pads[nd:] and a.get("auto_pad", b"NOTSET") == b"NOTSET"
            conv = F.conv1d if nd == 1 else F.conv2d
            out = conv(ins[0], w, b, a.get("strides", [1] * nd), pads[:nd], a.get("dilations", [1] * nd),
                       a.get("group", 1))
        elif op == "BatchNormalization":
            out = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, a.get("epsilon", 1e-5))
        elif op == "Relu":
            out = F.relu(ins[0])
        elif op == "LeakyRelu":
            out = F.leaky_relu(ins[0], a.get("alpha", 0.01))
        elif op == "HardSwish":
            out = ins[0] * torch.clamp(ins[0] / 6 + 0.5, 0, 1)
        elif op == "HardSigmoid":
            out = torch.clamp(ins[0] * a.get("alpha", 0.2) + a.get("beta", 0.5), 0, 1)
        elif op == "Sigmoid":
            out = torch.sigmoid(ins[0])
        elif op == "Clip":
            out = torch.clamp(ins[0], float(ins[1]), float(ins[2]))
        elif op == "Mul":
            out = ins[0] * ins[1]
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "GlobalAveragePool":
            out = ins[0].mean(dim=tuple(range(2, ins[0].dim())), keepdim=True)
        elif op == "Flatten":
            out = ins[0].flatten(a.get("axis", 1)).reshape(int(np.prod(ins[0].shape[:a.get("axis", 1)])), -1)
        elif op == "Gemm":
            aa = ins[0].T if a.get("transA", 0) else ins[0]
            bb = ins[1].T if a.get("transB", 0) else ins[1]
            out = a.get("alpha", 1.0) * (aa @ bb) + (a.get("beta", 1.0) * ins[2] if len(ins) > 2 else 0)
        elif op in ("Squeeze", "Unsqueeze"):
            axes = a["axes"] if opset < 13 else [int(v) for v in ins[1].reshape(-1)]
            out = ins[0]
            if op == "Squeeze":
                for ax in sorted((ax % out.dim() for ax in axes), reverse=True):
                    out = out.squeeze(ax)
            else:
                rank = out.dim() + len(axes)
                for ax in sorted(ax % rank for ax in axes):
                    out = out.unsqueeze(ax)
        elif op == "Transpose":
            out = ins[0].permute(*a["perm"])
        elif op == "Pad":
            pads = [int(v) for v in ins[1]]
            nd = len(pads) // 2
            tp = []
            for d in reversed(range(nd)):
                tp += [pads[d], pads[d + nd]]
            mode = a.get("mode", b"constant").decode()
            out = F.pad(ins[0], tp, mode=mode) if mode != "constant" else F.pad(ins[0], tp)
        elif op in ("MaxPool", "AveragePool"):
            k, st = a["kernel_shape"], a.get("strides", [1, 1])
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:]
            if op == "MaxPool":
                out = F.max_pool2d(ins[0], k, st, pads[:2], a.get("dilations", [1, 1]), bool(a.get("ceil_mode", 0)))
            else:
                out = F.avg_pool2d(ins[0], k, st, pads[:2], bool(a.get("ceil_mode", 0)),
                                   bool(a.get("count_include_pad", 0)))
        else:
            raise NotImplementedError(op)
        env[n.output[0]] = out
    return env[m.graph.output[0].name].numpy()


def float64_diff(model: nn.Module, x: torch.Tensor, y32: torch.Tensor) -> float:
    import copy
    m64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        y64 = m64(x.double())
    return float((y32.double() - y64).abs().max())


def tolerance_for(measured: float) -> dict:
    """abs = max(1e-4, 10 x measured float32 error) rounded up to a 1-2-5 step; rel = 1e-3."""
    target = max(TOLERANCE["abs"], 10 * measured)
    exp = math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        if step * 10.0 ** exp >= target * (1 - 1e-9):
            return {"abs": float(f"{step * 10.0 ** exp:.0e}"), "rel": TOLERANCE["rel"]}


def topk(y: np.ndarray, k: int = 5) -> list:
    return [[int(i) for i in np.argsort(-row, kind="stable")[:k]] for row in y]


def write_cnn_fixture(name: str, model: nn.Module, sets: list, *, seed: int, opset: int,
                      keep_bn: bool, description: str, provenance: dict, init_details: dict,
                      extra: dict | None = None) -> dict:
    """sets: list of (description, input tensor, image or None)."""
    d = fresh_dir(FIXTURES / name)
    model.eval()
    export_info = export(model, sets[0][1], d / "model.onnx", opset, keep_bn)
    summary = onnx_summary(d / "model.onnx")
    test_sets = []
    worst = 0.0
    for i, (what, x, img) in enumerate(sets):
        with torch.no_grad():
            y = model(x)
        assert torch.isfinite(y).all()
        write_pb(x.numpy(), "input", d / f"test_data_set_{i}" / "input_0.pb")
        write_pb(y.numpy(), "logits", d / f"test_data_set_{i}" / "output_0.pb")
        diff64 = float64_diff(model, x, y)
        worst = max(worst, diff64)
        graph_diff = float(np.abs(run_onnx_graph(d / "model.onnx", x.numpy()) - y.numpy().astype(np.float64)).max())
        assert graph_diff < 1e-4, f"{name}: ONNX graph interpreter differs from PyTorch by {graph_diff}"
        entry = {"name": f"test_data_set_{i}", "input": what, "input_shape": list(x.shape),
                 "output_shape": list(y.shape), "input_stats": stats(x.numpy()),
                 "logit_stats": stats(y.numpy()), "top5": topk(y.numpy()),
                 "max_abs_diff_float32_vs_float64": float(f"{diff64:.3g}"),
                 "max_abs_diff_onnx_graph_interpreter": float(f"{graph_diff:.3g}")}
        if img is not None:
            img.save(d / "image.png")
            entry["image"] = "image.png"
        test_sets.append(entry)
    n_bn = sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    meta = {
        "name": name,
        "description": description,
        "provenance": provenance,
        "seed": seed,
        "init_details": init_details,
        "versions": versions(),
        "export": export_info,
        "bn_folding": {"batchnorm_modules": n_bn,
                       "batchnormalization_nodes": summary["op_type_counts"].get("BatchNormalization", 0),
                       "folded": not keep_bn},
        "input": {"name": "input", "shape": ["batch"] + list(sets[0][1].shape[1:]), "dtype": "float32"},
        "output": {"name": "logits", "shape": ["batch", int(y.shape[1])], "dtype": "float32"},
        "parameter_count": int(sum(p.numel() for p in model.parameters())),
        "macs_per_image": count_macs(model, sets[0][1]),
        "op_type_counts": summary["op_type_counts"],
        "onnx": summary,
        "test_sets": test_sets,
        "onnxruntime_cross_check": "skipped: onnxruntime is not importable in this Python",
        "graph_check": "model.onnx was also evaluated node by node in float64 with torch.nn.functional "
                       "(run_onnx_graph in scripts/make_fixtures.py): test_sets[].max_abs_diff_onnx_graph_interpreter",
        "max_abs_diff_float32_vs_float64": float(f"{worst:.3g}"),
        "recommended_tolerance": tolerance_for(worst),
        "tolerance_rule": "|engine - reference| <= abs + rel*|reference|, elementwise, vs output_0.pb; "
                          "abs = max(1e-4, 10 * max|float32 - float64|) rounded up to a 1-2-5 step, "
                          "rel = 1e-3",
    }
    if extra:
        meta.update(extra)
    (d / "meta.json").write_text(dump_json(meta) + "\n")
    return meta


# --------------------------------------------------------------------------------------------
# CNN fixtures
# --------------------------------------------------------------------------------------------

MNV3_ROWS = [
    # input, kernel, expanded, out, use_se, activation, stride, dilation
    (8, 3, 8, 8, True, "RE", 2, 1),      # no expand conv, SE, ReLU, stride 2      16 -> 8
    (8, 3, 24, 16, False, "RE", 2, 1),   # expand, ReLU, stride 2                  8 -> 4
    (16, 3, 48, 16, False, "RE", 1, 1),  # residual                                4
    (16, 5, 48, 24, True, "HS", 2, 1),   # 5x5 depthwise, SE, hard-swish, stride 2 4 -> 2
    (24, 5, 72, 24, True, "HS", 1, 1),   # residual with SE + hard-swish           2
]
MNV3_LAST_CHANNEL = 64


def build_mnv3(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    cfg = [InvertedResidualConfig(*row, width_mult=1.0) for row in MNV3_ROWS]
    return MobileNetV3(cfg, last_channel=MNV3_LAST_CHANNEL, num_classes=10).eval()


def random_input(seed: int, batch: int, shape=(3, SIZE, SIZE)) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def make_mnv3(datasets: Path, photo: torch.Tensor, crop: Image.Image) -> None:
    seed = 7
    model = build_mnv3(seed)
    init = randomise(model, seed, datasets)
    sets = [("photo: retina_fundus.png, Resize(37) + CenterCrop(32) + ImageNet Normalize", photo, crop),
            (f"random N(0,1), torch.Generator seed {seed + 1}", random_input(seed + 1, 2), None)]
    prov = {
        "builder": "torchvision.models.mobilenetv3.MobileNetV3([InvertedResidualConfig(*row, "
                   f"width_mult=1.0) for row in rows], last_channel={MNV3_LAST_CHANNEL}, num_classes=10)",
        "rows (input, kernel, expanded, out, use_se, activation, stride, dilation)": MNV3_ROWS,
        "init": "torch.manual_seed(seed) -> torchvision default init, then init_details",
        "norm_layer": "torchvision default: BatchNorm2d(eps=1e-3, momentum=0.01)",
        "photo": "retina_fundus.png (448x448 RGB, CC0): PIL RGB -> transforms.Resize(37) (bilinear, "
                 "antialiased) -> CenterCrop(32) -> ToTensor -> Normalize(ImageNet mean/std)",
    }
    variants = [
        ("mnv3_mini", 17, False, "Tiny torchvision MobileNetV3 (SE, hard-swish, ReLU, stride 2, 5x5 "
         "depthwise, residuals), 32x32x3, 10 classes. Default export: BN folded into Conv, opset 17."),
        ("mnv3_mini_bn", 17, True, "Same weights and inputs as mnv3_mini (identical outputs), exported "
         "with BatchNormalization kept (training=PRESERVE, do_constant_folding=False, model in "
         "eval), eps 1e-3, opset 17."),
        ("mnv3_mini_opset11", 11, False, "Same weights and inputs as mnv3_mini (identical outputs) at "
         "opset 11: hard-swish exports as HardSigmoid(alpha=1/6, beta=0.5) + Mul. BN folded."),
    ]
    for name, opset, keep_bn, desc in variants:
        write_cnn_fixture(name, model, sets, seed=seed, opset=opset, keep_bn=keep_bn,
                          description=desc, provenance=prov, init_details=init)


def make_effnet(datasets: Path, photo: torch.Tensor, crop: Image.Image) -> None:
    seed = 8
    torch.manual_seed(seed)
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    model = EfficientNet(setting, dropout=0.2, num_classes=10, last_channel=last_channel).eval()
    init = randomise(model, seed, datasets)
    sets = [("photo: retina_fundus.png, Resize(37) + CenterCrop(32) + ImageNet Normalize", photo, crop),
            (f"random N(0,1), torch.Generator seed {seed + 1}", random_input(seed + 1, 2), None)]
    prov = {
        "builder": "EfficientNet(*_efficientnet_conf('efficientnet_b0', width_mult=0.25, "
                   "depth_mult=0.25), dropout=0.2, num_classes=10)",
        "stages": [{"expand_ratio": c.expand_ratio, "kernel": c.kernel, "stride": c.stride,
                    "in": c.input_channels, "out": c.out_channels, "layers": c.num_layers}
                   for c in setting],
        "norm_layer": "BatchNorm2d default (eps=1e-5)",
        "notes": "SiLU exports as Sigmoid + Mul; stochastic depth and dropout vanish in eval mode; "
                 "at 32x32 the last stages run on 1x1 feature maps",
        "photo": "retina_fundus.png: Resize(37) + CenterCrop(32) + ToTensor + Normalize(ImageNet)",
    }
    write_cnn_fixture("effnet_mini", model, sets, seed=seed, opset=17, keep_bn=True,
                      description="Tiny torchvision EfficientNet-B0 (width 0.25, depth 0.25), 32x32x3, "
                                  "10 classes, BatchNormalization kept (eps 1e-5), opset 17.",
                      provenance=prov, init_details=init)


class ECA(nn.Module):
    """Efficient channel attention: GAP -> squeeze -> transpose -> Conv1d(1,1,k) -> transpose ->
    unsqueeze -> sigmoid -> multiply."""

    def __init__(self, k: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

    def forward(self, x):
        y = self.avgpool(x).squeeze(-1).transpose(-1, -2)   # [N, 1, C]
        y = self.conv(y).transpose(-1, -2).unsqueeze(-1)    # [N, C, 1, 1]
        return x * torch.sigmoid(y)


class EcaMini(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.LeakyReLU(0.01))                                   # 32 -> 16
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, padding=2, dilation=2, groups=16, bias=False),
                                nn.BatchNorm2d(16), nn.ReLU6())                         # 16
        self.pw = nn.Sequential(nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24),
                                nn.LeakyReLU(0.01))
        self.eca1 = ECA(3)
        self.maxpool = nn.MaxPool2d(3, stride=2, ceil_mode=True)                        # 16 -> 8
        self.conv = nn.Sequential(nn.Conv2d(24, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU6())
        self.eca2 = ECA(5)
        self.avgpool = nn.AvgPool2d(2)                                                  # 8 -> 4
        self.fc = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x):
        x = self.pw(self.dw(self.stem(x)))
        x = self.maxpool(self.eca1(x))
        x = self.avgpool(self.eca2(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


def make_eca(datasets: Path, photo: torch.Tensor, crop: Image.Image) -> None:
    seed = 9
    torch.manual_seed(seed)
    model = EcaMini().eval()
    init = randomise(model, seed, datasets)
    sets = [("photo: retina_fundus.png, Resize(37) + CenterCrop(32) + ImageNet Normalize", photo, crop),
            (f"random N(0,1), torch.Generator seed {seed + 1}", random_input(seed + 1, 2), None)]
    prov = {
        "builder": "EcaMini (defined in scripts/make_fixtures.py)",
        "layers": [
            "stem: Conv2d(3,16,3,stride 2,pad 1,no bias) + BN + LeakyReLU(0.01)        32 -> 16",
            "dw: Conv2d(16,16,3,pad 2,dilation 2,groups 16,no bias) + BN + ReLU6 (Clip 0..6)",
            "pw: Conv2d(16,24,1,no bias) + BN + LeakyReLU(0.01)",
            "eca1: GAP -> squeeze(-1) -> transpose -> Conv1d(1,1,3,pad 1,no bias) -> transpose -> "
            "unsqueeze(-1) -> sigmoid -> x * gate",
            "maxpool: MaxPool2d(3, stride 2, ceil_mode=True)                            16 -> 8",
            "conv: Conv2d(24,32,3,pad 1,no bias) + BN + ReLU6",
            "eca2: as eca1 with Conv1d(1,1,5,pad 2)",
            "avgpool: AvgPool2d(2)                                                     8 -> 4",
            "fc: flatten(x,1) -> Linear(512, 10)",
        ],
        "photo": "retina_fundus.png: Resize(37) + CenterCrop(32) + ToTensor + Normalize(ImageNet)",
    }
    for name, opset, desc in [
        ("eca_mini", 17, "Small CNN with ECA attention (1-D conv), LeakyReLU(0.01), dilated depthwise "
                         "conv, ReLU6 (Clip), MaxPool ceil_mode, AvgPool, Flatten + Gemm. Opset 17, BN folded."),
        ("eca_mini_opset11", 11, "Same weights and inputs as eca_mini (identical outputs) at opset 11: "
                                 "Squeeze/Unsqueeze carry axes as attributes. BN folded."),
    ]:
        write_cnn_fixture(name, model, sets, seed=seed, opset=opset, keep_bn=False, description=desc,
                          provenance=prov, init_details=init)


# --------------------------------------------------------------------------------------------
# ops_mix: hand-written graph + numpy reference
# --------------------------------------------------------------------------------------------

OPS_MIX_GATHER = [37, -1]


def ops_mix_reference(x: np.ndarray) -> np.ndarray:
    """numpy reference of the ops_mix graph, computed in float64 and rounded to float32.

    x: [N, 4, 6, 6]
    p  = pad(x, H and W by 1 on each side, mode 'reflect')       [N, 4, 8, 8]
    t  = p.transpose(0, 2, 3, 1)                                  [N, 8, 8, 4]
    r  = t.reshape(N, -1, 4)            (Reshape shape [0, -1, 4]) [N, 64, 4]
    s  = exp(r - max_last(r)) / sum_last(exp(r - max_last(r)))   Softmax(axis=-1)
    m1 = s.mean(axis=1)                 (ReduceMean axes [1], keepdims 0)   [N, 4]
    m2 = x.mean(axis=(2, 3))            (ReduceMean axes [2, 3], keepdims 0) [N, 4]
    f  = r.reshape(N, -1)               (shape = Concat(Unsqueeze(Gather(Shape(x), 0), [0]), [-1]))
    g  = f[:, [37, -1]]                 (Gather axis 1, a negative index included)   [N, 2]
    logits = concat([m1, m2, g], axis=1)                                              [N, 10]
    """
    x = x.astype(np.float64)
    n = x.shape[0]
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    r = p.transpose(0, 2, 3, 1).reshape(n, -1, 4)
    e = np.exp(r - r.max(axis=-1, keepdims=True))
    s = e / e.sum(axis=-1, keepdims=True)
    m1 = s.mean(axis=1)
    m2 = x.mean(axis=(2, 3))
    g = r.reshape(n, -1)[:, OPS_MIX_GATHER]
    return np.concatenate([m1, m2, g], axis=1).astype(np.float32)


def make_ops_mix() -> None:
    seed = 11
    d = fresh_dir(FIXTURES / "ops_mix")
    i64 = lambda name, vals: numpy_helper.from_array(np.array(vals, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["padded"], mode="reflect", name="pad"),
        helper.make_node("Transpose", ["padded"], ["nhwc"], perm=[0, 2, 3, 1], name="transpose"),
        helper.make_node("Reshape", ["nhwc", "shape_0_m1_4"], ["tokens"], name="reshape_tokens"),
        helper.make_node("Softmax", ["tokens"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("ReduceMean", ["probs"], ["probs_mean"], axes=[1], keepdims=0, name="mean_tokens"),
        helper.make_node("ReduceMean", ["input"], ["chan_mean"], axes=[2, 3], keepdims=0, name="mean_hw"),
        helper.make_node("Shape", ["input"], ["in_shape"], name="shape"),
        helper.make_node("Gather", ["in_shape", "zero"], ["batch_dim"], axis=0, name="gather_batch"),
        helper.make_node("Unsqueeze", ["batch_dim", "axes0"], ["batch_1d"], name="unsqueeze"),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["flat_shape"], axis=0, name="concat_shape"),
        helper.make_node("Reshape", ["tokens", "flat_shape"], ["flat"], name="reshape_flat"),
        helper.make_node("Gather", ["flat", "pick"], ["picked"], axis=1, name="gather_features"),
        helper.make_node("Concat", ["probs_mean", "chan_mean", "picked"], ["logits"], axis=1, name="concat_out"),
    ]
    inits = [
        i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]),
        i64("shape_0_m1_4", [0, -1, 4]),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),   # scalar index -> scalar
        i64("axes0", [0]),
        i64("minus_one", [-1]),
        i64("pick", OPS_MIX_GATHER),
    ]
    graph = helper.make_graph(
        nodes, "ops_mix",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="lightconv scripts/make_fixtures.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(d / "model.onnx"))
    summary = onnx_summary(d / "model.onnx")
    test_sets = []
    for i, batch in enumerate([2, 1]):
        x = random_input(seed + i, batch, (4, 6, 6)).numpy()
        y = ops_mix_reference(x)
        # independent check of the numpy formula with torch ops
        t = torch.from_numpy(x).double()
        r = F.pad(t, (1, 1, 1, 1), mode="reflect").permute(0, 2, 3, 1).reshape(batch, -1, 4)
        y_t = torch.cat([torch.softmax(r, -1).mean(1), t.mean((2, 3)), r.reshape(batch, -1)[:, OPS_MIX_GATHER]], 1)
        assert np.abs(y_t.numpy() - y).max() < 1e-6
        write_pb(x, "input", d / f"test_data_set_{i}" / "input_0.pb")
        write_pb(y, "logits", d / f"test_data_set_{i}" / "output_0.pb")
        test_sets.append({"name": f"test_data_set_{i}",
                          "input": f"random N(0,1), torch.Generator seed {seed + i}",
                          "input_shape": list(x.shape), "output_shape": list(y.shape),
                          "input_stats": stats(x), "logit_stats": stats(y)})
    meta = {
        "name": "ops_mix",
        "description": "Hand-written graph (onnx.helper, opset 17, IR 8) exercising Pad(reflect), "
                       "Transpose, Reshape with 0 and -1, Softmax, ReduceMean (axes attribute, "
                       "keepdims 0), Shape, Gather (scalar index and an index list with -1), "
                       "Unsqueeze (axes input), Concat (int64 shape and float outputs).",
        "provenance": {"builder": "make_ops_mix() in scripts/make_fixtures.py",
                       "reference": "numpy, float64 then rounded to float32; formula:",
                       "formula": ops_mix_reference.__doc__.strip().splitlines()},
        "seed": seed,
        "versions": versions(),
        "input": {"name": "input", "shape": ["batch", 4, 6, 6], "dtype": "float32"},
        "output": {"name": "logits", "shape": ["batch", 10], "dtype": "float32"},
        "parameter_count": summary["initializer_elements"],
        "parameter_count_note": "int64 initializer elements (the graph has no float weights)",
        "op_type_counts": summary["op_type_counts"],
        "onnx": summary,
        "test_sets": test_sets,
        "onnxruntime_cross_check": "skipped: onnxruntime is not importable in this Python",
        "recommended_tolerance": dict(TOLERANCE),
        "tolerance_rule": "|engine - reference| <= abs + rel*|reference|, elementwise, vs output_0.pb",
    }
    (d / "meta.json").write_text(dump_json(meta) + "\n")


# --------------------------------------------------------------------------------------------
# demo: trained digit classifier
# --------------------------------------------------------------------------------------------

DIGIT_SEED = 2024
DIGIT_SHOW = [3, 5, 7, 8]  # labels of the shipped example images


def f32list(t) -> list:
    """Flattened float32 values as the shortest decimals that round-trip to the same float32."""
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return [float(str(np.float32(v))) for v in a.astype(np.float32).ravel()]


def digits_preprocess(u8: np.ndarray) -> torch.Tensor:
    """uint8 [N, 8, 8] -> float32 [N, 1, 32, 32]: /255, bilinear upsample, (x - 0.5) / 0.5."""
    x = torch.from_numpy(u8.astype(np.float32) / np.float32(255)).unsqueeze(1)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=False)
    return (x - 0.5) / 0.5


def add_digits_metadata(path: Path) -> None:
    """The preprocessing and class names in the model (lightconv reads them: `run --image` needs no flags)."""
    m = onnx.load(str(path))
    del m.metadata_props[:]
    pre = {"inputSize": 32, "resize": 32, "crop": 32, "channels": 1, "mean": [0.5], "std": [0.5]}
    for key, value in (("lightconv.preprocess", json.dumps(pre, separators=(",", ":"))), ("lightconv.classes", json.dumps([str(i) for i in range(10)], separators=(",", ":")))):
        m.metadata_props.add(key=key, value=value)
    onnx.save(m, str(path))


def load_digits(datasets: Path):
    items = []
    for label_dir in sorted((datasets / "digits").iterdir()):
        for f in sorted(label_dir.glob("*.png")):
            items.append((int(f.stem), int(label_dir.name), f))
    items.sort()
    u8 = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.uint8) for _, _, f in items])
    labels = np.array([lab for _, lab, _ in items], dtype=np.int64)
    index = np.array([i for i, _, _ in items])
    files = [f for _, _, f in items]
    return u8, labels, index, files


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int):
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


def conv_bn(cin, cout, k=1, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.Hardswish())
    return nn.Sequential(*layers)


class Block(nn.Module):
    """Inverted residual: [1x1 expand + BN + hard-swish] -> kxk depthwise + BN + hard-swish -> SE ->
    1x1 project + BN (+ input when stride 1 and shapes match)."""

    def __init__(self, cin, exp, cout, k, stride):
        super().__init__()
        layers = [] if exp == cin else [conv_bn(cin, exp)]
        layers += [conv_bn(exp, exp, k, stride, groups=exp), SqueezeExcite(exp, max(8, exp // 4)),
                   conv_bn(exp, cout, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, 16, 3, 2),            # 32 -> 16
            Block(16, 16, 16, 3, 1),
            Block(16, 48, 24, 3, 2),         # 16 -> 8
            Block(24, 72, 24, 5, 1),
            Block(24, 72, 32, 3, 2),         # 8 -> 4
            conv_bn(32, 128),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(128, 10))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def evaluate(model, x, y) -> tuple[float, np.ndarray]:
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    return float((pred == y).float().mean()), pred.numpy()


def make_demo(datasets: Path) -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    u8, labels, index, files = load_digits(datasets)
    test_mask = index % 5 == 0
    x_all = digits_preprocess(u8)
    y_all = torch.from_numpy(labels)
    xtr, ytr = x_all[~test_mask], y_all[~test_mask]
    xte, yte = x_all[test_mask], y_all[test_mask]

    torch.manual_seed(DIGIT_SEED)
    model = DigitNet()
    g = torch.Generator().manual_seed(DIGIT_SEED + 1)
    epochs, bs, lr = 30, 32, 3e-3
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(xtr) / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    log = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        total = 0.0
        for b in range(0, len(xtr), bs):
            idx = perm[b:b + bs]
            xb = xtr[idx]
            # augmentation: random shift by up to 2 pixels (of 32), background value -1
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            xb = torch.roll(F.pad(xb, (2, 2, 2, 2), value=-1.0), shifts=(dy, dx), dims=(2, 3))[:, :, 2:-2, 2:-2]
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        acc, _ = evaluate(model, xte, yte)
        log.append({"epoch": epoch + 1, "train_loss": round(total / len(xtr), 4), "test_acc": round(acc, 4)})
        print(f"  digits epoch {epoch + 1:2d}: loss {total / len(xtr):.4f}  test acc {acc:.4f}", flush=True)
    acc, pred = evaluate(model, xte, yte)
    train_acc, _ = evaluate(model, xtr, ytr)
    assert acc >= 0.97, f"digits test accuracy {acc:.4f} < 0.97"

    model.eval()
    onnx_path = EXAMPLES / "digits.onnx"
    export(model, xte[:1], onnx_path, 17, keep_bn=False)
    add_digits_metadata(onnx_path)
    summary = onnx_summary(onnx_path)
    assert "BatchNormalization" not in summary["op_type_counts"]
    with torch.no_grad():
        graph_diff = float(np.abs(run_onnx_graph(onnx_path, xte.numpy()) - model(xte).numpy()).max())
    assert graph_diff < 1e-4, f"digits.onnx interpreter differs from PyTorch by {graph_diff}"

    # example images: first correctly classified test image of each chosen label
    test_files = [f for f, t in zip(files, test_mask) if t]
    test_labels = labels[test_mask]
    for old in EXAMPLES.glob("digit-*.png"):
        old.unlink()
    shipped = []
    for lab in DIGIT_SHOW:
        j = next(j for j in range(len(test_labels)) if test_labels[j] == lab and pred[j] == lab)
        dst = EXAMPLES / f"digit-{lab}.png"
        shutil.copyfile(test_files[j], dst)
        pil = Image.open(dst).convert("L")
        x = digits_preprocess(np.asarray(pil, dtype=np.uint8)[None])
        # the torchvision/PIL path (what an engine emulating PIL on 8-bit images computes):
        # PIL bilinear resize of the uint8 image (rounded back to uint8), ToTensor, Normalize(0.5, 0.5)
        pil32 = transforms.Resize(32)(pil)
        x_pil = transforms.Normalize([0.5], [0.5])(transforms.ToTensor()(pil32)).unsqueeze(0)
        with torch.no_grad():
            logits = model(x)[0]
            logits_pil = model(x_pil)[0]
        probs = torch.softmax(logits, 0)
        shipped.append({
            "file": dst.name, "label": lab, "source": f"digits/{lab}/{test_files[j].name}",
            "logits": f32list(logits), "predicted": int(logits.argmax()),
            "probability": round(float(probs.max()), 6),
            "input": f32list(x),
            "input_stats": stats(x.numpy()),
            "pil_path": {
                "resized_uint8": np.asarray(pil32, dtype=np.uint8).flatten().tolist(),
                "logits": f32list(logits_pil), "predicted": int(logits_pil.argmax()),
                "max_abs_diff_input_vs_float_path": float(f"{float((x_pil - x).abs().max()):.3g}"),
                "max_abs_diff_logits_vs_float_path": float(f"{float((logits_pil - logits).abs().max()):.3g}"),
            },
        })
    (EXAMPLES / "digits-labels.txt").write_text("".join(f"{i}\n" for i in range(10)))
    reference = {
        "model": "digits.onnx",
        "sha256": summary["sha256"],
        "preprocessing": {
            "steps": [
                "read the PNG as 8-bit grayscale, shape [8, 8] (values 0..255)",
                "x = value / 255 in float32, shape [1, 1, 8, 8]",
                "x = torch.nn.functional.interpolate(x, size=(32, 32), mode='bilinear', "
                "align_corners=False, antialias=False)  (half-pixel centres: src = (dst + 0.5) * 8/32 - 0.5, "
                "negative src clamped to 0, indices clamped to 7)",
                "x = (x - 0.5) / 0.5",
            ],
            "input_shape": [1, 1, 32, 32], "mean": 0.5, "std": 0.5,
        },
        "reference": "PyTorch eval mode, float32, CPU, 1 thread; logits are raw (no softmax). "
                     "images[].input is the preprocessed [1, 1, 32, 32] tensor, row-major, each value "
                     "the shortest decimal that round-trips to its float32",
        "pil_path": "images[].pil_path is an alternative preprocessing, not the one above: "
                    "PIL Image (mode L) -> torchvision.transforms.Resize(32) (PIL bilinear on the uint8 "
                    "image, result rounded to uint8: resized_uint8, row-major) -> ToTensor -> "
                    "Normalize([0.5], [0.5]). An engine that emulates PIL's 8-bit resize (e.g. "
                    "lightconv run --image ... --resize 32 --crop 32) should match its logits",
        "recommended_tolerance": dict(TOLERANCE),
        "test_accuracy": round(acc, 4),
        "test_split": f"{len(yte)} images: digits/<label>/NNNN.png with NNNN % 5 == 0",
        "max_abs_diff_onnx_graph_interpreter_on_test_split": float(f"{graph_diff:.3g}"),
        "images": shipped,
    }
    (EXAMPLES / "digits-reference.json").write_text(dump_json(reference) + "\n")

    n_params = sum(p.numel() for p in model.parameters())
    ops = ", ".join(f"{k} {v}" for k, v in summary["op_type_counts"].items())
    rows = "\n".join(f"| `{s['file']}` | {s['label']} | {s['predicted']} | {s['probability']:.4f} |"
                     for s in shipped)
    readme = f"""# Examples: a trained handwritten-digit classifier

`digits.onnx` is a small MobileNet-style CNN trained in PyTorch on the UCI handwritten digits
(8×8 grayscale, 1,797 images, 10 classes, CC BY 4.0). It is a real classifier:
**test accuracy {acc * 100:.2f} %** ({int(round(acc * len(yte)))}/{len(yte)}) on a held-out split
(train accuracy {train_acc * 100:.2f} %).

```
lightconv run examples/digits.onnx --image examples/digit-7.png --resize 32 --mean 0.5 --std 0.5 \\
  --labels examples/digits-labels.txt
```
(The flags repeat what the model's metadata says, so `lightconv run examples/digits.onnx --image
examples/digit-7.png` alone gives the same result; without the metadata, the default resize would
be input size / 0.875 = 37 followed by a 32×32 crop.)

| file | what |
|---|---|
| `digits.onnx` | the model: input `input` [batch, 1, 32, 32] float32, output `logits` [batch, 10] (raw, no softmax). ONNX opset 17, BatchNorm folded into the convs. {n_params:,} parameters, {summary['file_size']:,} bytes; its metadata holds the preprocessing and class names (`lightconv.preprocess`, `lightconv.classes`) |
| `digit-<label>.png` | original 8×8 grayscale images from the **test** split (never seen in training) |
| `digits-labels.txt` | class names, one per line: `0` … `9` (class index = line number − 1) |
| `digits-reference.json` | PyTorch's logits for each shipped PNG, preprocessed exactly as below (`images[].logits`, with the preprocessed tensor in `images[].input`), and also for the PIL/torchvision 8-bit resize path (`images[].pil_path`) |

| image | label | PyTorch prediction | softmax probability |
|---|---|---|---|
{rows}

## Preprocessing (exact)

1. Read the PNG as 8-bit grayscale: an 8×8 array of 0…255.
2. `x = value / 255` in float32, as a [1, 1, 8, 8] tensor.
3. Upsample to 32×32 bilinearly with half-pixel centres and no antialiasing:
   `torch.nn.functional.interpolate(x, size=(32, 32), mode='bilinear', align_corners=False, antialias=False)`.
   For output pixel `d`, the source coordinate is `s = (d + 0.5) · 8/32 − 0.5`, clamped below at 0;
   it blends pixels `floor(s)` and `min(floor(s) + 1, 7)`. (Upsampling, so antialiasing changes nothing.)
4. Normalise: `x = (x − 0.5) / 0.5` (mean 0.5, std 0.5), giving values in [−1, 1].

The CLI's `--image` path resizes like torchvision on a PIL image instead: PIL's bilinear filter on
the 8-bit image, in two passes (x, then y) with fixed-point weights, each pass rounded back to
0…255. For upsampling PIL's weights are the same as above, so only that rounding differs (at most
about 1/255 per pixel before normalisation). Those logits are stored separately as
`images[].pil_path.logits`; they differ from the float path's by up to a few 1e-2.

The model expects 1 input channel. A colour image would first have to be converted to grayscale
and reduced to 8×8; the model was only trained on this dataset's style (white strokes on black).

## Model

```
stem     Conv 3×3 1→16, stride 2 + BN + hard-swish                          32 → 16
block 1  depthwise 3×3 (16) + BN + hard-swish, SE(16→8→16), 1×1 16→16 + BN, + residual
block 2  1×1 16→48 + BN + hard-swish, depthwise 3×3 stride 2, SE(48→12→48), 1×1 48→24 + BN   16 → 8
block 3  1×1 24→72, depthwise 5×5, SE(72→18→72), 1×1 72→24 + BN, + residual
block 4  1×1 24→72, depthwise 3×3 stride 2, SE(72→18→72), 1×1 72→32 + BN          8 → 4
head     1×1 32→128 + BN + hard-swish, global average pool, flatten, Dropout(0.1), Linear 128→10
```
SE = global average pool → 1×1 conv → ReLU → 1×1 conv → hard-sigmoid → multiply.
ONNX ops: {ops}.

## Training

- Data: `digits/<class>/NNNN.png`, `NNNN` the image's index in the original order. Images with
  `NNNN % 5 == 0` form the test split ({len(yte)} images); the other {len(ytr)} are for training.
- Seed {DIGIT_SEED} (`torch.manual_seed`), PyTorch {torch.__version__}, CPU, 1 thread.
- AdamW (lr {lr}, weight decay 1e-4), one-cycle schedule, {epochs} epochs, batch {bs}, cross-entropy.
- Augmentation: each batch is shifted by a random (dx, dy) ∈ [−2, 2]² pixels of the 32×32 input,
  filling with −1 (the background).
- Export: `torch.onnx.export(model.eval(), x, 'digits.onnx', opset_version=17,
  input_names=['input'], output_names=['logits'], dynamic_axes={{'input': {{0: 'batch'}}, 'logits': {{0: 'batch'}}}})`
  (default eval export: BN folded into the convs).

Everything here is produced by `/usr/bin/python3 scripts/make_fixtures.py --only demo` (deterministic).
"""
    (EXAMPLES / "README.md").write_text(readme)
    print(f"  digits: test acc {acc:.4f} ({len(yte)} images), train acc {train_acc:.4f}, "
          f"{n_params} params", flush=True)
    return {"test_accuracy": acc, "log": log}


# --------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=Path, default=Path(os.environ.get(
        "LIGHTCONV_DATASETS", ROOT.parent / "shared" / "datasets")))
    ap.add_argument("--only", choices=["fixtures", "demo"], default=None)
    args = ap.parse_args()
    if args.only in (None, "fixtures"):
        FIXTURES.mkdir(parents=True, exist_ok=True)
        photo, crop = photo_input(args.datasets)
        print("mnv3_mini*", flush=True)
        make_mnv3(args.datasets, photo, crop)
        print("effnet_mini", flush=True)
        make_effnet(args.datasets, photo, crop)
        print("eca_mini*", flush=True)
        make_eca(args.datasets, photo, crop)
        print("ops_mix", flush=True)
        make_ops_mix()
    if args.only in (None, "demo"):
        print("digits demo", flush=True)
        make_demo(args.datasets)
    print("done", flush=True)


if __name__ == "__main__":
    main()
