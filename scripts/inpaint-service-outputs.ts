/**
 * Runs the evaluation photos through the real service: for each `<photo>.png` with its
 * `<photo>.mask.png` (white = hole) in DIR (written by `python3 -m trainer inpaint evaluate --dump DIR`),
 * POST /v1/inpaint on the app with the bundled default inpainter, and write the reply (PNG, the input's
 * size) as `<photo>.out.png`; prints photo, status and X-Working-Size. Score them with
 * `python3 -m trainer inpaint evaluate --outputs service=DIR`. Exits 1 on a non-200 reply.
 * Usage: `npx tsx scripts/inpaint-service-outputs.ts DIR`.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildReadyApp, multipart } from '../test/helper.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: npx tsx scripts/inpaint-service-outputs.ts DIR');
const app = await buildReadyApp();
for (const f of (await readdir(dir)).filter((f) => f.endsWith('.png') && !f.endsWith('.mask.png') && !f.endsWith('.out.png'))) {
  const name = f.slice(0, -4);
  const res = await app.inject({
    method: 'POST', url: '/v1/inpaint',
    ...multipart({ image: { data: await readFile(join(dir, f)) }, mask: { data: await readFile(join(dir, `${name}.mask.png`)) } }),
  });
  console.log(name, res.statusCode, res.headers['x-working-size']);
  if (res.statusCode !== 200) { process.exitCode = 1; break; }
  await writeFile(join(dir, `${name}.out.png`), res.rawPayload);
}
await app.close();
