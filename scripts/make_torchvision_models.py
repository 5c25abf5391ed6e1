#!/usr/bin/python3
"""Every torchvision 0.14 classification architecture, exported to ONNX at opsets 13 and 17, for
checking lightconv against material it did not write (scripts/verify-torchvision.ts, docs/torchvision.md).

The models are whole (tens to hundreds of MB each), so they are written OUTSIDE the repository:
<out_dir>/<name>_opset<k>/model.onnx + test_data_set_0/{input_0.pb,output_0.pb} + meta.json, the
layout `lightconv conformance` reads. Weights are torchvision's random initialisation
(weights=None, torch.manual_seed(0); nothing is downloaded), made less trivial where the default
would hide a bug: BatchNorm affine parameters are drawn at random and its running statistics are
measured on a random batch (the defaults make BN nearly the identity and let activations grow
without bound through deep nets), and ViT's zero-initialised head gets small random weights. Eval
mode; batch 1 at the model's usual size (224, Inception-v3 299); a seeded standard-normal input;
the expected output is PyTorch's own float32 output.

Usage: /usr/bin/python3 scripts/make_torchvision_models.py [out_dir] [--only name,name] [--opsets 13,17] [--extra]
  out_dir defaults to /tmp/tv-models; must not be inside the repository.
/usr/bin/python3 scripts/make_torchvision_models.py --small-fixture tests/fixtures/torchvision-small
  writes only a few-KB model (F.pad sized from the shape) that reproduces Swin-T's int64 load failure.
"""
import argparse
import gc
import json
import os
import shutil
import sys
import time

import onnx
import torch
import torchvision
from onnx import numpy_helper

# name -> (torchvision builder, input size). One representative per family, plus the variants
# whose graphs differ (EfficientNet B0 vs V2-S: Fused-MBConv; MobileNetV3 small/large; RegNet X/Y).
MODELS = {
    'alexnet': ('alexnet', 224),
    'convnext_tiny': ('convnext_tiny', 224),
    'densenet121': ('densenet121', 224),
    'efficientnet_b0': ('efficientnet_b0', 224),
    'efficientnet_v2_s': ('efficientnet_v2_s', 224),
    'googlenet': ('googlenet', 224),
    'inception_v3': ('inception_v3', 299),
    'mnasnet1_0': ('mnasnet1_0', 224),
    'mobilenet_v2': ('mobilenet_v2', 224),
    'mobilenet_v3_small': ('mobilenet_v3_small', 224),
    'mobilenet_v3_large': ('mobilenet_v3_large', 224),
    'regnet_x_400mf': ('regnet_x_400mf', 224),
    'regnet_y_400mf': ('regnet_y_400mf', 224),
    'resnet18': ('resnet18', 224),
    'resnet50': ('resnet50', 224),
    'resnext50_32x4d': ('resnext50_32x4d', 224),
    'wide_resnet50_2': ('wide_resnet50_2', 224),
    'shufflenet_v2_x1_0': ('shufflenet_v2_x1_0', 224),
    'squeezenet1_1': ('squeezenet1_1', 224),
    'swin_t': ('swin_t', 224),
    'vgg11_bn': ('vgg11_bn', 224),
    'vit_b_16': ('vit_b_16', 224),
}
# Same ops as B0 at larger widths, depths and inputs (torchvision's eval sizes): only with --extra
# or --only, since B5–B7 take minutes each to run.
EXTRA = {f'efficientnet_b{i}': (f'efficientnet_b{i}', hw) for i, hw in enumerate((240, 260, 300, 380, 456, 528, 600), 1)}


def build(builder, hw):
    torch.manual_seed(0)
    kwargs = {'weights': None}
    if builder in ('googlenet', 'inception_v3'):
        # Without pretrained weights these default to aux_logits=True and init_weights=True (a slow
        # scipy truncnorm init); eval mode ignores the aux heads anyway, so leave them out.
        kwargs.update(aux_logits=False, init_weights=True)
    m = getattr(torchvision.models, builder)(**kwargs)
    g = torch.Generator().manual_seed(1)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for mod in bns:
            if mod.affine:
                n = mod.num_features
                mod.weight.copy_(1 + torch.randn(n, generator=g) * 0.1)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.1)
            mod.reset_running_stats()
            mod.momentum = None  # a cumulative average over the calibration batch
        if bns:
            # Running statistics from one training-mode pass over a random batch: activations stay
            # at a trained model's scale (with the default mean 0 / var 1, Inception-v3's logits
            # reach ~1e12) and BN is not near the identity, so folding it is really exercised.
            m.train()
            m(torch.randn(4, 3, hw, hw, generator=g))
        for mod in m.modules():
            # ViT's head starts at zero (all logits 0, nothing to compare): give it small weights.
            if isinstance(mod, torch.nn.Linear) and not mod.weight.any():
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.02)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.02)
    return m.eval()


