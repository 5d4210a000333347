/**
 * Model listing, health/readiness, OpenAPI and docs, and one request over a real HTTP listen.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, cp, writeFile, readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { BUNDLED_DEFAULTS } from '../src/routes/schemas.js';
import { buildReadyApp, colourPhoto, grayPhoto, maskPng, multipart, repoRoot } from './helper.js';

let app: FastifyInstance;
before(async () => { app = await buildReadyApp(); });
after(async () => app.close());

describe('models and health', () => {
  test('GET /v1/models lists the bundled colorizer, ready, as the default translator', async () => {
    const res = await app.inject('/v1/models');
    assert.equal(res.statusCode, 200);
    const m = res.json().models.find((x: { name: string }) => x.name === 'colorize-pono');
    assert.ok(m);
    assert.equal(m.task, 'translate');
    assert.equal(m.state, 'ready');
    assert.equal(m.default, true);
    assert.deepEqual(m.inputs.map((i: { name: string }) => i.name), ['gray', 'hints'], 'the default colorizer takes colour hints');
    assert.equal(m.inputs[0].size_multiple, 16);
    for (const name of ['colorize-pono-l1', 'colorize-pono-auto', 'colorize-hints']) {
      const old = res.json().models.find((x: { name: string }) => x.name === name);
      assert.equal(old.task, 'translate', name);
      assert.equal(old.default, false, `${name} stays installed but is not the default`);
    }
  });

  test('GET /v1/models/{name} gives the manifest without filesystem paths; unknown → 404', async () => {
    const res = await app.inject('/v1/models/colorize-pono');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.match(body.onnx.sha256, /^[0-9a-f]{64}$/);
    assert.ok(body.metrics);
    assert.ok(!res.body.includes(path.join(repoRoot, 'models')), 'no absolute model path leaks');
    const missing = await app.inject('/v1/models/nope');
    assert.equal(missing.statusCode, 404);
    assert.match(String(missing.headers['content-type']), /problem\+json/);
  });

  test('/healthz is 200; /readyz is 200 once loaded', async () => {
    assert.equal((await app.inject('/healthz')).statusCode, 200);
    const ready = await app.inject('/readyz');
    assert.equal(ready.statusCode, 200);
    // every bundled model (each folder of models/) is listed: each task's default loaded and ready, the others
    // available (opened on first use; MODELS, test/lazy-models.test.ts)
    const bundled = (await readdir(path.join(repoRoot, 'models'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    const isDefault = async (n: string) => JSON.parse(await readFile(path.join(repoRoot, 'models', n, 'manifest.json'), 'utf8')).serving.default === true;
    const expected = Object.fromEntries(await Promise.all(bundled.map(async (n) => [n, (await isDefault(n)) ? 'ready' : 'available'])));
    assert.deepEqual(ready.json().models, expected);
    assert.deepEqual(Object.values(BUNDLED_DEFAULTS).map((n) => expected[n]), ['ready', 'ready', 'ready', 'ready']);
    assert.ok(bundled.includes('colorize-pono') && bundled.includes('inpaint-an') && bundled.includes('fashion-an'));
  });

  test('/readyz is 503 before loading, and a model whose sha256 does not match is failed, not served', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-models-'));
    await cp(path.join(repoRoot, 'models', 'colorize-pono'), path.join(dir, 'colorize-pono'), { recursive: true });
    const mf = path.join(dir, 'colorize-pono', 'manifest.json');
    const manifest = JSON.parse(await readFile(mf, 'utf8'));
    manifest.onnx.sha256 = '0'.repeat(64);
    await writeFile(mf, JSON.stringify(manifest));
    const broken = await buildApp(loadConfig({ MODELS_DIR: dir }), false);
    try {
      assert.equal((await broken.inject('/readyz')).statusCode, 503);
      await broken.ready();
      await broken.models.load();
      const r = await broken.inject('/readyz');
      assert.equal(r.statusCode, 503);
      assert.deepEqual(r.json().models, { 'colorize-pono': 'failed' });
      const { payload, headers } = multipart({ image: { data: await grayPhoto() } });
      const t = await broken.inject({ method: 'POST', url: '/v1/translate', payload, headers });
      assert.equal(t.statusCode, 503);
      assert.match(t.json().detail, /sha256 mismatch/);
    } finally {
      await broken.close();
    }
  });

  test('OpenAPI document and docs UI', async () => {
    const res = await app.inject('/openapi.json');
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.match(doc.openapi, /^3\./);
    assert.ok(doc.paths['/v1/translate'].post);
    assert.ok(doc.paths['/v1/models/{name}'].get);
    const docs = await app.inject('/docs/');
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });

  test('the OpenAPI document lists every route and describes every task', async () => {
    const doc = (await app.inject('/openapi.json')).json();
    for (const [p, method] of [['/v2/models/{name}/infer', 'post'], ['/v2/health/ready', 'get'], ['/v2/models/{name}', 'get'],
      ['/metrics', 'get'], ['/openapi.json', 'get'], ['/v1/generate', 'post'], ['/v1/inpaint', 'post'], ['/v1/upscale', 'post'], ['/v1/explain', 'post']] as const) {
      assert.ok(doc.paths[p]?.[method], `${method.toUpperCase()} ${p} missing from /openapi.json`);
    }
    assert.match(doc.info.description, /generator/);
  });

  test('the model examples in the OpenAPI document are the bundled defaults', () => {
    for (const [task, name] of Object.entries(BUNDLED_DEFAULTS)) {
      assert.equal(app.models.defaultFor(task as keyof typeof BUNDLED_DEFAULTS)?.name, name);
    }
  });

  test('Swagger UI "Try it out" with the document\'s examples succeeds; an empty model field means the default', async () => {
    const doc = (await app.inject('/openapi.json')).json();
    const example = (p: string) => doc.paths[p].post.requestBody.content['multipart/form-data'].schema.properties.model.examples[0];
    const photo = await colourPhoto();
    for (const model of [example('/v1/translate'), '']) {
      const { payload, headers } = multipart({ image: { data: photo } }, { model });
      const r = await app.inject({ method: 'POST', url: '/v1/translate', payload, headers });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['x-model']!.toString().split('@')[0], BUNDLED_DEFAULTS.translate);
    }
    const meta = await sharp(photo).metadata();
    const mask = await maskPng(meta.width!, meta.height!, [[10, 10, 40, 30, 255]]);
    for (const model of [example('/v1/inpaint'), '']) {
      const { payload, headers } = multipart({ image: { data: photo }, mask: { data: mask } }, { model });
      const r = await app.inject({ method: 'POST', url: '/v1/inpaint', payload, headers });
      assert.equal(r.statusCode, 200, r.body);
    }
    const json = doc.paths['/v1/generate'].post.requestBody.content['application/json'];
    const body = json.example; // @fastify/swagger moves the body schema's `examples` to the media type, where Swagger UI reads it
    const g = await app.inject({ method: 'POST', url: '/v1/generate', payload: { ...body, model: json.schema.properties.model.examples[0] } });
    assert.equal(g.statusCode, 200, g.body);
    assert.equal(g.headers['x-seed'], String(body.seed));
    const wrong = multipart({ image: { data: photo } }, { model: 'inpaint-an' });
    const w = await app.inject({ method: 'POST', url: '/v1/translate', ...wrong });
    assert.equal(w.statusCode, 422);
    assert.match(w.json().detail, /is an inpaint model, not a translate model/);
  });

  test('two models claiming serving.default for one task: the repository refuses to load, naming both', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-models-'));
    for (const name of ['colorize-a', 'colorize-b']) {
      await cp(path.join(repoRoot, 'models', 'colorize-pono'), path.join(dir, name), { recursive: true });
      const mf = path.join(dir, name, 'manifest.json');
      await writeFile(mf, JSON.stringify({ ...JSON.parse(await readFile(mf, 'utf8')), name }));
    }
    const two = await buildApp(loadConfig({ MODELS_DIR: dir }), false);
    try {
      await two.ready();
      await assert.rejects(two.models.load(), /colorize-a and colorize-b both set serving.default for the translate task/);
    } finally {
      await two.close();
    }
  });
});

describe('real HTTP', () => {
  test('listen on a port and colorize with fetch + FormData', async () => {
    const server = await buildReadyApp();
    try {
      const url = await server.listen({ port: 0, host: '127.0.0.1' });
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(await grayPhoto())], { type: 'image/png' }), 'chelsea.png');
      form.append('output_format', 'webp');
      const res = await fetch(`${url}/v1/translate`, { method: 'POST', body: form });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/webp');
      assert.match(res.headers.get('x-model') ?? '', /^colorize-pono@/);
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      assert.deepEqual([meta.width, meta.height], [451, 300]);
      const bad = await fetch(`${url}/v1/translate`, { method: 'POST', body: new FormData() });
      assert.equal(bad.status, 400);
      assert.match(bad.headers.get('content-type') ?? '', /problem\+json/);
    } finally {
      await server.close();
    }
  });
});
