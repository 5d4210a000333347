/**
 * Phone photos (issues 28 and 31): a large photo is colorized at the model's working size and its chroma
 * upsampled onto the full-resolution luma — 200, full size, `X-Working-Size`, the input's luma kept —
 * and inpainted at the inpainter's working size with only the hole pasted back. A 12 MP JPEG is accepted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, maskPng, multipart, raw } from './helper.js';
import { BT601 } from '../src/imaging/decode.js';

let app: FastifyInstance;
before(async () => { app = await buildReadyApp(); });
after(async () => app?.close());

const post = (url: string, files: Parameters<typeof multipart>[0], fields: Record<string, string> = {}) => app.inject({ method: 'POST', url, ...multipart(files, fields) });

/** Share of pixels whose BT.601 luma differs from the reference luma by more than `tol` levels. */
function lumaOff(rgb: Buffer, gray: Buffer, tol = 1.5): number {
  let off = 0;
  for (let i = 0; i < gray.length; i++) {
    const y = BT601[0] * rgb[3 * i]! + BT601[1] * rgb[3 * i + 1]! + BT601[2] * rgb[3 * i + 2]!;
    if (Math.abs(y - gray[i]!) > tol) off++;
  }
  return off / gray.length;
}

describe('large photos run at the working size', () => {
  test('an 1800×1200 gray photo: 200, full size, at the default colorizer\'s working size (384×256), the input luma kept, colour added', async () => {
    const gray = await sharp(await colourPhoto()).resize(1800, 1200, { fit: 'fill' }).grayscale().png().toBuffer();
    const r = await post('/v1/translate', { image: { data: gray } });
    assert.equal(r.statusCode, 200, r.body.slice(0, 300));
    const side = app.models.get('colorize-pono')!.manifest.serving.working_max_side!;
    assert.equal(r.headers['x-working-size'], `${side}x${side * 2 / 3}`);
    const out = await raw(r.rawPayload);
    assert.equal(out.info.width, 1800);
    assert.equal(out.info.height, 1200);
    const ref = await sharp(gray).extractChannel(0).raw().toBuffer();
    assert.ok(lumaOff(out.data, ref) < 0.01, `luma off on ${(lumaOff(out.data, ref) * 100).toFixed(2)} % of pixels`);
    let chroma = 0;
    for (let i = 0; i < ref.length; i++) chroma += Math.abs(out.data[3 * i]! - out.data[3 * i + 2]!);
    assert.ok(chroma / ref.length > 2, 'the output has colour');
  });

  test('a small photo runs at its own size (X-Working-Size = its size)', async () => {
    const gray = await sharp(await colourPhoto()).resize(320, 200, { fit: 'fill' }).grayscale().png().toBuffer();
    const r = await post('/v1/translate', { image: { data: gray } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-working-size'], '320x200');
  });

  test('a 12 MP phone JPEG colorizes and inpaints at full size; outside the hole exact', async () => {
    const jpeg = await sharp(await colourPhoto()).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 85 }).toBuffer();
    const t = await post('/v1/translate', { image: { data: jpeg, type: 'image/jpeg' } });
    assert.equal(t.statusCode, 200, t.body.slice(0, 300));
    const tm = await sharp(t.rawPayload).metadata();
    assert.deepEqual([tm.width, tm.height], [4000, 3000]);
    const mask = await maskPng(4000, 3000, [[1500, 1000, 600, 500, 255]]);
    const i = await post('/v1/inpaint', { image: { data: jpeg, type: 'image/jpeg' }, mask: { data: mask, type: 'image/png' } }, { output_format: 'png' });
    assert.equal(i.statusCode, 200, i.body.slice(0, 300));
    const [a, b] = await Promise.all([raw(i.rawPayload), raw(jpeg)]);
    assert.deepEqual([a.info.width, a.info.height], [4000, 3000]);
    let outside = 0;
    for (let y = 0; y < 3000; y += 7) for (let x = 0; x < 4000; x += 7) {
      if (x >= 1500 && x < 2100 && y >= 1000 && y < 1500) continue;
      const k = 3 * (y * 4000 + x);
      if (a.data[k] !== b.data[k] || a.data[k + 1] !== b.data[k + 1] || a.data[k + 2] !== b.data[k + 2]) outside++;
    }
    assert.equal(outside, 0);
  });
});

describe('memory budget (MEMORY_BUDGET_MB)', () => {
  test('a pass that would not fit the budget is refused with 413 before it runs; the estimate is in the answer', async () => {
    // The per-pass budget is MEMORY_BUDGET_MB − the RSS at ready, which this test process cannot know in advance
    // (its RSS moves with what earlier tests left and the garbage collector): aim at half the largest
    // working-size pass (work², perMp × work²/1e6 MiB) and correct the budget by what the first app measured.
    let budget = Math.ceil(process.memoryUsage().rss / 2 ** 20) + 700;
    let tight = await buildReadyApp({ MEMORY_BUDGET_MB: String(budget) });
    const serving = tight.models.get('colorize-pono')!.manifest.serving;
    const perMp = serving.peak_mb_per_mp!;
    const work = serving.working_max_side!; // a larger photo runs at this size: the pass to refuse must be below it
    assert.ok(perMp > 0, 'the manifest records peak_mb_per_mp');
    const sideFor = (per: number) => Math.ceil(Math.sqrt(((per + 50) / perMp) * 1e6) / 4) * 4;
    for (let i = 0; i < 3; i++) {
      const per = tight.models.passBudgetMb()!;
      if (per > 0 && sideFor(per) <= work) break;
      await tight.close();
      budget = Math.ceil(budget + (perMp * work * work / 1e6) / 2 - per);
      tight = await buildReadyApp({ MEMORY_BUDGET_MB: String(budget) });
    }
    try {
      const per = tight.models.passBudgetMb()!;
      assert.ok(per > 0, `budget per pass ${per}`);
      // a side whose pass needs just above the budget per pass
      const side = sideFor(per);
      assert.ok(side <= work, `budget per pass ${per} MiB is too large for this test (side ${side})`);
      const gray = await sharp(await colourPhoto()).resize(side, side, { fit: 'fill' }).grayscale().png().toBuffer();
      const r = await tight.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray } }) });
      assert.equal(r.statusCode, 413, r.body.slice(0, 300));
      assert.match(r.json().type, /over-memory-budget$/);
      assert.ok(r.json().estimate_mb > r.json().budget_mb);
      const small = await sharp(await colourPhoto()).resize(128, 96).grayscale().png().toBuffer();
      assert.equal((await tight.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: small } }) })).statusCode, 200);
    } finally {
      await tight.close();
    }
  });

  test('MEMORY_BUDGET_MB=0 turns the check off', async () => {
    const off = await buildReadyApp({ MEMORY_BUDGET_MB: '0' });
    try {
      assert.equal(off.models.passBudgetMb(), undefined);
    } finally {
      await off.close();
    }
  });
});

