/**
 * INT8 variants (PRECISION, models/NAME/model.int8.onnx, trainer/int8.py): with PRECISION=int8 the upscaler, the
 * automatic colorizer and the inpainter are served from their int8 graphs (X-Model `+int8`, /v1/models says so),
 * their outputs stay within a few grey levels of the fp32 graphs' on a real photo (while differing: the int8 graph
 * really ran), pixels outside an inpainting mask stay exact; PRECISION=fp32 and models without a variant serve
 * fp32; `auto` picks int8 only on a VNNI CPU with the variant within bounds; a tampered int8 file fails its model.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, maskPng, multipart, raw, repoRoot } from './helper.js';
import { choosePrecision } from '../src/models/repository.js';
import { loadConfig, ConfigError } from '../src/config.js';
import type { Manifest } from '../src/models/manifest.js';

const MODELS = 'upscale-pono,colorize-pono-auto,inpaint-an';
let fp32: FastifyInstance;
let int8: FastifyInstance;
let photo: Buffer;
before(async () => {
  fp32 = await buildReadyApp({ PRECISION: 'fp32', MODELS });
  int8 = await buildReadyApp({ PRECISION: 'int8', MODELS });
  photo = await sharp(await colourPhoto()).resize(96, 64).png().toBuffer();
});
after(async () => { await fp32.close(); await int8.close(); });

/** Mean absolute difference (grey levels) and the largest one of two same-size decoded images. */
async function diff(a: Buffer, b: Buffer): Promise<{ mean: number; max: number }> {
  const [ra, rb] = [await raw(a), await raw(b)];
  assert.equal(ra.data.length, rb.data.length);
  let s = 0, m = 0;
  for (let i = 0; i < ra.data.length; i++) { const d = Math.abs(ra.data[i]! - rb.data[i]!); s += d; m = Math.max(m, d); }
  return { mean: s / ra.data.length, max: m };
}

describe('INT8 variants', () => {
  for (const [route, model, fields] of [['/v1/upscale', 'upscale-pono', {}], ['/v1/translate', 'colorize-pono-auto', { model: 'colorize-pono-auto' }]] as const) {
    test(`${route}: PRECISION=int8 serves ${model}'s int8 graph, close to fp32`, async () => {
      const image = route === '/v1/translate' ? await sharp(photo).grayscale().png().toBuffer() : photo;
      const send = (a: FastifyInstance) => a.inject({ method: 'POST', url: route, ...multipart({ image: { data: image, type: 'image/png' } }, { ...fields, output_format: 'png' }) });
      const [a, b] = [await send(fp32), await send(int8)];
      assert.equal(a.statusCode, 200, a.body);
      assert.equal(b.statusCode, 200, b.body);
      assert.match(String(a.headers['x-model']), new RegExp(`^${model}@[^+]+$`));
      assert.match(String(b.headers['x-model']), new RegExp(`^${model}@.+\\+int8$`));
      const d = await diff(a.rawPayload, b.rawPayload);
      assert.ok(d.mean > 0, 'the int8 graph ran (its output differs)');
      assert.ok(d.mean < 2, `mean difference ${d.mean.toFixed(2)} grey levels`);
    });
  }

  test('inpaint: the int8 graph keeps every pixel outside the mask exact', async () => {
    const { info } = await raw(photo);
    const mask = await maskPng(info.width, info.height, [[30, 20, 30, 20, 255]]);
    const r = await int8.inject({ method: 'POST', url: '/v1/inpaint', ...multipart({ image: { data: photo, type: 'image/png' }, mask: { data: mask, type: 'image/png' } }, { output_format: 'png' }) });
    assert.equal(r.statusCode, 200, r.body);
    assert.match(String(r.headers['x-model']), /^inpaint-an@.+\+int8$/);
    const [out, inp, m] = [await raw(r.rawPayload), await raw(photo), await raw(mask)];
    const c = out.info.channels;
    for (let p = 0; p < info.width * info.height; p++) {
      if (m.data[p * m.info.channels]! === 0) for (let k = 0; k < 3; k++) assert.equal(out.data[p * c + k], inp.data[p * inp.info.channels + k]);
    }
  });

  test('/v1/models: the precision served and the variants shipped', async () => {
    const list = (await int8.inject({ url: '/v1/models' })).json().models as { name: string; precision: string; variants: { precision: string; within_bounds?: boolean }[] }[];
    const up = list.find((m) => m.name === 'upscale-pono')!;
    assert.equal(up.precision, 'int8');
    assert.deepEqual(up.variants.map((v) => v.precision), ['fp32', 'int8']);
    const gen = list.find((m) => m.name === 'fashion-an')!;
    assert.equal(gen.precision, 'fp32'); // no int8 variant: fp32 whatever PRECISION says
    assert.deepEqual(gen.variants.map((v) => v.precision), ['fp32']);
    const f = (await fp32.inject({ url: '/v1/models' })).json().models as { name: string; precision: string }[];
    assert.equal(f.find((m) => m.name === 'upscale-pono')!.precision, 'fp32');
  });

  test('choosePrecision: auto = int8 only on the CPU provider of a VNNI CPU, within bounds', () => {
    const m = (within?: boolean) => ({ variants: within === undefined ? undefined : { int8: { file: 'model.int8.onnx', sha256: '0'.repeat(64), within_bounds: within, calibration: {}, quality: {} } } }) as unknown as Manifest;
    assert.equal(choosePrecision(m(true), 'auto', true, true), 'int8');
    assert.equal(choosePrecision(m(true), 'auto', true, false), 'fp32');
    assert.equal(choosePrecision(m(true), 'auto', false, true), 'fp32');
    assert.equal(choosePrecision(m(false), 'auto', true, true), 'fp32');
    assert.equal(choosePrecision(m(false), 'int8', true, false), 'int8');
    assert.equal(choosePrecision(m(true), 'fp32', true, true), 'fp32');
    assert.equal(choosePrecision(m(), 'int8', true, true), 'fp32');
    assert.throws(() => loadConfig({ PRECISION: 'int4' }), (e: unknown) => e instanceof ConfigError && /PRECISION/.test((e as Error).message));
  });

  test('a tampered int8 file fails its model (sha256), the fp32 one still serves', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'int8-'));
    try {
      cpSync(path.join(repoRoot, 'models', 'upscale-pono'), path.join(dir, 'upscale-pono'), { recursive: true });
      writeFileSync(path.join(dir, 'upscale-pono', 'model.int8.onnx'), 'not the graph');
      for (const [precision, state] of [['int8', 'failed'], ['fp32', 'ready']]) {
        const app = await buildReadyApp({ MODELS_DIR: dir, PRECISION: precision! });
        try {
          const m = (await app.inject({ url: '/v1/models' })).json().models[0];
          assert.equal(m.state, state, precision);
          if (state === 'failed') assert.match(m.error, /sha256 mismatch for model\.int8\.onnx/);
        } finally {
          await app.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
