import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/core/autograd.js';
import { Tensor } from '../../src/core/tensor.js';
import { assemble } from '../../src/io/onnx/assemble.js';
import { mobileNetV3 } from '../../src/models/mobilenetv3.js';
import { efficientNet } from '../../src/models/efficientnet.js';
import { crossEntropy } from '../../src/train/losses.js';
import { Adam } from '../../src/train/optim.js';

const labels = [0, 1, 2, 1, 0, 2];

describe('fine-tuning native models', () => {
  it('freeze the backbone of an assembled torchvision model, replace the head, train: loss goes down', async () => {
    const net = await assemble(join(__dirname, '..', 'fixtures', 'models', 'mnv3_mini', 'model.onnx'));
    net.freeze();
    const head = net.replaceHead(3, { seed: 1 });
    expect(net.parameters()).toEqual([head.weight, head.bias]);
    net.eval(); // frozen backbone: BN keeps its running statistics
    net.get('classifier').train();
    const frozen = net.namedParameters().find(([n]) => n === 'features.0.0.weight')![1];
    const before = frozen.toArray();
    const x = Tensor.randn([6, 3, 32, 32], { seed: 2 });
    const opt = new Adam(net.parameters(), { lr: 0.01 });
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      opt.zeroGrad();
      const loss = crossEntropy(net.forward(x), labels);
      loss.backward();
      losses.push(loss.dataSync()[0]!);
      opt.step();
    }
    expect(losses[losses.length - 1]!).toBeLessThan(0.7 * losses[0]!);
    expect(frozen.toArray()).toEqual(before);
    expect(frozen.grad).toBeNull();
    expect(head.weight.grad).not.toBeNull();
  });

  it('trains every layer (BN batch statistics, SE, ECA, residuals, stochastic depth) end to end', () => {
    for (const net of [
      mobileNetV3('small', { widthMult: 0.25, attention: 'eca', activation: 'leaky_relu', dilation: true, numClasses: 3, resolution: 32, seed: 3 }),
      efficientNet('b0', { widthMult: 0.25, depthMult: 0.25, numClasses: 3, resolution: 32, seed: 4 }),
    ]) {
      net.train();
      const x = Tensor.randn([6, 3, 32, 32], { seed: 5 });
      const opt = new Adam(net.parameters(), { lr: 0.005 });
      const bnMean = net.namedBuffers().find(([n]) => n.endsWith('running_mean'))![1];
      const first: number[] = [];
      for (let step = 0; step < 6; step++) {
        opt.zeroGrad();
        const loss = crossEntropy(net.forward(x), labels);
        loss.backward();
        first.push(loss.dataSync()[0]!);
        if (step === 0) {
          const missing = net.namedParameters().filter(([, p]) => !p.grad).map(([n]) => n);
          expect(missing, net.info.arch).toEqual([]);
        }
        opt.step();
      }
      expect(bnMean.toArray().some((v) => v !== 0)).toBe(true);
      net.eval();
      const evalLoss = noGrad(() => crossEntropy(net.forward(x), labels)).dataSync()[0]!;
      expect(first[first.length - 1]!, net.info.arch).toBeLessThan(first[0]!);
      expect(Number.isFinite(evalLoss)).toBe(true);
    }
  });
});
