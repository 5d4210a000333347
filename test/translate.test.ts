/**
 * POST /v1/translate on the real bundled colorizer with real held-out photos: sizes, formats,
 * header, the model's luma-preserving output, and each bad input → its problem+json status,
 * with the server still serving afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, grayPhoto, multipart, raw } from './helper.js';

let app: FastifyInstance;
before(async () => {
  app = await buildReadyApp({ MAX_UPLOAD_BYTES: String(256 * 1024), MAX_PIXELS: String(600 * 600) });
});
after(async () => app.close());

async function translate(files: Parameters<typeof multipart>[0], fields: Record<string, string> = {}) {
  const { payload, headers } = multipart(files, fields);
  return app.inject({ method: 'POST', url: '/v1/translate', payload, headers });
}

function assertProblem(res: Awaited<ReturnType<typeof translate>>, status: number) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const doc = res.json();
  assert.equal(doc.status, status);
  assert.equal(typeof doc.title, 'string');
  assert.equal(typeof doc.detail, 'string');
  assert.match(doc.type, /^https:\/\//);
  return doc;
}

describe('POST /v1/translate', () => {
  test('colorizes a real grayscale photo into an RGB PNG of the same size', async () => {
    const gray = await grayPhoto();
    const res = await translate({ image: { data: gray, type: 'image/png' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/png');
    const manifest = app.models.get('colorize-pono')!.manifest;
    assert.equal(res.headers['x-model'], `colorize-pono@${manifest.version}`);
    const out = await raw(res.rawPayload);
    const inp = await sharp(gray).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    assert.equal(inp.info.channels, 1);
    assert.equal(out.info.width, 451); // not a multiple of 4: padded then cropped back
    assert.equal(out.info.height, 300);
    assert.equal(out.info.channels, 3);
    // The colorizer keeps the photo's luma: BT.601 luma of the output ≈ the gray input (mean |Δ| under
    // 0.6 levels, ±2 levels at 97% of pixels: rounding, and the clamp on saturated colours), and it adds colour.
    let close = 0;
    let absDiff = 0;
    let chroma = 0;
    const n = out.info.width * out.info.height;
    for (let i = 0; i < n; i++) {
      const [r, g, b] = [out.data[3 * i]!, out.data[3 * i + 1]!, out.data[3 * i + 2]!];
      const d = Math.abs(0.299 * r + 0.587 * g + 0.114 * b - inp.data[i]!);
      absDiff += d;
      if (d <= 2) close++;
      chroma += Math.abs(r - g) + Math.abs(g - b);
    }
    assert.ok(absDiff / n < 0.6, `mean |luma(out) − in| = ${(absDiff / n).toFixed(3)}`);
    assert.ok(close / n > 0.97, `luma preserved at ${(100 * close / n).toFixed(1)}% of pixels`);
    assert.ok(chroma / n > 1, `mean |R−G|+|G−B| = ${(chroma / n).toFixed(2)}: the output is not gray`);
  });

  test('accepts a colour JPEG and answers in each output_format', async () => {
    const jpg = await colourPhoto();
    for (const [format, type] of [['jpeg', 'image/jpeg'], ['webp', 'image/webp'], ['png', 'image/png']] as const) {
      const res = await translate({ image: { data: jpg, type: 'image/jpeg' } }, { output_format: format });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], type);
      const meta = await sharp(res.rawPayload).metadata();
      assert.equal(meta.format, format);
      assert.deepEqual([meta.width, meta.height], [320, 213]);
    }
  });

  test('applies EXIF orientation: a rotated JPEG keeps its display size', async () => {
    const gray = await grayPhoto(); // 451×300
    const rotated = await sharp(gray).jpeg().withMetadata({ orientation: 6 }).toBuffer(); // displayed 300×451
    const res = await translate({ image: { data: rotated } }, { model: 'colorize-pono' });
    assert.equal(res.statusCode, 200, res.body);
    const meta = await sharp(res.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height], [300, 451]);
  });

  test('same input, same bytes', async () => {
    const gray = await grayPhoto();
    const a = await translate({ image: { data: gray } });
    const b = await translate({ image: { data: gray } });
    assert.ok(a.rawPayload.equals(b.rawPayload));
  });

  test('bad inputs get problem+json and the server keeps serving', async () => {
    const gray = await grayPhoto();
    assertProblem(await translate({}, { output_format: 'png' }), 400); // missing image
    assertProblem(await translate({ image: { data: gray } }, { model: 'no-such-model' }), 404);
    assertProblem(await translate({ image: { data: Buffer.from('{"not":"an image"}') } }), 415);
    assertProblem(await translate({ image: { data: gray.subarray(0, 2000) } }), 415); // truncated PNG
    assertProblem(await translate({ image: { data: Buffer.alloc(300 * 1024, 7) } }), 413); // > MAX_UPLOAD_BYTES
    const big = await sharp({ create: { width: 700, height: 700, channels: 3, background: '#808080' } }).png().toBuffer();
    const doc = assertProblem(await translate({ image: { data: big } }), 413); // > MAX_PIXELS
    assert.equal(doc.max_pixels, 600 * 600);
    assertProblem(await translate({ image: { data: gray } }, { output_format: 'bmp' }), 422);
    assertProblem(await translate({ image: { data: gray }, mask: { data: gray } }), 422); // unknown field
    const whole = multipart({ image: { data: gray } });
    const cut = await app.inject({ method: 'POST', url: '/v1/translate', payload: whole.payload.subarray(0, 5000), headers: whole.headers });
    assertProblem(cut, 400); // truncated multipart body
    const json = await app.inject({ method: 'POST', url: '/v1/translate', payload: { image: 'x' } });
    assertProblem(json, 415); // not multipart
    assertProblem(await app.inject({ method: 'GET', url: '/v1/nothing' }), 404);
    const ok = await translate({ image: { data: gray } });
    assert.equal(ok.statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });

  test('a decompression bomb is refused from its header, before decoding', async () => {
    // 8000×8000 PNG of one colour: ~70 kB compressed, 192 MB once decoded to RGB. MAX_UPLOAD_BYTES is
    // raised so that the pixel limit (not the byte limit) must catch it.
    const bomb = await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#000' }, limitInputPixels: false }).png({ compressionLevel: 9 }).toBuffer();
    assert.ok(bomb.length < 1024 * 1024);
    const big = await buildReadyApp({ MAX_UPLOAD_BYTES: String(4 * 1024 * 1024), MAX_PIXELS: String(1000 * 1000) });
    try {
      const { payload, headers } = multipart({ image: { data: bomb } });
      const before = process.memoryUsage().rss;
      const res = await big.inject({ method: 'POST', url: '/v1/translate', payload, headers });
      assert.equal(res.statusCode, 413, res.body);
      assert.ok(process.memoryUsage().rss - before < 150 * 1024 * 1024, 'no full decode');
    } finally {
      await big.close();
    }
  });
});
