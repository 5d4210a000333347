/**
 * POST /v1/upscale (issue 33) on the real bundled PONO-MS ×4 upscaler and a real held-out photo (sklearn's
 * china): the reply is exactly scale × the input's size (odd sizes, scale 4 and 2), it is closer to the true
 * photo than bicubic upscaling of the same small input (Y-PSNR), the same input gives the same bytes, tiled
 * passes (UPSCALE_TILE) give the same pixels as one pass, the output limit (MAX_OUTPUT_PIXELS) refuses before
 * any work, and each bad input gets its problem+json status.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp, { type Sharp } from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, multipart, raw } from './helper.js';
import { planTiles } from '../src/imaging/tiles.js';

let app: FastifyInstance;
let tiled: FastifyInstance;
let photo: Buffer; // 320 x 213 RGB JPEG
before(async () => {
  app = await buildReadyApp({ MAX_OUTPUT_PIXELS: String(1400 * 1000) });
  tiled = await buildReadyApp({ UPSCALE_TILE: '64' });
  photo = await colourPhoto();
});
after(async () => { await app.close(); await tiled.close(); });

async function png(img: Sharp): Promise<Buffer> { return img.png().toBuffer(); }
async function up(a: FastifyInstance, image: Buffer, fields: Record<string, string> = {}) {
  return a.inject({ method: 'POST', url: '/v1/upscale', ...multipart({ image: { data: image, type: 'image/png' } }, fields) });
}
function assertProblem(res: Awaited<ReturnType<typeof up>>, status: number, slug: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.match(res.json().type, new RegExp(`${slug}$`));
}
/** Y of BT.601 studio range (the SR papers' Y-PSNR), peak 255, `border` px cropped. */
function yPsnr(a: Buffer, b: Buffer, w: number, h: number, border: number): number {
  let se = 0, n = 0;
  for (let y = border; y < h - border; y++) {
    for (let x = border; x < w - border; x++) {
      const i = 3 * (y * w + x);
      const ya = 65.481 * a[i]! + 128.553 * a[i + 1]! + 24.966 * a[i + 2]!;
      const yb = 65.481 * b[i]! + 128.553 * b[i + 1]! + 24.966 * b[i + 2]!;
      se += ((ya - yb) / 255) ** 2; n++;
    }
  }
  return 10 * Math.log10((255 * 255) / (se / n));
}

