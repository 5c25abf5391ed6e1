"""PyTorch counterpart of bench/train.ts: full training steps (zero_grad -> forward in train mode ->
cross-entropy -> backward -> SGD momentum step) of torchvision's MobileNetV3-Small (1000 classes),
one thread, same batch, sizes and optimizer settings. One warm-up step, then the median of the timed steps
(wall time, and this process's CPU time: steadier on a shared machine).

    /usr/bin/python3 bench/train_torch.py [--batch 16] [--sizes 64,224] [--steps 3]
"""
import argparse
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument('--batch', type=int, default=16)
p.add_argument('--sizes', default='64,224')
p.add_argument('--steps', type=int, default=3)
args = p.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
model = torchvision.models.mobilenet_v3_small(num_classes=1000)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
loss_fn = torch.nn.CrossEntropyLoss()
print(f'training throughput — torchvision MobileNetV3-Small (torch {torch.__version__}, 1 thread), '
      f'batch {args.batch}, SGD momentum, {args.steps} timed steps after 1 warm-up')
for size in [int(s) for s in args.sizes.split(',')]:
    x = torch.randn(args.batch, 3, size, size)
    labels = torch.randint(0, 1000, (args.batch,))
    times, cpu = [], []
    for s in range(args.steps + 1):
        t0 = time.perf_counter()
        c0 = time.process_time()
        model.train()
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()
        if s > 0:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    ms = sorted(times)[len(times) // 2]
    cms = sorted(cpu)[len(cpu) // 2]
    print(f'{size:3d}×{size}: {ms:6.0f} ms/step  {args.batch * 1000 / ms:7.1f} images/s  (CPU {cms:.0f} ms/step)')
