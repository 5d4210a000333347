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
 *
 * Prints name, status and X-Model (and X-Working-Size for inpaint). Exits 1 on a non-200 reply.
 * Usage: `npx tsx scripts/service-outputs.ts translate|inpaint DIR [MODEL]`.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildReadyApp, multipart } from '../test/helper.js';

const [task, dir, model] = process.argv.slice(2);
if ((task !== 'translate' && task !== 'inpaint') || !dir) {
  throw new Error('usage: npx tsx scripts/service-outputs.ts translate|inpaint DIR [MODEL]');
}
const app = await buildReadyApp();
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
