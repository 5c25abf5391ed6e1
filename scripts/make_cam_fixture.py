#!/usr/bin/python3
"""Grad-CAM reference for lightconv's explanations, computed by PyTorch with hooks.

Run from the repository root with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 scripts/make_cam_fixture.py

It writes (and overwrites) ``tests/fixtures/explain/``:

``mnv3s.onnx``     torchvision MobileNetV3-Small, width_mult 0.25, 5 classes, seeded, BN running
                   statistics calibrated on crops of ``datasets/ihc_slide/ihc_colon.png``;
                   exported in eval mode at opset 17 (BN folded into the convs), input ``input``
                   [batch, 3, 96, 96], output ``logits``.
``image.png``      the 96x96 crop of ihc_colon.png the references are computed on.
``cam.json``       logits, and for each case (layer, class): the layer's activation shape, the
                   raw Grad-CAM map at the layer's resolution (ReLU of the gradient-weighted sum,
                   before normalisation) and the Grad-CAM++ raw map.
``gradcam_upsampled_<case>.f32``  little-endian float32 [96, 96]: the case's Grad-CAM normalised
                   (min-max) and upsampled to the input (F.interpolate bilinear,
                   align_corners=False, as pytorch-grad-cam's scale_cam_image does with cv2.resize).
``saliency.f32``   little-endian float32 [96, 96]: max over channels of |d logit_c / d input| for
                   the first case's class.

The input is ToTensor + ImageNet Normalize of the PNG (no resize: it is already 96x96), so
lightconv's preprocessing with inputSize = resize = crop = 96 gives the same tensor.

Grad-CAM (Selvaraju et al.): A = the layer's output for the image, G = d logit_c / d A (the
logit, not the softmax probability, as pytorch-grad-cam's ClassifierOutputTarget);
alpha_k = mean over positions of G_k; cam = ReLU(sum_k alpha_k A_k).
Grad-CAM++ (pytorch-grad-cam's closed form): a = G^2 / (2 G^2 + sum_ij(A_k) G^3 + 1e-6), 0 where
G == 0; w_k = sum_ij ReLU(G) a; cam = ReLU(sum_k w_k A_k).

Every draw is seeded and torch runs on one thread: reruns give identical files.
"""
from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision import transforms
from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "explain"
SLIDE = ROOT / "datasets" / "ihc_slide" / "ihc_colon.png"
SIZE = 96
SEED = 12
CROP_AT = (208, 176)  # (left, top) of the reference crop: glands with brown DAB and blue nuclei
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# (layer, class): the default layer (last conv with spatial maps, 3x3 here) for the predicted
# class, and a 6x6 layer for another class.
CASES = [("features.12", None), ("features.8", 3)]


def normalized(img: Image.Image) -> torch.Tensor:
    return transforms.Normalize(MEAN, STD)(transforms.ToTensor()(img))


