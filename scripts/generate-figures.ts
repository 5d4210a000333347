/**
 * README figures of a class-conditional generator, drawn through the real service (the app with the bundled
 * models, in process; every pixel from POST /v1/generate, composed with sharp):
 *
 * - `OUT/fashion-grid-10x10.png`: one row per class (index order), 10 samples each (seed 7 + class, count 10,
 *   layout json), each sample shown at `SIZE` px (default 56; nearest-neighbour upscale by the service);
 * - `OUT/fashion-interpolation.png`: one row per class pair below, `interpolate_to` with 10 steps and z
 *   held fixed (seed 3), so each row goes smoothly from the first class to the second if y is used well.
 *
 * Usage: `npx tsx scripts/generate-figures.ts OUT [MODEL]` (default model `fashion-an`). Exits 1 on a
 * non-200 reply. Prints the X-Model header it drew from.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildReadyApp } from '../test/helper.js';

const PAIRS: [string, string][] = [
  ['T-shirt/top', 'Dress'], ['Trouser', 'Dress'], ['Pullover', 'Coat'], ['Shirt', 'Bag'],
  ['Sandal', 'Sneaker'], ['Sneaker', 'Ankle boot'], ['Bag', 'Ankle boot'],
];
const SIZE = 56;
const GAP = 2;

const [out, model] = process.argv.slice(2);
if (!out) throw new Error('usage: npx tsx scripts/generate-figures.ts OUT [MODEL]');
await mkdir(out, { recursive: true });
const app = await buildReadyApp();
const name = model ?? 'fashion-an';

async function generate(payload: Record<string, unknown>): Promise<{ images: Buffer[]; modelHeader: string }> {
  const res = await app.inject({ method: 'POST', url: '/v1/generate', payload: { ...payload, size: SIZE, layout: 'json', model: name } });
  if (res.statusCode !== 200) throw new Error(`POST /v1/generate ${JSON.stringify(payload)}: ${res.statusCode} ${res.body}`);
  const images = (res.json() as { images: string[] }).images.map((b) => Buffer.from(b, 'base64'));
  return { images, modelHeader: String(res.headers['x-model']) };
}

/** Rows of equal-size tiles → one white-gapped PNG. */
async function compose(rows: Buffer[][], file: string): Promise<void> {
  const cols = Math.max(...rows.map((r) => r.length));
  const width = cols * SIZE + (cols + 1) * GAP;
  const height = rows.length * SIZE + (rows.length + 1) * GAP;
  const tiles = rows.flatMap((row, r) => row.map((input, c) => ({ input, left: GAP + c * (SIZE + GAP), top: GAP + r * (SIZE + GAP) })));
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(tiles).png().toFile(file);
}

const info = await app.inject({ method: 'GET', url: `/v1/models/${name}` });
const classes = (info.json() as { classes?: string[] }).classes ?? [];
if (classes.length === 0) throw new Error(`${name}: no classes (${info.statusCode})`);
const grid: Buffer[][] = [];
let header = '';
for (let c = 0; c < classes.length; c++) {
  const r = await generate({ class: c, count: 10, seed: 7 + c });
  grid.push(r.images);
  header = r.modelHeader;
}
await compose(grid, join(out, 'fashion-grid-10x10.png'));
const strips: Buffer[][] = [];
for (const [a, b] of PAIRS) strips.push((await generate({ class: a, interpolate_to: b, steps: 10, seed: 3 })).images);
await compose(strips, join(out, 'fashion-interpolation.png'));
console.log(`${header}: ${join(out, 'fashion-grid-10x10.png')} (rows: ${classes.join(', ')}), ${join(out, 'fashion-interpolation.png')} (${PAIRS.map((p) => p.join(' → ')).join('; ')})`);
await app.close();
