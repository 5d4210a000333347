/**
 * POST /v1/inpaint on the real bundled AN inpainter with a real held-out photo (sklearn's china):
 * exact pixels outside the hole (byte for byte after a PNG round trip), the mask conventions
 * (threshold at 127/128, gray or RGB, any format, alpha as the hole), the working-size rule for
 * large images, determinism, the edge cases (empty / all-white masks), and each bad input → its
 * problem+json status, with the server still serving afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, diffCounts, grayPhoto, maskPng, multipart, raw } from './helper.js';
import { workingSize } from '../src/imaging/mask.js';
import { tensorBuffers } from '../src/inference/buffers.js';

let app: FastifyInstance;
let photo: Buffer; // 320 x 213 RGB JPEG
let W = 0, H = 0;
let side = 0; // the model's serving.working_max_side
before(async () => {
  app = await buildReadyApp({ MAX_UPLOAD_BYTES: String(4 * 1024 * 1024), MAX_PIXELS: String(1400 * 1000) });
  photo = await colourPhoto();
  const m = await sharp(photo).metadata();
  W = m.width!; H = m.height!;
  side = app.models.get('inpaint-an')!.manifest.serving.working_max_side!;
});
after(async () => app.close());

type Files = Parameters<typeof multipart>[0];
async function inpaint(files: Files, fields: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/v1/inpaint', ...multipart(files, fields) });
}

function assertProblem(res: Awaited<ReturnType<typeof inpaint>>, status: number, slug?: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const doc = res.json();
  assert.equal(doc.status, status);
  assert.equal(typeof doc.detail, 'string');
  if (slug) assert.match(doc.type, new RegExp(`${slug}$`));
  return doc;
}

describe('POST /v1/inpaint', () => {
  test('pixels outside the hole are exactly the input, byte for byte on a PNG round trip; the hole is filled', async () => {
    const rects: [number, number, number, number, number][] = [[60, 50, 40, 30, 255], [200, 120, 25, 50, 255]];
    const res = await inpaint({ image: { data: photo, type: 'image/jpeg' }, mask: { data: await maskPng(W, H, rects), type: 'image/png' } }, { output_format: 'png' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.match(String(res.headers['x-model']), /^inpaint-an@\d/);
    const ws = workingSize(W, H, side);
    assert.equal(res.headers['x-working-size'], `${ws.width}x${ws.height}`);
    const holeArea = rects.reduce((s, r) => s + r[2] * r[3], 0);
    assert.equal(Number(res.headers['x-hole-fraction']), Number((holeArea / (W * H)).toFixed(4)));
    const out = await raw(res.rawPayload);
    assert.deepEqual([out.info.width, out.info.height, out.info.channels], [W, H, 3]);
    const input = (await raw(photo)).data;
    const inHole = (i: number) => rects.some(([l, t, rw, rh]) => { const x = i % W, y = Math.floor(i / W); return x >= l && x < l + rw && y >= t && y < t + rh; });
    const d = diffCounts(input, out.data, inHole);
    assert.equal(d.outside, 0, 'a pixel outside the mask changed');
    assert.ok(d.inside > 0.5 * holeArea, `only ${d.inside} of ${holeArea} hole pixels changed`);
  });

  test('inpaint-an 2.0.0 fills with texture: detail in the hole several times inpaint-an-smooth\'s, near the photo\'s', async () => {
    // issue 30's detail measure: mean |Laplacian| of the luma over the hole eroded by 2 px
    const rect: [number, number, number, number, number] = [150, 100, 64, 64, 255];
    const mask = await maskPng(W, H, [rect]);
    const luma = async (img: Buffer) => (await sharp(img).greyscale().raw().toBuffer());
    const detail = (y: Buffer) => {
      let sum = 0, n = 0;
      for (let r = rect[1] + 2; r < rect[1] + rect[3] - 2; r++) {
        for (let c = rect[0] + 2; c < rect[0] + rect[2] - 2; c++) {
          const i = r * W + c;
          sum += Math.abs(4 * y[i]! - y[i - 1]! - y[i + 1]! - y[i - W]! - y[i + W]!); n++;
        }
      }
      return sum / n;
    };
    const run = async (model: string) => {
      const res = await inpaint({ image: { data: photo }, mask: { data: mask } }, { model, output_format: 'png' });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['x-model']), new RegExp(`^${model}@`));
      return res.rawPayload;
    };
    const [textured, smooth] = [await run('inpaint-an'), await run('inpaint-an-smooth')];
    const truth = detail(await luma(photo)), dt = detail(await luma(textured)), ds = detail(await luma(smooth));
    assert.ok(dt > 3 * ds, `detail: textured ${dt.toFixed(2)} vs smooth ${ds.toFixed(2)}`);
    assert.ok(dt > 0.4 * truth && dt < 1.5 * truth, `detail: textured ${dt.toFixed(2)} vs the photo's ${truth.toFixed(2)}`);
    // the same known pixels from both
    const input = (await raw(photo)).data, a = (await raw(textured)).data, b = (await raw(smooth)).data;
    const inHole = (i: number) => { const x = i % W, y = Math.floor(i / W); return x >= rect[0] && x < rect[0] + rect[2] && y >= rect[1] && y < rect[1] + rect[3]; };
    assert.equal(diffCounts(input, a, inHole).outside, 0);
    assert.equal(diffCounts(input, b, inHole).outside, 0);
  });

  test('the same request twice gives identical bytes', async () => {
    const mask = await maskPng(W, H, [[100, 80, 50, 40, 255]]);
    const a = await inpaint({ image: { data: photo }, mask: { data: mask } });
    const b = await inpaint({ image: { data: photo }, mask: { data: mask } });
    assert.equal(a.statusCode, 200);
    assert.ok(a.rawPayload.equals(b.rawPayload));
  });

  test('mask threshold: luma 128 fills, 127 keeps; an RGB JPEG mask works the same', async () => {
    // Left rectangle at 127 (keep), right rectangle at 128 (fill); the rest black.
    const gray = await maskPng(W, H, [[20, 20, 60, 60, 127], [200, 20, 60, 60, 128]]);
    const rgbMask = await sharp(gray).toColourspace('srgb').jpeg({ quality: 100 }).toBuffer();
    const input = (await raw(photo)).data;
    for (const mask of [gray, rgbMask]) {
      const res = await inpaint({ image: { data: photo }, mask: { data: mask } }, { output_format: 'png' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(Number(res.headers['x-hole-fraction']), Number((3600 / (W * H)).toFixed(4)));
      const inRight = (i: number) => { const x = i % W, y = Math.floor(i / W); return x >= 200 && x < 260 && y >= 20 && y < 80; };
      const d = diffCounts(input, (await raw(res.rawPayload)).data, inRight);
      assert.equal(d.outside, 0);
      assert.ok(d.inside > 1000);
    }
  });

  test('without a mask, the transparent pixels of an RGBA image are the hole; the reply is RGB', async () => {
    const rgb = (await raw(photo)).data;
    const rgba = Buffer.alloc(W * H * 4);
    const hole = (i: number) => { const x = i % W, y = Math.floor(i / W); return x >= 150 && x < 190 && y >= 90 && y < 140; };
    for (let i = 0; i < W * H; i++) {
      rgb.copy(rgba, 4 * i, 3 * i, 3 * i + 3);
      rgba[4 * i + 3] = hole(i) ? 0 : 255;
    }
    const png = await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toBuffer();
    const res = await inpaint({ image: { data: png, type: 'image/png' } });
    assert.equal(res.statusCode, 200, res.body);
    const out = await raw(res.rawPayload);
    assert.equal(out.info.channels, 3);
    const d = diffCounts(rgb, out.data, hole);
    assert.equal(d.outside, 0);
    assert.ok(d.inside > 1000);
  });

  test('a grayscale photo is inpainted as RGB with its known pixels kept', async () => {
    const gray = await grayPhoto();
    const m = await sharp(gray).metadata();
    const res = await inpaint({ image: { data: gray }, mask: { data: await maskPng(m.width!, m.height!, [[100, 100, 50, 50, 255]]) } });
    assert.equal(res.statusCode, 200, res.body);
    const out = await raw(res.rawPayload);
    const g = await sharp(gray).extractChannel(0).raw().toBuffer();
    let outside = 0;
    for (let i = 0; i < g.length; i++) {
      const x = i % m.width!, y = Math.floor(i / m.width!);
      if (x >= 100 && x < 150 && y >= 100 && y < 150) continue;
      for (let k = 0; k < 3; k++) outside += +(out.data[3 * i + k] !== g[i]);
    }
    assert.equal(outside, 0);
  });

  test('an image larger than the working size is inpainted reduced and pasted back at full resolution; known pixels exact', async () => {
    const big = await sharp(photo).resize(1280, 852).png().toBuffer();
    const rect: [number, number, number, number, number] = [500, 300, 160, 120, 255];
    const res = await inpaint({ image: { data: big }, mask: { data: await maskPng(1280, 852, [rect]) } });
    assert.equal(res.statusCode, 200, res.body);
    const ws = workingSize(1280, 852, side);
    assert.ok(ws.width < 1280);
    assert.equal(res.headers['x-working-size'], `${ws.width}x${ws.height}`);
    const out = await raw(res.rawPayload);
    assert.deepEqual([out.info.width, out.info.height], [1280, 852]);
    const inHole = (i: number) => { const x = i % 1280, y = Math.floor(i / 1280); return x >= 500 && x < 660 && y >= 300 && y < 420; };
    const d = diffCounts((await raw(big)).data, out.data, inHole);
    assert.equal(d.outside, 0);
    assert.ok(d.inside > 0.5 * 160 * 120);
  });

  test('an empty mask returns the input pixels unchanged', async () => {
    const res = await inpaint({ image: { data: photo }, mask: { data: await maskPng(W, H, []) } }, { output_format: 'png' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['x-hole-fraction'], '0.0000');
    assert.ok((await raw(res.rawPayload)).data.equals((await raw(photo)).data));
  });

  test('output_format jpeg and webp give those formats at the input size', async () => {
    const mask = await maskPng(W, H, [[100, 80, 50, 40, 255]]);
    for (const [format, type] of [['jpeg', 'image/jpeg'], ['webp', 'image/webp']] as const) {
      const res = await inpaint({ image: { data: photo }, mask: { data: mask } }, { output_format: format });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], type);
      const m = await sharp(res.rawPayload).metadata();
      assert.deepEqual([m.format, m.width, m.height], [format, W, H]);
    }
  });

  test('without output_format the reply is in the input\'s format (JPEG, WebP; PNG for the rest), on every image route', async () => {
    const small = sharp(photo).resize(96, 64);
    const inputs = { jpeg: await small.clone().jpeg().toBuffer(), png: await small.clone().png().toBuffer(), webp: await small.clone().webp().toBuffer(), tiff: await small.clone().tiff().toBuffer(), gif: await small.clone().gif().toBuffer() };
    const expected: Record<keyof typeof inputs, string> = { jpeg: 'jpeg', png: 'png', webp: 'webp', tiff: 'png', gif: 'png' };
    const mask = await maskPng(96, 64, [[30, 20, 20, 16, 255]]);
    for (const [kind, data] of Object.entries(inputs) as [keyof typeof inputs, Buffer][]) {
      for (const [url, files] of [['/v1/inpaint', { image: { data }, mask: { data: mask } }], ['/v1/translate', { image: { data } }], ['/v1/upscale', { image: { data } }]] as const) {
        const res = await app.inject({ method: 'POST', url, ...multipart(files) });
        assert.equal(res.statusCode, 200, `${url} ${kind}: ${res.body}`);
        assert.equal(res.headers['content-type'], `image/${expected[kind]}`, `${url} ${kind}`);
        assert.equal((await sharp(res.rawPayload).metadata()).format, expected[kind], `${url} ${kind}`);
      }
    }
    // output_format wins over the input's format
    const asked = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: inputs.jpeg } }, { output_format: 'png' }) });
    assert.equal(asked.headers['content-type'], 'image/png');
  });

  test('each bad input gets its problem+json status, and the server keeps serving', async () => {
    const mask = await maskPng(W, H, [[100, 80, 50, 40, 255]]);
    assertProblem(await inpaint({ image: { data: photo }, mask: { data: await maskPng(W, H, [], 255) } }), 422, 'mask-covers-image');
    const mismatch = assertProblem(await inpaint({ image: { data: photo }, mask: { data: await maskPng(W - 1, H, []) } }), 422, 'mask-size-mismatch');
    assert.deepEqual(mismatch.mask, { width: W - 1, height: H });
    assertProblem(await inpaint({ image: { data: photo } }), 400, 'missing-mask');
    assertProblem(await inpaint({ mask: { data: mask } }), 400, 'missing-image');
    assertProblem(await inpaint({ image: { data: photo }, mask: { data: Buffer.from('not an image at all') } }), 415);
    assertProblem(await inpaint({ image: { data: Buffer.from('GIF89a garbage') }, mask: { data: mask } }), 415);
    assertProblem(await inpaint({ image: { data: photo }, mask: { data: mask } }, { model: 'colorize-pono' }), 422, 'wrong-task');
    assertProblem(await inpaint({ image: { data: photo }, mask: { data: mask } }, { model: 'nope' }), 404);
    assertProblem(await inpaint({ image: { data: photo }, mask: { data: mask } }, { output_format: 'bmp' }), 422);
    assertProblem(await inpaint({ image: { data: photo }, mask: { data: mask }, extra: { data: mask } }), 422);
    const huge = await sharp({ create: { width: 1500, height: 1000, channels: 3, background: '#808080' } }).png().toBuffer();
    assertProblem(await inpaint({ image: { data: huge }, mask: { data: mask } }), 413);
    assertProblem(await app.inject({ method: 'POST', url: '/v1/inpaint', payload: { image: 'x' } }), 415);
    // and the translate route refuses the inpainter
    const t = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: photo } }, { model: 'inpaint-an' }) });
    assertProblem(t, 422, 'wrong-task');
    const ok = await inpaint({ image: { data: photo }, mask: { data: mask } });
    assert.equal(ok.statusCode, 200);
  });
});

describe('recycled input buffers (issue 32)', () => {
  test('a 512² input reuses the buffers an earlier pass gave back, and nothing of that pass leaks into the next', async () => {
    const a = await sharp(photo).resize(512, 512, { fit: 'fill' }).png().toBuffer();
    const b = await sharp(photo).resize(512, 512, { fit: 'fill' }).flop().negate().png().toBuffer();
    const mask = await maskPng(512, 512, [[200, 180, 90, 70, 255]]);
    const run = async (img: Buffer) => {
      const res = await inpaint({ image: { data: img, type: 'image/png' }, mask: { data: mask, type: 'image/png' } });
      assert.equal(res.statusCode, 200, res.body);
      return res.rawPayload;
    };
    const first = await run(a);
    const reusedBefore = tensorBuffers.stats.reused;
    await run(b);
    const again = await run(a);
    assert.ok(tensorBuffers.stats.reused >= reusedBefore + 4, `reused ${tensorBuffers.stats.reused - reusedBefore} buffers (image + mask, twice)`);
    assert.ok(first.equals(again), 'the same request after another one gives the same bytes');
  });
});
