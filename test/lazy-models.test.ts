/**
 * Which models load at start (issue 32, footprint): each task's default always, those in `MODELS` (`all` =
 * every one); the others are `available` and open on their first request — through the task routes, KServe
 * v2 and explain — with concurrent first requests sharing one load. Readiness does not wait for them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildReadyApp, colourPhoto, grayPhoto, maskPng, multipart, repoRoot } from './helper.js';
import { ConfigError, loadConfig } from '../src/config.js';

const DEFAULTS = ['colorize-pono', 'fashion-an', 'inpaint-an', 'upscale-pono'];

async function states(app: FastifyInstance): Promise<Record<string, string>> {
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().models;
}

describe('models loaded at start (MODELS) and on first use', () => {
  let app: FastifyInstance;
  before(async () => { app = await buildReadyApp(); });
  after(async () => app.close());

  test('by default only each task\'s default model is loaded; the others are listed as available', async () => {
    const s = await states(app);
    for (const name of DEFAULTS) assert.equal(s[name], 'ready', name);
    const others = Object.keys(s).filter((n) => !DEFAULTS.includes(n));
    assert.ok(others.length >= 3, `non-default models: ${others.join(', ')}`);
    for (const name of others) assert.equal(s[name], 'available', name);
    const list = (await app.inject({ method: 'GET', url: '/v1/models' })).json();
    const entry = list.models.find((m: { name: string }) => m.name === 'inpaint-an-smooth');
    assert.equal(entry.state, 'available');
    // KServe: an unloaded model is not ready (it would be after its first request)
    assert.equal((await app.inject({ method: 'GET', url: '/v2/models/fashion-noan/ready' })).statusCode, 503);
  });

  test('the first request of an available model loads it (concurrent ones share the load) and is answered', async () => {
    const body = { class: 'Bag', seed: 7, count: 2, model: 'fashion-noan' };
    const [a, b] = await Promise.all([1, 2].map(() => app.inject({ method: 'POST', url: '/v1/generate', payload: body })));
    assert.equal(a!.statusCode, 200, a!.body);
    assert.equal(b!.statusCode, 200, b!.body);
    assert.match(String(a!.headers['x-model']), /^fashion-noan@/);
    assert.ok(a!.rawPayload.equals(b!.rawPayload), 'same seed, same bytes');
    assert.equal((await states(app))['fashion-noan'], 'ready');
    assert.equal((await app.inject({ method: 'GET', url: '/v2/models/fashion-noan/ready' })).statusCode, 200);

    const photo = await colourPhoto();
    const res = await app.inject({ method: 'POST', url: '/v1/inpaint', ...multipart({ image: { data: photo }, mask: { data: await maskPng(320, 213, [[40, 40, 30, 30, 255]]) } }, { model: 'inpaint-an-smooth' }) });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['x-model']), /^inpaint-an-smooth@1\.1\.0$/);
  });

  test('KServe v2 infer opens an available model too', async () => {
    const s = await states(app);
    assert.equal(s['colorize-pono-l1'], 'available');
    const data = Array.from({ length: 16 * 16 }, (_, i) => i);
    const res = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono-l1/infer', payload: { inputs: [{ name: 'gray', shape: [1, 1, 16, 16], datatype: 'UINT8', data }] } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await states(app))['colorize-pono-l1'], 'ready');
  });
});

describe('MODELS', () => {
  test('`all` loads every model at start; a list adds those models to the defaults', async () => {
    const all = await buildReadyApp({ MODELS: 'all' });
    try {
      for (const [name, state] of Object.entries(await states(all))) assert.equal(state, 'ready', name);
    } finally { await all.close(); }
    const some = await buildReadyApp({ MODELS: 'fashion-noan, inpaint-an-smooth' });
    try {
      const s = await states(some);
      for (const name of [...DEFAULTS, 'fashion-noan', 'inpaint-an-smooth']) assert.equal(s[name], 'ready', name);
      assert.equal(s['colorize-pono-l1'], 'available');
    } finally { await some.close(); }
  });

  test('a non-default model that fails to open on first use: 503 naming the file, then failed; readiness unaffected', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-lazy-'));
    try {
      for (const m of ['colorize-pono', 'colorize-pono-l1']) await cp(path.join(repoRoot, 'models', m), path.join(dir, m), { recursive: true });
      await rm(path.join(dir, 'colorize-pono-l1', 'model.onnx'));
      const app = await buildReadyApp({ MODELS_DIR: dir });
      try {
        assert.equal((await states(app))['colorize-pono-l1'], 'available');
        const res = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: await grayPhoto() } }, { model: 'colorize-pono-l1' }) });
        assert.equal(res.statusCode, 503, res.body);
        assert.match(res.json().detail, /failed to load: .*model\.onnx/);
        assert.ok(!res.body.includes(dir), 'no filesystem path in the answer');
        assert.equal((await states(app))['colorize-pono-l1'], 'failed');
        const ok = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: await grayPhoto() } }) });
        assert.equal(ok.statusCode, 200, ok.body);
      } finally { await app.close(); }
    } finally { await rm(dir, { recursive: true, force: true }); }
  });

  test('a malformed MODELS value is a configuration error naming the variable', () => {
    assert.throws(() => loadConfig({ MODELS: 'fashion-an,../x' }), (err: unknown) => err instanceof ConfigError && /MODELS=/.test(err.message));
    assert.deepEqual(loadConfig({ MODELS: ' a , b ' }).preloadModels, ['a', 'b']);
    assert.equal(loadConfig({ MODELS: 'all' }).preloadModels, 'all');
    assert.deepEqual(loadConfig({}).preloadModels, []);
  });
});
