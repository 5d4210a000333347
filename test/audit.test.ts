/**
 * The second audit's holes (issue 43, items 2–9), one case each, every one of which failed before its fix:
 * - a path parameter over 100 characters: 404 problem+json (was 500), and 401 first with API_KEYS;
 * - an unmatched path counts against RATE_LIMIT_PER_MIN (was never limited);
 * - `/v1/upscale` bounds the ×4 work for `scale=2` too, its refusal names the largest input that fits, and that
 *   input is then served (was: 2048² at ×2 ran 196 tiles for 212 s; the advice "or scale=2" did not work);
 * - a thin 1×100000 PNG is refused (was 658 tiles); every request has a deadline (DEADLINE_MS → 504);
 * - a JSON body holding more values than its route takes is refused with 413 before parsing (was a 5 s stall);
 * - KServe v2: FP32 values outside the input's range and tensors below the minimum size are 400 (were 200 with
 *   `null`s, and 500);
 * - integers in query strings and multipart fields are digits only (`" "`, `0x10`, `1e3`, `4.0` were taken);
 * - `hint_points` in multipart takes its 1,000 points (was cut at 1 KiB); a pixel-bomb `hints` image is 413.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildReadyApp, colourPhoto, grayPhoto, multipart, pngBomb } from './helper.js';
import { countJsonValues } from '../src/plugins/json.js';

function problem(res: LightMyRequestResponse, status: number, type?: RegExp): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body.slice(0, 300));
  assert.match(String(res.headers['content-type']), /application\/problem\+json/);
  const doc = res.json();
  if (type) assert.match(doc.type, type);
  return doc;
}

describe('with API_KEYS and a rate limit', () => {
  let app: FastifyInstance;
  const auth = { authorization: 'Bearer k1' };
  before(async () => { app = await buildReadyApp({ API_KEYS: 'k1', RATE_LIMIT_PER_MIN: '3', MODELS: 'fashion-an' }); });
  after(async () => app.close());

  test('a path parameter over 100 characters: 401 without a key, 404 with one (not 500)', async () => {
    for (const url of [`/v1/jobs/${'a'.repeat(101)}`, `/v1/models/${'a'.repeat(101)}`]) {
      problem(await app.inject({ method: 'GET', url }), 401, /unauthorized$/);
      problem(await app.inject({ method: 'GET', url, headers: auth }), 404, /not-found$/);
    }
  });

  test('unmatched paths count against the rate limit', async () => {
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await app.inject({ method: 'GET', url: `/nope-${i}`, headers: auth })).statusCode);
    assert.deepEqual(codes, [404, 404, 404, 429]);
  });
});

describe('bounds and strict fields', () => {
  let app: FastifyInstance;
  // 1 MP of ×4 work: the largest input is 256×256 (65,536 px)
  before(async () => { app = await buildReadyApp({ MAX_OUTPUT_PIXELS: String(1024 * 1024), MODELS: 'all' }); });
  after(async () => app.close());
  const upscale = (data: Buffer, fields: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/upscale', ...multipart({ image: { data } }, fields) });

  test('upscale: scale=2 is bounded by its ×4 work, and the advised size is served', async () => {
    const photo = await sharp(await colourPhoto()).resize(320, 240).png().toBuffer();
    for (const scale of ['2', '4']) {
      const doc = problem(await upscale(photo, { scale }), 413, /output-too-large$/);
      assert.deepEqual(doc.max_input, { width: 295, height: 221 });
      assert.match(String(doc.detail), /at most 295×221/);
    }
    const fits = await sharp(await colourPhoto()).resize(295, 221, { fit: 'fill' }).png().toBuffer();
    const ok = await upscale(fits, { scale: '2' });
    assert.equal(ok.statusCode, 200, ok.body.slice(0, 200));
    const meta = await sharp(ok.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height], [590, 442]);
  });

  test('upscale: a thin 1×8000 strip is refused for its tile count, before any pass', async () => {
    const strip = await sharp({ create: { width: 1, height: 8000, channels: 3, background: '#808080' } }).png().toBuffer();
    const doc = problem(await upscale(strip), 413, /too-many-tiles$/);
    assert.ok(Number(doc.tiles) > Number(doc.max_tiles));
  });

  test('a JSON body with more values than its route takes: 413 before parsing', async () => {
    const points = Array.from({ length: 100_000 }, (_, i) => ({ x: i % 100, y: 1, color: '#ff0000' }));
    const body = JSON.stringify({ image: (await grayPhoto()).toString('base64'), model: 'colorize-hints', hint_points: points });
    problem(await app.inject({ method: 'POST', url: '/v1/translate', payload: body, headers: { 'content-type': 'application/json' } }), 413, /too-many-values$/);
    const objects = JSON.stringify({ class: 'Bag', seed: 1, extra: Array.from({ length: 10_000 }, () => ({})) });
    problem(await app.inject({ method: 'POST', url: '/v1/generate', payload: objects, headers: { 'content-type': 'application/json' } }), 413, /too-many-values$/);
    // the counter stops as soon as the bound is passed
    assert.equal(countJsonValues('[1,2,3,4,5]', 2), 3);
    assert.equal(countJsonValues('{"a": [1, 2]}', 10), 3);
  });

  test('KServe v2: values outside the declared range and tensors below the minimum size are 400', async () => {
    const v2 = (model: string, inputs: unknown[]) => app.inject({ method: 'POST', url: `/v2/models/${model}/infer`, payload: { inputs } });
    for (const big of [1e30, 3e38, 1.5]) {
      const res = await v2('colorize-pono-auto', [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: Array.from({ length: 64 }, (_, i) => (i === 7 ? big : 0)) }]);
      assert.equal(res.statusCode, 400, res.body.slice(0, 200));
      assert.match(res.json().error, /outside the input's range \[-1, 1\]/);
    }
    const z = Array.from({ length: 128 }, (_, i) => (i === 0 ? 1e19 : 0));
    const gen = await v2('fashion-an', [{ name: 'z', shape: [1, 128], datatype: 'FP32', data: z }, { name: 'y', shape: [1, 10], datatype: 'FP32', data: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] }]);
    assert.equal(gen.statusCode, 400, gen.body.slice(0, 200));
    const small = await v2('colorize-pono-auto', [{ name: 'gray', shape: [1, 1, 4, 4], datatype: 'FP32', data: Array(16).fill(0) }]);
    assert.equal(small.statusCode, 400);
    assert.match(small.json().error, /at least 8/);
    const ok = await v2('colorize-pono-auto', [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: Array(64).fill(0.5) }]);
    assert.equal(ok.statusCode, 200, ok.body.slice(0, 200));
  });

  test('integers in query strings and multipart fields are digits only', async () => {
    for (const seed of ['%20', '0x10', '1e3', '16.0', '+16', '016', '']) {
      problem(await app.inject({ method: 'GET', url: `/v1/generate?class=1&seed=${seed}` }), 422, /invalid-field$/);
    }
    const good = await app.inject({ method: 'GET', url: '/v1/generate?class=1&seed=16' });
    assert.equal(good.statusCode, 200);
    assert.equal(good.headers['x-seed'], '16');
    const gray = await grayPhoto();
    for (const scale of ['0x4', ' 4', '4.0', '04']) problem(await upscale(gray.subarray(0), { scale }), 422, /invalid-field$/);
    problem(await app.inject({ method: 'POST', url: '/v1/explain', ...multipart({}, { model: 'fashion-an', class: '1', seed: '1e3' }) }), 422, /invalid-field$/);
  });

  test('hint_points in multipart take 1,000 points; a pixel-bomb hints image is 413', async () => {
    const gray = await grayPhoto();
    const points = Array.from({ length: 1000 }, (_, i) => ({ x: (i * 7) % 451, y: (i * 13) % 300, color: '#3366cc', radius: 1 }));
    const res = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray } }, { model: 'colorize-hints', hint_points: JSON.stringify(points) }) });
    assert.equal(res.statusCode, 200, res.body.slice(0, 200));
    const bomb = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray }, hints: { data: pngBomb(60000, 60000) } }, { model: 'colorize-hints' }) });
    problem(bomb, 413, /too-many-pixels$/);
  });
});

test('DEADLINE_MS: a request past its deadline gets 504 problem+json with Retry-After', async () => {
  const app = await buildReadyApp({ DEADLINE_MS: '1', MODELS: 'upscale-pono' });
  try {
    const gray = await grayPhoto();
    await new Promise((r) => setTimeout(r, 5));
    const res = await app.inject({ method: 'POST', url: '/v1/upscale', ...multipart({ image: { data: gray } }) });
    problem(res, 504, /deadline$/);
    assert.ok(Number(res.headers['retry-after']) >= 1);
  } finally {
    await app.close();
  }
});
