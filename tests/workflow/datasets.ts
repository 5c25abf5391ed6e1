import { copyFile, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Small real datasets for the workflow tests, copied from the repository's embedded sets into a
 * temporary folder: `take` images per class of the chosen classes after the first `skip`, in sorted order.
 */
export async function imageFolderSubset(source: string, classes: readonly string[], take: number, skip = 0): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lightconv-wf-'));
  for (const c of classes) {
    await mkdir(join(dir, c));
    const files = (await readdir(join(source, c))).sort().slice(skip, skip + take);
    for (const f of files) await copyFile(join(source, c, f), join(dir, c, f));
  }
  return dir;
}

/**
 * The same images as a flat folder and a CSV (HAM10000's layout: image_id without extension,
 * dx, and a lesion_id group). Groups: the IHC patches' 48-pixel bands of the slide (y // 48),
 * so that neighbouring patches share a group, as images of one lesion would.
 */
export async function csvSubset(source: string, classes: readonly string[], take: number): Promise<{ dir: string; csv: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lightconv-wfcsv-'));
  await mkdir(join(dir, 'images'));
  const rows = ['image_id,dx,lesion_id'];
  for (const c of classes) {
    const files = (await readdir(join(source, c))).sort().slice(0, take);
    for (const f of files) {
      const id = `${c}_${f.replace(/\.png$/, '')}`;
      await copyFile(join(source, c, f), join(dir, 'images', `${id}.png`));
      const y = Number(/^y(\d+)/.exec(f)?.[1] ?? 0);
      rows.push(`${id},${c},band${Math.floor(y / 48)}`);
    }
  }
  const csv = join(dir, 'labels.csv');
  await writeFile(csv, rows.join('\n') + '\n');
  return { dir: join(dir, 'images'), csv };
}
