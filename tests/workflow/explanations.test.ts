import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/image.js';
import type { Preprocess } from '../../src/data/transforms.js';
import { fromArch } from '../../src/models/index.js';
import { type ExplainedImage, pickCamImages, reportCamLayer, writeRunExplanations } from '../../src/workflow/explanations.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const row = (file: string, label: number, probs: number[]): ExplainedImage => ({ path: file, file, label, probs });

describe('the explanations of a training report', () => {
  it('Grad-CAM layer: the last block with maps at least min(7, input/8) on a side', () => {
    const net = fromArch('mobilenet_v3_small', { numClasses: 2 });
    // MobileNetV3-Small: 224 → features.12 at 7×7 (the last conv block); 32 → features.3 at 4×4
    // (features.4 halves to 2×2); 16 → features.3 at 2×2.
    expect(reportCamLayer(net, [1, 3, 224, 224])).toBe('features.12');
    expect(reportCamLayer(net, [1, 3, 32, 32])).toBe('features.3');
    expect(reportCamLayer(net, [1, 3, 16, 16])).toBe('features.3');
  });

  it('picks per class the surest right answer, then the surest error, then the next right one', () => {
    const rows = [
      row('a', 0, [0.9, 0.1]),
      row('b', 0, [0.99, 0.01]),
      row('c', 0, [0.2, 0.8]),
      row('d', 0, [0.4, 0.6]),
      row('e', 1, [0.3, 0.7]),
      row('f', 1, [0.1, 0.9]),
    ];
    const picks = pickCamImages(rows, 2, 3);
    expect(picks.map((p) => p.row.file)).toEqual(['b', 'c', 'a', 'f', 'e']);
    expect(picks.map((p) => p.right)).toEqual([true, false, true, true, true]);
    expect(picks.map((p) => p.predicted)).toEqual([0, 1, 0, 1, 1]);
  });

  it('writes Grad-CAM figures and the slide heat map, and a report section that links them', async () => {
    const out = await mkdtemp(join(tmpdir(), 'lc-explain-'));
    dirs.push(out);
    const net = fromArch('mobilenet_v3_small', { numClasses: 2, seed: 1 });
    const preprocess: Preprocess = { inputSize: 32, resize: 32, crop: 32, channels: 3, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
    const folder = 'datasets/ihc_patches/dab_positive';
    const files = (await readdir(folder)).sort().slice(0, 3);
    const rows = files.map((f, i) => ({ path: join(folder, f), file: `dab_positive/${f}`, label: 1, probs: [0.1 * i, 1 - 0.1 * i] }));
    net.train();
    const r = await writeRunExplanations(out, net, ['dab_negative', 'dab_positive'], preprocess, rows, {
      camPerClass: 2,
      slide: 'datasets/ihc_slide/ihc_colon.png',
      tile: 24,
      stride: 96,
      slideClass: 'dab_positive',
    });
    expect(r.files).toEqual(['explain/gradcam_1.png', 'explain/gradcam_1.svg', 'explain/gradcam_2.png', 'explain/gradcam_2.svg', 'explain/slide_heatmap.png', 'explain/slide_heatmap.svg']);
    for (const f of r.files) expect(existsSync(join(out, f)), f).toBe(true);
    expect(r.markdown).toContain('(layer features.3)');
    expect(r.markdown).toContain('![Grad-CAM 1](explain/gradcam_1.png)');
    expect(r.markdown).toContain('![Slide heat map](explain/slide_heatmap.png)');
    // 512×512 with 24-pixel tiles every 96 pixels: 6 × 6 tiles.
    expect(r.markdown).toContain('36 tiles of 24×24 pixels every 96 pixels');
    // The model's modes come back as they were.
    expect(net.namedModules().every(([, m]) => m.training)).toBe(true);
  });
});