@torch.no_grad()
def calibrate(model: nn.Module, slide: Image.Image, g: torch.Generator) -> None:
    """BN running statistics (cumulative average) from 16 random crops of the slide; BN affine
    parameters drawn so that they are not the identity."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.weight.copy_(torch.rand(bn.weight.shape, generator=g) * 0.8 + 0.6)
        bn.bias.copy_(torch.randn(bn.bias.shape, generator=g) * 0.1)
        bn.reset_running_stats()
        bn.momentum = None
    w, h = slide.size
    xs = []
    for _ in range(16):
        left = int(torch.randint(0, w - SIZE + 1, (1,), generator=g))
        top = int(torch.randint(0, h - SIZE + 1, (1,), generator=g))
        xs.append(normalized(slide.crop((left, top, left + SIZE, top + SIZE))))
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    model(torch.stack(xs))
    model.eval()
    # The classifier's Linear layers: scaled so the logits depend on the image, not the biases.
    for lin in [m for m in model.modules() if isinstance(m, nn.Linear)]:
        seen = []
        hook = lin.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
        model(torch.stack(xs))
        hook.remove()
        lin.weight.div_(float((seen[0] @ lin.weight.T).std()))


def cams(model: nn.Module, x: torch.Tensor, layer: str, cls: int | None) -> dict:
    module = dict(model.named_modules())[layer]
    store: dict = {}

    def fwd(_m, _inp, out):
        store["A"] = out
        out.register_hook(lambda g: store.__setitem__("G", g))

    h = module.register_forward_hook(fwd)
    logits = model(x)
    h.remove()
    c = int(logits.argmax(1)) if cls is None else cls
    model.zero_grad()
    logits[0, c].backward()
    A = store["A"].detach().double()[0]
    G = store["G"].detach().double()[0]
    alpha = G.mean(dim=(1, 2))
    raw = torch.relu((alpha[:, None, None] * A).sum(0))
    g2 = G ** 2
    g3 = g2 * G
    aij = g2 / (2 * g2 + A.sum(dim=(1, 2))[:, None, None] * g3 + 1e-6)
    aij = torch.where(G != 0, aij, torch.zeros_like(aij))
    w = (torch.relu(G) * aij).sum(dim=(1, 2))
    rawpp = torch.relu((w[:, None, None] * A).sum(0))

    def up(m: torch.Tensor) -> torch.Tensor:
        m = m - m.min()
        m = m / (1e-7 + m.max())
        return F.interpolate(m[None, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0, 0]

    return {
        "layer": layer,
        "class": c,
        "logit": float(logits[0, c]),
        "activation_shape": list(A.shape),
        "activation_absmax": float(A.abs().max()),
        "gradcam_raw": [round(float(v), 8) for v in raw.flatten()],
        "gradcampp_raw": [round(float(v), 8) for v in rawpp.flatten()],
        "upsampled": up(raw).numpy().astype("<f4"),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    slide = Image.open(SLIDE).convert("RGB")
    crop = slide.crop((CROP_AT[0], CROP_AT[1], CROP_AT[0] + SIZE, CROP_AT[1] + SIZE))
    crop.save(OUT / "image.png", optimize=True)
    x = normalized(crop).unsqueeze(0)

    torch.manual_seed(SEED)
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25)
    model = MobileNetV3(setting, last_channel, num_classes=5)
    calibrate(model, slide, torch.Generator().manual_seed(SEED + 1))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)

    torch.onnx.export(model, x, str(OUT / "mnv3s.onnx"), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
    onnx.checker.check_model(onnx.load(str(OUT / "mnv3s.onnx")))

    with torch.no_grad():
        logits = model(x)[0]
    cases = [cams(model, x, layer, cls) for layer, cls in CASES]
    for i, case in enumerate(cases):
        (OUT / f"gradcam_upsampled_{i}.f32").write_bytes(case.pop("upsampled").tobytes())
        case["gradcam_upsampled"] = {"file": f"gradcam_upsampled_{i}.f32", "shape": [SIZE, SIZE]}

    xg = x.clone().requires_grad_(True)
    out = model(xg)
    out[0, cases[0]["class"]].backward()
    sal = xg.grad[0].abs().amax(0).numpy().astype("<f4")
    (OUT / "saliency.f32").write_bytes(sal.tobytes())

    body = {
        "generator": "scripts/make_cam_fixture.py",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "onnx": onnx.__version__},
        "model": "MobileNetV3(*_mobilenet_v3_conf('mobilenet_v3_small', width_mult=0.25), num_classes=5), "
                 f"torch.manual_seed({SEED}), BN calibrated on 16 crops of ihc_colon.png, eval mode",
        "image": f"image.png: ihc_colon.png crop at (left, top) = {CROP_AT}, {SIZE}x{SIZE}",
        "preprocess": {"inputSize": SIZE, "resize": SIZE, "crop": SIZE, "channels": 3, "mean": MEAN, "std": STD},
        "logits": [round(float(v), 7) for v in logits],
        "cases": cases,
        "saliency": {"file": "saliency.f32", "shape": [SIZE, SIZE], "class": cases[0]["class"],
                     "what": "max over channels of |d logit / d input|"},
    }
    (OUT / "cam.json").write_text(json.dumps(body, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB); logits {body['logits']}; classes {[c['class'] for c in cases]}")


if __name__ == "__main__":
    main()
