#!/usr/bin/python3
"""Writes tests/fixtures/autograd/: a small training reference in the layout of the shared
``autograd/`` fixture (see ``npx lightconv conformance``), made with Debian's PyTorch 1.13:

    /usr/bin/python3 scripts/make_autograd_fixture.py

A different net from the shared one (average pool instead of max pool, ReLU6, a 4-class head,
Nesterov SGD, other optimizer settings), so the conformance runner is tested on the rule, not
on one file. Everything is seeded and runs on one thread: two runs give identical files.

Files: ``model.onnx`` (eval-mode export, BatchNormalization kept, initializers named after the
PyTorch tensors), ``manifest.json`` (file list, forward pass, hyperparameters, tolerances),
``tensors/`` (one onnx.TensorProto per tensor: ``init/``, ``input``, ``labels``, ``logits``,
``loss``, ``grad/``, ``bn_after_1_forward/``, ``sgd/`` and ``adamw/`` after 3 steps), and
``test_data_set_0`` (the batch and the eval-mode logits).
"""
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

OUT = Path('tests/fixtures/autograd')
SEED = 21
SMOOTHING = 0.05
SGD = dict(lr=0.05, momentum=0.8, weight_decay=1e-3, nesterov=True)
ADAMW = dict(lr=2e-3, betas=(0.8, 0.99), eps=1e-7, weight_decay=5e-2)


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, r, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(r, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class ECA(nn.Module):
    def __init__(self):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.avg_pool(x)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.act1 = nn.ReLU6()
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act2 = nn.Hardswish()
        self.se = SE(8, 4)
        self.pw = nn.Conv2d(8, 8, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(12)
        self.act3 = nn.LeakyReLU(0.2)
        self.eca = ECA()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = self.act1(self.stem(x))
        y = self.act2(self.bn1(self.dw(x)))
        y = self.bn2(self.pw(self.se(y)))
        x = self.pool(x + y)
        x = self.eca(self.act3(self.bn3(self.conv2(x))))
        return self.fc(self.drop(torch.flatten(self.gap(x), 1)))


def save(t, rel, name):
    path = OUT / 'tensors' / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    onnx.save_tensor(numpy_helper.from_array(arr, name), str(path))
    return {'file': f'tensors/{rel}', 'pytorch_name': name if '.' in name else None, 'shape': list(arr.shape), 'dtype': str(arr.dtype)}


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    net = Net()
    g = torch.Generator().manual_seed(SEED + 10000)
    with torch.no_grad():
        for bn in (net.bn1, net.bn2, net.bn3):
            bn.weight.copy_(torch.rand(bn.weight.shape, generator=g) * 0.8 + 0.6)
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=g) * 0.1)
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.2)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) * 1.5 + 0.5)
        net.se.fc1.bias.copy_(torch.rand(4, generator=g) * 0.2 + 0.3)
    x = torch.randn(3, 3, 16, 16, generator=g)
    labels = torch.tensor([2, 0, 3])
    init = {k: v.clone() for k, v in net.state_dict().items()}

    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / 'test_data_set_0').mkdir(parents=True)
    files = []
    net.eval()
    torch.onnx.export(net, x, str(OUT / 'model.onnx'), opset_version=17, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with torch.no_grad():
        eval_logits = net(x)
    onnx.save_tensor(numpy_helper.from_array(x.numpy(), 'input'), str(OUT / 'test_data_set_0/input_0.pb'))
    onnx.save_tensor(numpy_helper.from_array(eval_logits.numpy(), 'logits'), str(OUT / 'test_data_set_0/output_0.pb'))

    files.append(save(x, 'input.pb', 'input'))
    files.append(save(labels, 'labels.pb', 'labels'))
    for k, v in init.items():
        files.append(save(v, f'init/{k}.pb', k))

    net.train()
    xg = x.clone().requires_grad_(True)
    logits = net(xg)
    loss = F.cross_entropy(logits, labels, label_smoothing=SMOOTHING)
    loss.backward()
    files.append(save(logits, 'logits.pb', 'logits'))
    files.append(save(loss, 'loss.pb', 'loss'))
    for k, p in net.named_parameters():
        files.append(save(p.grad, f'grad/{k}.pb', k))
    files.append(save(xg.grad, 'grad/input.pb', 'input'))
    for k, v in net.state_dict().items():
        if 'running' in k or 'num_batches' in k:
            files.append(save(v, f'bn_after_1_forward/{k}.pb', k))

    for opt_name in ('sgd', 'adamw'):
        net.load_state_dict(init)
        net.train()
        opt = torch.optim.SGD(net.parameters(), **SGD) if opt_name == 'sgd' else torch.optim.AdamW(net.parameters(), **ADAMW)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            l = F.cross_entropy(net(x), labels, label_smoothing=SMOOTHING)
            losses.append(l.item())
            l.backward()
            opt.step()
        files.append(save(torch.tensor(losses, dtype=torch.float32), f'{opt_name}/losses.pb', 'losses'))
        for k, p in net.named_parameters():
            files.append(save(p, f'{opt_name}/params_after_3_steps/{k}.pb', k))
            for key in ('momentum_buffer', 'exp_avg', 'exp_avg_sq'):
                if key in opt.state[p]:
                    files.append(save(opt.state[p][key], f'{opt_name}/{key}_after_3_steps/{k}.pb', k))
        for k, v in net.state_dict().items():
            if 'running' in k or 'num_batches' in k:
                files.append(save(v, f'{opt_name}/bn_after_3_steps/{k}.pb', k))

    m = onnx.load(str(OUT / 'model.onnx'))
    manifest = {
        'name': 'autograd (lightconv test fixture)',
        'description': 'Training reference made by scripts/make_autograd_fixture.py: one training-mode forward/backward, then 3 SGD steps and, from the same start, 3 AdamW steps on the same batch.',
        'seed': SEED,
        'versions': {'torch': torch.__version__, 'onnx': onnx.__version__, 'numpy': np.__version__},
        'network': {'pytorch_repr': repr(net), 'parameter_names_in_order': [k for k, _ in net.named_parameters()]},
        'training_semantics': {
            'mode': 'model.train(): BatchNorm normalises with batch mean and biased batch variance (eps 1e-5) and updates running_mean/var with momentum 0.1 using the unbiased batch variance; num_batches_tracked += 1. Dropout has p=0 (identity).',
            'loss': f'F.cross_entropy(logits, labels, label_smoothing={SMOOTHING}, reduction="mean")',
            'sgd': 'torch.optim.SGD(params, lr={lr}, momentum={momentum}, weight_decay={weight_decay}, nesterov=True), dampening 0'.format(**SGD),
            'adamw': 'torch.optim.AdamW(params, lr={lr}, betas=({b1},{b2}), eps={eps}, weight_decay={weight_decay}, amsgrad False)'.format(b1=ADAMW['betas'][0], b2=ADAMW['betas'][1], **ADAMW),
            'step_loop': 'for t in 1..3: zero_grad; loss = CE(model(x), labels); loss.backward(); opt.step()',
        },
        'recommended_tolerance': {
            'forward_logits_loss': {'abs': 1e-5, 'rel': 1e-4},
            'gradients': {'abs': 1e-5, 'rel': 1e-3},
            'params_after_3_sgd_steps': {'abs': 1e-5, 'rel': 1e-4},
            'params_after_3_adamw_steps': {'abs': 1e-4, 'rel': 1e-4},
            'bn_running_stats': {'abs': 1e-5, 'rel': 1e-4},
            'rule': '|engine - reference| <= abs + rel * |reference| elementwise',
        },
        'onnx': {'initializer_to_pytorch': {i.name: {'pytorch_name': i.name, 'how': 'same name'} for i in m.graph.initializer}},
        'files': files,
    }
    (OUT / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')


if __name__ == '__main__':
    main()
