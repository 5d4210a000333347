/**
 * Regenerates docs/inpaint-mask.png and docs/inpaint-example.png (README): the bundled china-small.jpg
 * with a 60×34 rectangle and a 9-px stroke as the hole (white = fill), sent to POST /v1/inpaint of the
 * real app on the bundled default inpainter; the figure is the holed input beside the reply (PNG).
 * Usage: `npx tsx scripts/inpaint-example.ts` (prints status, X-Working-Size, X-Hole-Fraction).
 */
import sharp from 'sharp';
import { readFile, writeFile } from 'node:fs/promises';
import { buildReadyApp, multipart } from '../test/helper.js';
const photo = await readFile('test/fixtures/china-small.jpg');
const { width: W, height: H } = await sharp(photo).metadata();
const svg = `<svg width="${W}" height="${H}"><rect width="100%" height="100%" fill="black"/><rect x="232" y="118" width="60" height="34" fill="white"/><path d="M20 190 L120 160" stroke="white" stroke-width="9"/></svg>`;
const mask = await sharp(Buffer.from(svg)).png().toBuffer();
await writeFile('docs/inpaint-mask.png', mask);
const app = await buildReadyApp();
const res = await app.inject({ method: 'POST', url: '/v1/inpaint', ...multipart({ image: { data: photo }, mask: { data: mask } }) });
console.log(res.statusCode, res.headers['x-working-size'], res.headers['x-hole-fraction']);
const holed = await sharp(photo).composite([{ input: await sharp(mask).toColourspace('srgb').png().toBuffer(), blend: 'lighten' }]).png().toBuffer();
const out = await sharp({ create: { width: 2 * W! + 8, height: H!, channels: 3, background: '#fff' } })
  .composite([{ input: holed, left: 0, top: 0 }, { input: res.rawPayload, left: W! + 8, top: 0 }]).png().toBuffer();
await writeFile('docs/inpaint-example.png', out);
await app.close();
