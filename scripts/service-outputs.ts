/**
 * Runs evaluation inputs through the real service (the app with the bundled models, in process) and
 * writes each reply next to its input, for the trainer to score:
 *
 * - `translate DIR [MODEL]`: every `<name>.png` in DIR (gray photos written by `python3 -m trainer
 *   colorize evaluate --dump DIR`) → POST /v1/translate (with `model=MODEL` when given) → `<name>.out.png`;
 *   score with `python3 -m trainer colorize evaluate --outputs LABEL=DIR`.
 * - `inpaint DIR [MODEL]`: every `<photo>.png` with its `<photo>.mask.png` (white = hole; written by
 *   `python3 -m trainer inpaint evaluate --dump DIR`) → POST /v1/inpaint → `<photo>.out.png`; score with
 *   `python3 -m trainer inpaint evaluate --outputs service=DIR`.
 * - `generate DIR [MODEL]`: for each class c of the generator (default `fashion-an`), one POST
 *   /v1/generate `{ class: c, count: 64, seed: 1000 + c, layout: 'json' }` (the hidden judge's protocol:
 *   64 per class) → `<c>_<i>.png` (i = 0..63, 28×28 gray PNG) in DIR; score with `python3 -m trainer
 *   generate evaluate --images service=DIR`.
 *
 * Prints name, status and X-Model (and X-Working-Size for inpaint). Exits 1 on a non-200 reply.
 * Usage: `npx tsx scripts/service-outputs.ts translate|inpaint|generate DIR [MODEL]`.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildReadyApp, multipart } from '../test/helper.js';

const [task, dir, model] = process.argv.slice(2);
if (!['translate', 'inpaint', 'generate'].includes(task ?? '') || !dir) {
  throw new Error('usage: npx tsx scripts/service-outputs.ts translate|inpaint|generate DIR [MODEL]');
}
const app = await buildReadyApp();
if (task === 'generate') {
  await mkdir(dir, { recursive: true });
  const name = model ?? 'fashion-an';
  const info = await app.inject({ method: 'GET', url: `/v1/models/${name}` });
  const classes = (info.json() as { classes?: string[] }).classes ?? [];
  if (info.statusCode !== 200 || classes.length === 0) throw new Error(`${name}: no classes (${info.statusCode})`);
  for (let c = 0; c < classes.length; c++) {
    const res = await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: c, count: 64, seed: 1000 + c, layout: 'json', ...(model ? { model } : {}) } });
    console.log(classes[c], res.statusCode, res.headers['x-model']);
    if (res.statusCode !== 200) { process.exitCode = 1; break; }
    const images = (res.json() as { images: string[] }).images;
    await Promise.all(images.map((b64, i) => writeFile(join(dir, `${c}_${i}.png`), Buffer.from(b64, 'base64'))));
  }
  await app.close();
  process.exit();
}
const inputs = (await readdir(dir)).filter((f) => f.endsWith('.png') && !f.endsWith('.mask.png') && !f.endsWith('.out.png'));
for (const f of inputs.sort()) {
  const name = f.slice(0, -4);
  const parts: Parameters<typeof multipart>[0] = { image: { data: await readFile(join(dir, f)) } };
  if (task === 'inpaint') parts.mask = { data: await readFile(join(dir, `${name}.mask.png`)) };
  const res = await app.inject({ method: 'POST', url: `/v1/${task}`, ...multipart(parts, model ? { model } : {}) });
  console.log(name, res.statusCode, res.headers['x-model'], res.headers['x-working-size'] ?? '');
  if (res.statusCode !== 200) { process.exitCode = 1; break; }
  await writeFile(join(dir, `${name}.out.png`), res.rawPayload);
}
await app.close();
