/**
 * Child process of checkpoint_safety.test.ts: saves a large checkpoint over `path` again and
 * again, every tensor filled with the save's number, until it is killed. Prints "saving k" before
 * and "saved k" after each save, so the parent knows which values may be on disk.
 */
import { Tensor } from '../../src/core/tensor.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';

const [path, startArg] = process.argv.slice(2);
const w = Tensor.zeros([4, 1024, 1024]); // 16 MiB of float32: a save takes long enough to be interrupted
const b = Tensor.zeros([1000]);
const model = { namedParameters: (): [string, Tensor][] => [['w', w], ['b', b]], namedBuffers: (): [string, Tensor][] => [] };
for (let k = Number(startArg); ; k++) {
  w.dataSync().fill(k);
  b.dataSync().fill(k);
  process.stdout.write(`saving ${k}\n`);
  await saveCheckpoint(path!, model, { meta: { k } });
  process.stdout.write(`saved ${k}\n`);
}
