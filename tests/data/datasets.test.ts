import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LightconvError, ResourceLimitError, ValueError } from '../../src/core/errors.js';
import { listCsvImages, listImageFolder, subsetList } from '../../src/data/datasets.js';
import { decodeAnyImage, readImage } from '../../src/data/decode.js';
import { encodePng } from '../../src/data/image.js';
import { pattern, tempDir, writePng } from './fixtures.js';

const made: string[] = [];
async function dir(tag: string): Promise<string> {
  const d = await tempDir(tag);
  made.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

const DICOM_FIXTURE = new URL('../fixtures/dicom/CT_small.dcm', import.meta.url);

describe('listImageFolder', () => {
  it('lists classes and files sorted, nested folders included, other files and hidden entries left out', async () => {
    const root = await dir('folder');
    await writePng(root, 'zebra/b.png');
    await writePng(root, 'zebra/a.PNG');
    await writePng(root, 'ant/sub/c.png');
    await writePng(root, 'ant/b.jpg'); // listed by name; decoding is the loader's business
    await copyFile(DICOM_FIXTURE, join(root, 'ant', 'scan.dcm'));
    await writeFile(join(root, 'ant', 'notes.txt'), 'x');
    await writeFile(join(root, 'ant', 'noext'), 'x');
    await writePng(root, 'ant/._resource.png');
    await writePng(root, '.ipynb_checkpoints/x.png');
    const list = await listImageFolder(root);
    expect(list.layout).toBe('folder');
    expect(list.root).toBe(root);
    expect(list.classes).toEqual(['ant', 'zebra']);
    expect(list.items.map((i) => [i.file, i.label])).toEqual([
      ['ant/b.jpg', 0],
      ['ant/scan.dcm', 0],
      ['ant/sub/c.png', 0],
      ['zebra/a.PNG', 1],
      ['zebra/b.png', 1],
    ]);
    expect(list.items[2]!.path).toBe(join(root, 'ant', 'sub', 'c.png'));
  });

  it('rejects a missing root, no class folders, an empty class, one class and no images, naming them', async () => {
    await expect(listImageFolder('/nonexistent/lc-data')).rejects.toThrow(LightconvError);
    await expect(listImageFolder('/nonexistent/lc-data')).rejects.toThrow(/\/nonexistent\/lc-data.*ENOENT/);

    const loose = await dir('loose');
    await writePng(loose, 'a.png');
    await expect(listImageFolder(loose)).rejects.toThrow(ValueError);
    await expect(listImageFolder(loose)).rejects.toThrow(/no class folders \(it holds 1 images directly/);

    const empty = await dir('emptyclass');
    await writePng(empty, 'cat/1.png');
    await writePng(empty, 'dog/1.png');
    await mkdir(join(empty, 'eel'));
    await writeFile(join(empty, 'eel', 'readme.txt'), 'no images');
    await expect(listImageFolder(empty)).rejects.toThrow(new RegExp(`class folder '${join(empty, 'eel')}' holds no images`));

    const one = await dir('oneclass');
    await writePng(one, 'only/1.png');
    await writePng(one, 'only/2.png');
    await expect(listImageFolder(one)).rejects.toThrow(/has one class \('only'\)/);

    const none = await dir('noimages');
    await mkdir(join(none, 'a'));
    await mkdir(join(none, 'b'));
    await expect(listImageFolder(none)).rejects.toThrow(/no images/);
  });
});

describe('listCsvImages', () => {
  /** HAM10000's shape: ids without extension, images split over two folders, a lesion column. */
  async function ham(rows: string, files = ['ISIC_1', 'ISIC_2', 'ISIC_3', 'ISIC_4']): Promise<{ root: string; csv: string }> {
    const root = await dir('ham');
    for (const [k, f] of files.entries()) await writePng(root, `${k < 2 ? 'part_1' : 'part_2'}/${f}.png`, 8, 6, k);
    const csv = join(root, 'meta.csv');
    await writeFile(csv, rows);
    return { root, csv };
  }

  it('resolves ids without extension anywhere under root, in row order, with groups; classes sorted', async () => {
    const { root, csv } = await ham('\ufefflesion_id,image_id,dx\r\nL1,ISIC_1,nv\r\nL1,ISIC_2,mel\r\nL2,ISIC_3,nv\r\nL3,part_2/ISIC_4.png,bkl\r\n');
    const list = await listCsvImages(root, csv, { groupCol: 'lesion_id' });
    expect(list.layout).toBe('csv');
    expect(list.classes).toEqual(['bkl', 'mel', 'nv']);
    expect(list.items).toEqual([
      { path: join(root, 'part_1', 'ISIC_1.png'), file: 'part_1/ISIC_1.png', label: 2, group: 'L1' },
      { path: join(root, 'part_1', 'ISIC_2.png'), file: 'part_1/ISIC_2.png', label: 1, group: 'L1' },
      { path: join(root, 'part_2', 'ISIC_3.png'), file: 'part_2/ISIC_3.png', label: 2, group: 'L2' },
      { path: join(root, 'part_2', 'ISIC_4.png'), file: 'part_2/ISIC_4.png', label: 0, group: 'L3' },
    ]);
    // Given classes fix the label order; the CSV may also be named relative to root.
    const fixed = await listCsvImages(root, 'meta.csv', { classes: ['nv', 'mel', 'bkl', 'akiec'] });
    expect(fixed.classes).toEqual(['nv', 'mel', 'bkl', 'akiec']);
    expect(fixed.items.map((i) => i.label)).toEqual([0, 1, 0, 2]);
    expect(fixed.items[0]!.group).toBeUndefined();
  });

  it('names the CSV row (header = row 1, blank lines counted) of every bad entry', async () => {
    const a = await ham('image_id,label\nISIC_1,nv\n');
    await expect(listCsvImages(a.root, a.csv)).rejects.toThrow(/meta\.csv has no column 'dx' \(columns: 'image_id', 'label'\)/);
    await expect(listCsvImages(a.root, a.csv, { labelCol: 'label', groupCol: 'lesion' })).rejects.toThrow(/no column 'lesion'/);

    const b = await ham('image_id,dx\nISIC_1,nv\n\nISIC_9,mel\nISIC_2,mel\n');
    await expect(listCsvImages(b.root, b.csv)).rejects.toThrow(ValueError);
    await expect(listCsvImages(b.root, b.csv)).rejects.toThrow(/1 row names an image not found under .*: row 4 \('ISIC_9'\)/);

    const c = await ham('image_id,dx\nISIC_1,nv\nISIC_2,mel\nISIC_1,mel\n');
    await expect(listCsvImages(c.root, c.csv)).rejects.toThrow(/row 4: image 'ISIC_1' is listed twice \(rows 2 and 4\)/);

    const d = await ham('image_id,dx\nISIC_1,nv\nISIC_2,vasc\n');
    await expect(listCsvImages(d.root, d.csv, { classes: ['nv', 'mel'] })).rejects.toThrow(/row 3: label 'vasc' of image 'ISIC_2' is not one of the classes \[nv, mel\]/);

    const e = await ham('image_id,dx\nISIC_1,nv\nISIC_2,nv\n');
    await expect(listCsvImages(e.root, e.csv)).rejects.toThrow(/every image has the label 'nv'/);

    const f = await ham('image_id,dx\n\n');
    await expect(listCsvImages(f.root, f.csv)).rejects.toThrow(/lists no images/);

    const g = await ham('image_id,dx\nISIC_1\n');
    await expect(listCsvImages(g.root, g.csv)).rejects.toThrow(/row 2 has 1 fields, the header 2/);

    const h = await ham('image_id,dx\nISIC_1,nv\nISIC_1.png,mel\n');
    await expect(listCsvImages(h.root, h.csv)).rejects.toThrow(/rows 2 and 3 both name the file 'part_1\/ISIC_1\.png'/);

    await expect(listCsvImages(h.root, join(h.root, 'absent.csv'))).rejects.toThrow(LightconvError);
  });
});

describe('subsetList', () => {
  it('keeps the given items in order and rejects indices outside the list', async () => {
    const list = { root: '/r', layout: 'folder' as const, classes: ['a', 'b'], items: [0, 1, 2].map((k) => ({ path: `/r/${k}`, file: `${k}`, label: k % 2 })) };
    expect(subsetList(list, [2, 0]).items.map((i) => i.file)).toEqual(['2', '0']);
    expect(() => subsetList(list, [3])).toThrow(/index 3 is outside the list of 3 images/);
  });
});

describe('readImage / decodeAnyImage', () => {
  it('sniffs PNG and DICOM (by the DICM magic, whatever the name)', async () => {
    const root = await dir('decode');
    const png = await writePng(root, 'x.png', 5, 4, 3);
    const img = await readImage(png);
    expect([img.width, img.height]).toEqual([5, 4]);
    expect(img.rgb).toEqual(pattern(5, 4, 3));
    const dcm = new Uint8Array(await readFile(DICOM_FIXTURE));
    const a = decodeAnyImage(dcm, 'no-extension');
    const b = decodeAnyImage(dcm, 'scan.dcm');
    expect(a.width * a.height).toBeGreaterThan(0);
    expect(b.rgb).toEqual(a.rgb);
  });

  it('gives a typed error naming the file for corrupt, truncated, foreign and oversized images', async () => {
    const root = await dir('bad');
    const png = encodePng(pattern(16, 16), 16, 16);
    const cut = join(root, 'cut.png');
    await writeFile(cut, png.subarray(0, 60));
    await expect(readImage(cut)).rejects.toThrow(ValueError);
    await expect(readImage(cut)).rejects.toThrow(new RegExp(`${cut}: decodeImage: corrupt PNG`));

    const text = join(root, 'text.jpg');
    await writeFile(text, 'not an image at all');
    await expect(readImage(text)).rejects.toThrow(/text\.jpg: decodeImage: not a PNG or JPEG/);

    const dcm = join(root, 'junk.dcm');
    await writeFile(dcm, new Uint8Array(300).fill(7));
    await expect(readImage(dcm)).rejects.toThrow(ValueError);
    await expect(readImage(dcm)).rejects.toThrow(/junk\.dcm/);

    // A header declaring 100 000 × 100 000 pixels: refused from the header, before decoding.
    const huge = Uint8Array.from(encodePng(new Uint8Array(3), 1, 1));
    new DataView(huge.buffer).setUint32(16, 100_000);
    new DataView(huge.buffer).setUint32(20, 100_000);
    const hugePath = join(root, 'huge.png');
    await writeFile(hugePath, huge);
    await expect(readImage(hugePath)).rejects.toThrow(ResourceLimitError);
    await expect(readImage(hugePath)).rejects.toThrow(/huge\.png: decodeImage \(PNG of 100000×100000\)/);

    await expect(readImage(join(root, 'absent.png'))).rejects.toThrow(/absent\.png: cannot read \(ENOENT\)/);
  });
});