describe('POST /v1/upscale', () => {
  test('the reply is exactly scale × the input (odd sizes; scale 4 default, 2), with X-Model and X-Tiles', async () => {
    const small = await png(sharp(photo).extract({ left: 40, top: 30, width: 37, height: 23 }));
    const r4 = await up(app, small);
    assert.equal(r4.statusCode, 200, r4.body);
    assert.equal(r4.headers['content-type'], 'image/png');
    assert.match(String(r4.headers['x-model']), /^upscale-pono@\d/);
    assert.equal(r4.headers['x-tiles'], '1');
    const m4 = await sharp(r4.rawPayload).metadata();
    assert.deepEqual([m4.width, m4.height], [148, 92]);
    const r2 = await up(app, small, { scale: '2', output_format: 'jpeg' });
    assert.equal(r2.statusCode, 200, r2.body);
    assert.equal(r2.headers['content-type'], 'image/jpeg');
    const m2 = await sharp(r2.rawPayload).metadata();
    assert.deepEqual([m2.width, m2.height], [74, 46]);
  });

  test('closer to the true photo than bicubic upscaling of the same ×4-reduced input (Y-PSNR)', async () => {
    const W = 256, H = 192;
    const truth = await sharp(photo).extract({ left: 32, top: 10, width: W, height: H }).raw().toBuffer();
    const small = await png(sharp(truth, { raw: { width: W, height: H, channels: 3 } }).resize(W / 4, H / 4, { kernel: 'cubic' }));
    const res = await up(app, small);
    assert.equal(res.statusCode, 200, res.body);
    const ours = (await raw(res.rawPayload)).data;
    const bicubic = await sharp(small).resize(W, H, { kernel: 'cubic' }).raw().toBuffer();
    const pOurs = yPsnr(ours, truth, W, H, 4), pBic = yPsnr(bicubic, truth, W, H, 4);
    assert.ok(pOurs > pBic + 0.3, `upscaler ${pOurs.toFixed(2)} dB vs bicubic ${pBic.toFixed(2)} dB`);
  });

  test('the same input gives the same bytes; JSON base64 in and b64_json out give the same pixels', async () => {
    const small = await png(sharp(photo).extract({ left: 0, top: 0, width: 64, height: 48 }));
    const a = await up(app, small);
    const b = await up(app, small);
    assert.equal(a.statusCode, 200);
    assert.ok(a.rawPayload.equals(b.rawPayload));
    const j = await app.inject({ method: 'POST', url: '/v1/upscale', payload: { image: small.toString('base64'), response_format: 'b64_json' } });
    assert.equal(j.statusCode, 200, j.body);
    const doc = j.json();
    assert.deepEqual([doc.data[0].width, doc.data[0].height], [256, 192]);
    assert.ok(Buffer.from(doc.data[0].b64_json, 'base64').equals(a.rawPayload));
  });

  test('tiles (UPSCALE_TILE=64) join without seams: the same pixels as one pass', async () => {
    const small = await png(sharp(photo).extract({ left: 10, top: 20, width: 150, height: 110 }));
    const one = await up(app, small);
    const many = await up(tiled, small);
    assert.equal(one.statusCode, 200, one.body);
    assert.equal(many.statusCode, 200, many.body);
    assert.equal(one.headers['x-tiles'], '1');
    assert.ok(Number(many.headers['x-tiles']) > 4, `x-tiles ${many.headers['x-tiles']}`);
    const a = (await raw(one.rawPayload)).data, b = (await raw(many.rawPayload)).data;
    assert.equal(a.length, b.length);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    assert.ok(maxDiff <= 1, `tiled and whole differ by up to ${maxDiff} levels`);
  });

  test('work over MAX_OUTPUT_PIXELS is 413 (from the header), for scale=2 too (it is the x4 result resized)', async () => {
    // 320 x 213 x 16 = 1.09 MP fits 1.4 MP; a 400 x 300 input (1.92 MP at x4) does not, at x4 or at x2
    const big = await png(sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080' } }));
    assertProblem(await up(app, big), 413, 'output-too-large');
    assertProblem(await up(app, big, { scale: '2' }), 413, 'output-too-large');
  });

  test('bad inputs: scale 3 or 8 → 422; a model of another task → 422; not an image → 415; no image → 400', async () => {
    const small = await png(sharp(photo).extract({ left: 0, top: 0, width: 16, height: 16 }));
    assertProblem(await up(app, small, { scale: '3' }), 422, 'invalid-field');
    assertProblem(await up(app, small, { scale: '8' }), 422, 'invalid-field');
    assertProblem(await up(app, small, { model: 'colorize-pono' }), 422, 'wrong-task');
    assertProblem(await up(app, Buffer.from('not an image at all')), 415, 'not-raster');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/upscale', ...multipart({}, { scale: '4' }) }), 400, 'missing-image');
    const res = await up(app, small);
    assert.equal(res.statusCode, 200, 'still serving');
  });
});

describe('planTiles', () => {
  test('cores cover the image exactly once; tiles stay inside it, at multiples of 4, with the overlap where there is room', () => {
    for (const [w, h, tile, ov] of [[300, 200, 64, 12], [64, 64, 64, 12], [68, 12, 64, 8], [1024, 768, 256, 52]] as const) {
      const tiles = planTiles(w, h, tile, ov, 4);
      const hits = new Uint8Array(w * h);
      for (const t of tiles) {
        assert.ok(t.x >= 0 && t.y >= 0 && t.x + t.width <= w && t.y + t.height <= h);
        assert.ok(t.width <= tile && t.height <= tile, `${t.width}x${t.height} over ${tile}`);
        for (const v of [t.x, t.y, t.width, t.height, t.coreX, t.coreY]) assert.equal(v % 4, 0);
        if (tiles.length > 1) {
          assert.equal(t.coreX - t.x, Math.min(ov, t.coreX));
          assert.equal(t.x + t.width - (t.coreX + t.coreWidth), Math.min(ov, w - t.coreX - t.coreWidth));
        }
        for (let y = t.coreY; y < t.coreY + t.coreHeight; y++) for (let x = t.coreX; x < t.coreX + t.coreWidth; x++) hits[y * w + x]!++;
      }
      const bad = hits.findIndex((v) => v !== 1);
      assert.equal(bad, -1, `${w}x${h}: pixel ${bad} is covered ${hits[bad]} times`);
    }
    assert.throws(() => planTiles(302, 200, 64, 12, 4), RangeError);
    assert.throws(() => planTiles(300, 200, 24, 12, 4), RangeError);
  });
});