def export(name, builder, hw, opset, root):
    out = os.path.join(root, f'{name}_opset{opset}')
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, 'test_data_set_0'))
    model = build(builder, hw)
    x = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(10))
    t0 = time.time()
    with torch.no_grad():
        y = model(x)
    # Traced with autograd on: under no_grad, nn.MultiheadAttention (ViT) takes its fused fast
    # path, aten::_native_multi_head_attention, which has no ONNX export.
    torch.onnx.export(model, x, os.path.join(out, 'model.onnx'), opset_version=opset, input_names=['input'],
                      output_names=['logits'], do_constant_folding=True)
    ops = {}
    for n in onnx.load(os.path.join(out, 'model.onnx'), load_external_data=False).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    d = os.path.join(out, 'test_data_set_0')
    with open(os.path.join(d, 'input_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(x.numpy(), 'input').SerializeToString())
    with open(os.path.join(d, 'output_0.pb'), 'wb') as f:
        f.write(numpy_helper.from_array(y.numpy(), 'logits').SerializeToString())
    yv = y.numpy()
    meta = {
        'description': f'torchvision.models.{builder}(weights=None), random init (seed 0), BN statistics from a random batch, eval mode',
        'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'onnx': onnx.__version__},
        'export': {'opset': opset, 'do_constant_folding': True, 'input': [1, 3, hw, hw]},
        'onnx': {'op_type_counts': ops},
        'logits': {'min': float(yv.min()), 'max': float(yv.max()), 'std': float(yv.std())},
        # The conformance command's own default (abs 1e-4 + rel 1e-3 of the reference): float32
        # engines with different summation orders differ by ~1e-6 of the values' spread per layer.
        'recommended_tolerance': {'abs': 1e-4, 'rel': 1e-3},
    }
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(f'{name}_opset{opset}: {time.time() - t0:.1f}s logits std {yv.std():.3g} ops {ops}', flush=True)
    del model, y
    gc.collect()


class DynamicPad(torch.nn.Module):
    """F.pad with sizes read from the tensor's shape, as Swin-T pads to whole windows: torch
    exports the pad list reversal as a step −1 Slice whose end is −INT64_MAX (-9223372036854775807)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        h, w = y.shape[-2:]
        return torch.nn.functional.pad(y, (0, w // 3, 0, h // 2))


def small_fixture(root):
    """tests/fixtures/torchvision-small/pad_opset{13,17}: a few KB, the Swin-T load failure in little."""
    for opset in (13, 17):
        out = os.path.join(root, f'pad_opset{opset}')
        if os.path.exists(out):
            shutil.rmtree(out)
        os.makedirs(os.path.join(out, 'test_data_set_0'))
        torch.manual_seed(0)
        model = DynamicPad().eval()
        x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(10))
        with torch.no_grad():
            y = model(x)
        torch.onnx.export(model, x, os.path.join(out, 'model.onnx'), opset_version=opset, input_names=['input'],
                          output_names=['output'], do_constant_folding=True)
        d = os.path.join(out, 'test_data_set_0')
        with open(os.path.join(d, 'input_0.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(x.numpy(), 'input').SerializeToString())
        with open(os.path.join(d, 'output_0.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(y.numpy(), 'output').SerializeToString())
        print(out, [n.op_type for n in onnx.load(os.path.join(out, 'model.onnx')).graph.node])


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument('out_dir', nargs='?', default='/tmp/tv-models')
    p.add_argument('--only', default='', help='comma-separated names (default: all)')
    p.add_argument('--opsets', default='13,17')
    p.add_argument('--extra', action='store_true', help='also EfficientNet B1–B7')
    p.add_argument('--small-fixture', metavar='DIR',
                   help='instead: write the small DynamicPad fixture (tests/fixtures/torchvision-small) to DIR')
    a = p.parse_args(argv)
    if a.small_fixture:
        torch.set_num_threads(1)
        small_fixture(a.small_fixture)
        return
    repo = os.path.realpath(os.path.join(os.path.dirname(__file__), '..'))
    root = os.path.realpath(a.out_dir)
    if root == repo or root.startswith(repo + os.sep):
        sys.exit(f'{a.out_dir}: whole models must not be written inside the repository')
    os.makedirs(root, exist_ok=True)
    torch.set_num_threads(1)
    known = {**MODELS, **EXTRA}
    names = [n for n in a.only.split(',') if n] or list(MODELS) + (list(EXTRA) if a.extra else [])
    for n in names:
        if n not in known:
            sys.exit(f'unknown model {n}; one of {", ".join(known)}')
    for n in names:
        for opset in (int(k) for k in a.opsets.split(',')):
            export(n, *known[n], opset, root)


if __name__ == '__main__':
    main(sys.argv[1:])
