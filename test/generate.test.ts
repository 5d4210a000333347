/**
 * POST/GET /v1/generate on the real bundled Fashion-MNIST generator: determinism (same seed → same
 * bytes, X-Seed echoed and reusable), grid sizes, JSON layout, the ends of an interpolation equal the
 * two classes' samples for the same seed, batch independence, formats, and each bad input → its
 * problem+json status.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp } from './helper.js';

let app: FastifyInstance;
let classes: string[] = [];
before(async () => {
  app = await buildReadyApp();
  classes = app.models.defaultFor('generate')!.manifest.classes!;
});
after(async () => app.close());

const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/generate', payload });
const get = (query: string) => app.inject({ method: 'GET', url: `/v1/generate?${query}` });

function assertProblem(res: Awaited<ReturnType<typeof post>>, status: number, pattern?: RegExp) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const doc = res.json();
  assert.equal(doc.status, status);
  if (pattern) assert.match(doc.detail, pattern);
  return doc;
}

describe('POST /v1/generate', () => {
  test('the bundled generator has the ten Fashion-MNIST classes', () => {
    assert.equal(classes.length, 10);
    assert.equal(classes[0], 'T-shirt/top');
    assert.equal(classes[9], 'Ankle boot');
  });

  test('same seed → identical bytes, X-Seed echoed; another seed → other bytes', async () => {
    const a = await post({ class: 'Sneaker', seed: 1234, count: 4 });
    const b = await post({ class: 'Sneaker', seed: 1234, count: 4 });
    const c = await post({ class: 'Sneaker', seed: 1235, count: 4 });
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(a.headers['x-seed'], '1234');
    assert.match(String(a.headers['x-model']), /^fashion-an@\d/);
    assert.ok(a.rawPayload.equals(b.rawPayload));
    assert.ok(!a.rawPayload.equals(c.rawPayload));
  });

  test('without a seed, X-Seed gives a uint32 that reproduces the reply', async () => {
    const a = await post({ class: 2 });
    const seed = Number(a.headers['x-seed']);
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff);
    const b = await post({ class: 2, seed });
    assert.ok(a.rawPayload.equals(b.rawPayload));
  });

  test('grid size: ceil(sqrt(count)) columns of 28 px (or `size`) tiles, grayscale PNG', async () => {
    for (const [count, size, w, h] of [[1, undefined, 28, 28], [10, undefined, 112, 84], [10, 64, 256, 192], [64, 32, 256, 256]] as const) {
      const res = await post({ class: 'Bag', seed: 7, count, ...(size ? { size } : {}) });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['content-type'], 'image/png');
      const m = await sharp(res.rawPayload).metadata();
      assert.deepEqual([m.width, m.height, m.channels], [w, h, 1]);
    }
  });

  test('samples look like their class: dark background, brighter object', async () => {
    const res = await post({ class: 'Trouser', seed: 3, count: 16 });
    const { data } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    const corners = [data[0]!, data[27]!];
    const mean = data.reduce((s, v) => s + v, 0) / data.length;
    assert.ok(corners.every((v) => v < 60), `corners ${corners}`);
    assert.ok(mean > 30 && mean < 200, `mean ${mean}`);
  });

  test('class by name (any case), index and numeric string give the same samples', async () => {
    const ref = (await post({ class: 'Coat', seed: 5 })).rawPayload;
    for (const c of ['coat', 4, '4']) assert.ok((await post({ class: c, seed: 5 })).rawPayload.equals(ref), String(c));
  });

  test('the ends of an interpolation equal the two classes\' samples for the same seed', async () => {
    const row = await get('class=Sandal&interpolate_to=Ankle%20boot&steps=6&seed=99&layout=json');
    assert.equal(row.statusCode, 200, row.body);
    const frames: string[] = row.json().images;
    assert.equal(frames.length, 6);
    const a = (await get('class=Sandal&seed=99&layout=json')).json().images[0];
    const b = (await get('class=Ankle%20boot&seed=99&layout=json')).json().images[0];
    assert.equal(frames[0], a);
    assert.equal(frames[5], b);
    assert.notEqual(frames[2], a);
    assert.notEqual(frames[2], b);
    // as a grid: one row of `steps` tiles
    const grid = await get('class=Sandal&interpolate_to=Ankle%20boot&steps=6&seed=99');
    const m = await sharp(grid.rawPayload).metadata();
    assert.deepEqual([m.width, m.height], [6 * 28, 28]);
  });

  test('sample i of a batch equals the same z alone (batch independence): count=5 item 0 = count=1', async () => {
    const many = (await post({ class: 'Dress', seed: 11, count: 5, layout: 'json' })).json();
    const one = (await post({ class: 'Dress', seed: 11, layout: 'json' })).json();
    assert.equal(many.seed, 11);
    assert.equal(many.images.length, 5);
    assert.equal(many.images[0], one.images[0]);
    const tile = await sharp(Buffer.from(many.images[1], 'base64')).metadata();
    assert.deepEqual([tile.format, tile.width, tile.height], ['png', 28, 28]);
  });

  test('GET with a query string equals POST with the same fields', async () => {
    const g = await get('class=7&seed=21&count=3&size=56&output_format=webp');
    const p = await post({ class: 7, seed: 21, count: 3, size: 56, output_format: 'webp' });
    assert.equal(g.headers['content-type'], 'image/webp');
    assert.ok(g.rawPayload.equals(p.rawPayload));
  });

  test('each bad input gets its problem+json status', async () => {
    assertProblem(await post({ class: 'Hat' }), 422, /unknown class/);
    assertProblem(await post({ class: 10 }), 422, /unknown class/);
    assertProblem(await post({ class: 1, count: 0 }), 422);
    assertProblem(await post({ class: 1, count: 65 }), 422);
    assertProblem(await post({ class: 1, colour: 'red' }), 422, /unknown field `colour`/);
    assertProblem(await get('class=1&colour=red'), 422, /unknown field `colour`/);
    assertProblem(await post({ class: 1, steps: 4 }), 422, /interpolate_to/);
    assertProblem(await post({ class: 1, interpolate_to: 2, count: 3 }), 422, /count/);
    assertProblem(await post({ class: 1, interpolate_to: 'Hat' }), 422, /unknown interpolate_to/);
    assertProblem(await post({ class: 1, interpolate_to: 2, steps: 17 }), 422);
    assertProblem(await post({ class: 1, seed: -1 }), 422);
    assertProblem(await post({ class: 1, seed: 2 ** 32 }), 422);
    assertProblem(await post({ class: 1, size: 513 }), 422);
    assertProblem(await post({ class: 1, layout: 'zip' }), 422);
    assertProblem(await post({ class: 1, output_format: 'gif' }), 422);
    assertProblem(await post({}), 422);
    assertProblem(await post({ class: 1, model: 'colorize-pono' }), 422, /not a generate model/);
    assertProblem(await post({ class: 1, model: 'nope' }), 404);
    assertProblem(await app.inject({ method: 'POST', url: '/v1/generate', payload: '{"class":', headers: { 'content-type': 'application/json' } }), 400);
    assertProblem(await app.inject({ method: 'POST', url: '/v1/generate', payload: '<class>1</class>', headers: { 'content-type': 'application/xml' } }), 415);
    assert.equal((await post({ class: 1, seed: 0 })).statusCode, 200);
  });
});
