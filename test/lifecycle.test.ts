/**
 * Security and model lifecycle: bearer tokens (API_KEYS) on /v1 (health, docs open; admin always
 * needs a token), and reload under load: a new version of the colorizer is put in place and reloaded
 * through the admin route while requests run, and not one request fails; a corrupt new file keeps the
 * old version serving.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, grayPhoto, multipart, repoRoot } from './helper.js';

const apps: FastifyInstance[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function colorizerDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-life-'));
  dirs.push(dir);
  await cp(path.join(repoRoot, 'models', 'colorize-pono-auto'), path.join(dir, 'colorize-pono-auto'), { recursive: true });
  return dir;
}

describe('authentication', () => {
  test('API_KEYS: /v1 needs a valid bearer token; health, docs and metrics stay open', async () => {
    const app = await buildReadyApp({ MODELS_DIR: await colorizerDir(), API_KEYS: 'alpha-token, beta-token' });
    apps.push(app);
    const none = await app.inject('/v1/models');
    assert.equal(none.statusCode, 401);
    assert.match(String(none.headers['content-type']), /problem\+json/);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    assert.equal((await app.inject({ url: '/v1/models', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
    assert.equal((await app.inject({ url: '/v1/models', headers: { authorization: 'Basic YWxwaGE=' } })).statusCode, 401);
    assert.equal((await app.inject({ url: '/v1/models', headers: { authorization: 'Bearer beta-token' } })).statusCode, 200);
    const photo = await grayPhoto();
    assert.equal((await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: photo } }) })).statusCode, 401);
    const mp = multipart({ image: { data: photo } });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/translate', payload: mp.payload, headers: { ...mp.headers, authorization: 'Bearer alpha-token' } })).statusCode, 200);
    for (const open of ['/healthz', '/readyz', '/openapi.json', '/metrics']) assert.equal((await app.inject(open)).statusCode, 200, open);
  });

  test('without API_KEYS the API is open but the admin reload route refuses (401)', async () => {
    const app = await buildReadyApp({ MODELS_DIR: await colorizerDir() });
    apps.push(app);
    assert.equal((await app.inject('/v1/models')).statusCode, 200);
    const r = await app.inject({ method: 'POST', url: '/v1/models/colorize-pono-auto/reload' });
    assert.equal(r.statusCode, 401);
    assert.match(r.json().detail, /API_KEYS/);
  });
});

describe('reload', () => {
  test('reload under load: a new version takes over and no request fails; a corrupt file keeps the old one', async () => {
    const dir = await colorizerDir();
    const app = await buildReadyApp({ MODELS_DIR: dir, API_KEYS: 'admin-token', WORKERS: '1' });
    apps.push(app);
    const auth = { authorization: 'Bearer admin-token' };
    const photo = await grayPhoto();
    const translate = () => { const mp = multipart({ image: { data: photo } }); return app.inject({ method: 'POST', url: '/v1/translate', payload: mp.payload, headers: { ...mp.headers, ...auth } }); };
    // the "new version": same weights, new version string in the manifest
    const mf = path.join(dir, 'colorize-pono-auto', 'manifest.json');
    const manifest = JSON.parse(await readFile(mf, 'utf8'));
    const oldVersion = manifest.version;
    manifest.version = `${oldVersion}-reloaded`;
    await writeFile(mf, JSON.stringify(manifest));

    let stop = false;
    const statuses: number[] = [];
    const versions = new Set<string>();
    const load = (async () => {
      while (!stop) {
        const batch = await Promise.all([translate(), translate()]);
        for (const r of batch) { statuses.push(r.statusCode); versions.add(String(r.headers['x-model'])); }
      }
    })();
    // progress-based waits (not fixed sleeps): requests are in flight before, during and after the reload
    const until = async (cond: () => boolean) => { while (!cond()) await new Promise((r) => setTimeout(r, 20)); };
    await until(() => statuses.length >= 2);
    const reload = await app.inject({ method: 'POST', url: '/v1/models/colorize-pono-auto/reload', headers: auth });
    assert.equal(reload.statusCode, 200, reload.body);
    assert.deepEqual({ ...(reload.json() as object), load_ms: 0 }, { name: 'colorize-pono-auto', version: `${oldVersion}-reloaded`, previous: oldVersion, load_ms: 0 });
    const done = statuses.length;
    await until(() => statuses.length >= done + 2);
    stop = true;
    await load;
    assert.ok(statuses.length >= 4);
    assert.deepEqual([...new Set(statuses)], [200], `statuses ${statuses}`);
    assert.ok(versions.has(`colorize-pono-auto@${oldVersion}-reloaded`));
    assert.equal(String((await translate()).headers['x-model']), `colorize-pono-auto@${oldVersion}-reloaded`);

    // a corrupt new file: reload refused (422), the current version keeps serving
    await writeFile(path.join(dir, 'colorize-pono-auto', 'model.onnx'), Buffer.from('corrupt'));
    const bad = await app.inject({ method: 'POST', url: '/v1/models/colorize-pono-auto/reload', headers: auth });
    assert.equal(bad.statusCode, 422);
    assert.match(bad.json().detail, /sha256 mismatch/);
    const after = await translate();
    assert.equal(after.statusCode, 200);
    assert.equal(String(after.headers['x-model']), `colorize-pono-auto@${oldVersion}-reloaded`);
    assert.equal((await app.inject('/readyz')).statusCode, 200);
  });
});
