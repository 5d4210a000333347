/**
 * The typed client (clients/ts, issue 18): its generated types and OpenAPI copy are up to date with the
 * service's routes, and each method works against the real server on a port (three tasks, the model
 * list, and a problem reply as NormgenError).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { createNormgenClient, NormgenError } from '../clients/ts/src/index.js';
import { CLIENT_DIR, generate } from '../scripts/gen-client.js';
import { buildReadyApp, colourPhoto, grayPhoto, maskPng } from './helper.js';

let app: FastifyInstance;
let base: string;
before(async () => { app = await buildReadyApp(); base = await app.listen({ port: 0, host: '127.0.0.1' }); });
after(async () => app.close());

test('the committed client types and OpenAPI copy match the service (npm run client:gen)', async () => {
  const { openapi, schema } = await generate();
  assert.equal(await readFile(path.join(CLIENT_DIR, 'openapi.json'), 'utf8'), openapi, 'clients/ts/openapi.json is stale: npm run client:gen');
  assert.equal(await readFile(path.join(CLIENT_DIR, 'src', 'schema.ts'), 'utf8'), schema, 'clients/ts/src/schema.ts is stale: npm run client:gen');
});

test('the generated client calls every task and lists the models', async () => {
  const normgen = createNormgenClient({ baseUrl: base });
  const gray = await grayPhoto();
  const colour = await normgen.translate(new Blob([new Uint8Array(gray)], { type: "image/png" }), { output_format: 'webp' });
  const cm = await sharp(Buffer.from(await colour.arrayBuffer())).metadata();
  assert.deepEqual([cm.format, cm.width, cm.height], ['webp', 451, 300]);
  const photo = await colourPhoto();
  const pm = await sharp(photo).metadata();
  const filled = await normgen.inpaint(new Blob([new Uint8Array(photo)]), new Blob([new Uint8Array(await maskPng(pm.width!, pm.height!, [[5, 5, 30, 20, 255]]))]));
  const fm = await sharp(Buffer.from(await filled.arrayBuffer())).metadata();
  assert.deepEqual([fm.width, fm.height], [pm.width, pm.height]);
  const g = await normgen.generate({ class: 'Sneaker', count: 4, seed: 42, size: 32 });
  assert.equal(g.seed, 42);
  assert.match(g.model, /^fashion-an@/);
  assert.deepEqual([(await sharp(Buffer.from(await g.image.arrayBuffer())).metadata()).width], [64]);
  const big = await normgen.upscale(new Blob([new Uint8Array(photo)]), { scale: '2', output_format: 'jpeg' });
  const bm = await sharp(Buffer.from(await big.arrayBuffer())).metadata();
  assert.deepEqual([bm.format, bm.width, bm.height], ['jpeg', 2 * pm.width!, 2 * pm.height!]);
  const seen = await normgen.explain({ model: 'inpaint-an', image: new Blob([new Uint8Array(photo)]), mask: new Blob([new Uint8Array(await maskPng(pm.width!, pm.height!, [[5, 5, 30, 20, 255]]))]) });
  assert.deepEqual(seen.maps.map((m) => m.kind), ['an_layout']);
  const { models } = await normgen.models();
  assert.deepEqual(models.filter((m) => m.default).map((m) => m.task).sort(), ['generate', 'inpaint', 'translate', 'upscale']);
  assert.deepEqual(models.map((m) => m.task).sort(), ['generate', 'generate', 'inpaint', 'inpaint', 'translate', 'translate', 'translate', 'translate', 'upscale']); // + colorize-pono-auto, colorize-pono-l1, colorize-hints, the fashion-noan ablation and inpaint-an-smooth
  await assert.rejects(normgen.generate({ class: 'Hat' }), (err: unknown) => err instanceof NormgenError && err.status === 422 && /unknown class/.test(err.problem.detail ?? ''));
});
