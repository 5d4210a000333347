/**
 * The "what the network sees" figures of the model cards (issue 34), drawn through the real service (the app
 * with the bundled models, in process; every map from POST /v1/explain, composed with sharp):
 *
 * - `OUT/explain-colorize-pono.png`: the contact sheet (PONO mu and sigma after each downsampling conv) of
 *   the held-out China photo (the PONO paper's Fig. 1 analogue);
 * - `OUT/explain-upscale-pono.png`: the same for the upscaler on a 4x-reduced crop of that photo;
 * - `OUT/explain-inpaint-an.png`: the AN layout of the inpainter for that photo with a box hole
 *   (docs/inpaint-mask.png; the AN paper's Fig. 5 analogue);
 * - `OUT/explain-fashion-an.png`: one column per class (seed 7): the sample, its AN layout, the grid
 *   self-sampling points.
 * Prints each map's kind, layer, size and range or regions in use (the numbers the cards quote).
 *
 * Usage: `npx tsx scripts/explain-figures.ts OUT`. Exits 1 on a non-200 reply.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildReadyApp, colourPhoto, multipart, repoRoot } from '../test/helper.js';

const [out] = process.argv.slice(2);
if (!out) throw new Error('usage: npx tsx scripts/explain-figures.ts OUT');
await mkdir(out, { recursive: true });
const app = await buildReadyApp();
const photo = await colourPhoto();
const mask = await readFile(join(repoRoot, 'docs', 'inpaint-mask.png'));

type Map = { name: string; layer: string; kind: string; width: number; height: number; range?: number[]; regions?: number; shares?: number[]; points?: number[][]; b64_png: string };
async function explain(model: string, files: Record<string, { data: Buffer; type: string }>, fields: Record<string, string> = {}, sheet = true) {
  const res = await app.inject({ method: 'POST', url: '/v1/explain', ...multipart(files, { model, ...fields, ...(sheet ? { output_format: 'png' } : {}) }) });
  if (res.statusCode !== 200) { console.error(`${model}: ${res.statusCode} ${res.body}`); process.exit(1); }
  return res;
}
function describe(model: string, maps: Map[]): void {
  for (const m of maps) {
    const what = m.range ? `range ${m.range.map((v) => v.toPrecision(3)).join(' … ')}` : m.regions !== undefined ? `${m.regions} of ${m.shares!.length} regions win ≥ 1 % (largest ${(Math.max(...m.shares!) * 100).toFixed(0)} %)` : `${m.points?.length} points`;
    console.log(`${model}: ${m.name} ${m.kind} ${m.layer} ${m.width}x${m.height} ${what}`);
  }
}

const small = await sharp(photo).extract({ left: 0, top: 0, width: 320, height: 212 }).resize(80, 53, { kernel: 'cubic' }).png().toBuffer();
for (const [model, files] of [
  ['colorize-pono-auto', { image: { data: photo, type: 'image/jpeg' } }],
  ['upscale-pono', { image: { data: small, type: 'image/png' } }],
  ['inpaint-an', { image: { data: photo, type: 'image/jpeg' }, mask: { data: mask, type: 'image/png' } }],
] as const) {
  if (!app.models.get(model)) { console.log(`${model}: not installed, skipped`); continue; }
  await writeFile(join(out, `explain-${model}.png`), (await explain(model, files as never)).rawPayload);
  describe(model, (await explain(model, files as never, {}, false)).json().maps);
}

// the generator: sample / layout / sampling points per class
const classes = app.models.get('fashion-an')!.manifest.classes!;
const cells: Buffer[][] = [];
const SIDE = 84;
for (let c = 0; c < classes.length; c++) {
  const gen = await app.inject({ method: 'POST', url: '/v1/generate', payload: { model: 'fashion-an', class: c, seed: 7, size: SIDE } });
  const ex = (await app.inject({ method: 'POST', url: '/v1/explain', payload: { model: 'fashion-an', class: c, seed: 7 } })).json() as { maps: Map[] };
  if (c === 0 || c === 6) describe(`fashion-an ${classes[c]}`, ex.maps);
  const up = (b64: string) => sharp(Buffer.from(b64, 'base64')).resize(SIDE, SIDE, { kernel: 'nearest' }).png().toBuffer();
  cells.push([gen.rawPayload, await up(ex.maps[0]!.b64_png), await up(ex.maps[1]!.b64_png)]);
}
const GAP = 4;
const composites = cells.flatMap((col, x) => col.map((input, y) => ({ input, left: GAP + x * (SIDE + GAP), top: GAP + y * (SIDE + GAP) })));
await sharp({ create: { width: GAP + classes.length * (SIDE + GAP), height: GAP + 3 * (SIDE + GAP), channels: 3, background: '#ffffff' } })
  .composite(composites).png().toFile(join(out, 'explain-fashion-an.png'));
console.log(`wrote ${out}/explain-*.png`);
await app.close();
