/**
 * Issue 28's medium and low findings, each against the real app: readiness means the default model of
 * every task (a failed extra model does not keep a replica out of rotation), public answers carry no
 * filesystem paths, `/%zz` is a problem+json 400, `HEAD /v1/generate` runs nothing (405), JSON bodies are
 * not type-coerced (`seed: null | "0x10" | true | "7"` → 422), and security headers are sent on the page,
 * the docs and the API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, repoRoot } from './helper.js';

let app: FastifyInstance;
let broken: FastifyInstance;
let dir: string;
before(async () => {
  app = await buildReadyApp();
  // a model repository whose non-default translator lost its ONNX file
  dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-hard-'));
  for (const m of ['colorize-pono', 'colorize-pono-l1', 'fashion-an']) await cp(path.join(repoRoot, 'models', m), path.join(dir, m), { recursive: true });
  await rm(path.join(dir, 'colorize-pono-l1', 'model.onnx'));
  broken = await buildReadyApp({ MODELS_DIR: dir, MODELS: 'all' }); // the broken non-default one is opened at start
});
after(async () => {
  await app?.close();
  await broken?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every string in a JSON value. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => strings(x, out));
  return out;
}
const looksLikePath = (s: string) => /(^|[\s'"(])\/(root|home|tmp|usr|var|srv|work|opt)\//.test(s) || s.includes(dir);

describe('readiness and public answers', () => {
  test('a failed non-default model: /readyz 200, its own readiness 503, the default still serves', async () => {
    assert.equal(broken.models.get('colorize-pono-l1')?.state, 'failed');
    const r = await broken.inject('/readyz');
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().models['colorize-pono-l1'], 'failed');
    assert.equal((await broken.inject('/v2/health/ready')).statusCode, 200);
    assert.equal((await broken.inject('/v2/models/colorize-pono-l1/ready')).statusCode, 503);
    assert.equal((await broken.inject('/v2/models/colorize-pono/ready')).statusCode, 200);
  });

  test('no filesystem paths in /v1/models, a model manifest, or the failed model\'s 503', async () => {
    const list = await broken.inject('/v1/models');
    const leaked = strings(list.json()).filter(looksLikePath);
    assert.deepEqual(leaked, []);
    const failed = list.json().models.find((m: { name: string }) => m.name === 'colorize-pono-l1');
    assert.match(String(failed?.error), /model\.onnx/);
    for (const name of ['colorize-pono', 'fashion-an']) {
      const one = await app.inject(`/v1/models/${name}`);
      assert.equal(one.statusCode, 200);
      assert.deepEqual(strings(one.json()).filter(looksLikePath), [], name);
    }
    const use = await broken.inject({ method: 'POST', url: '/v1/translate', payload: { image: 'AAAA', model: 'colorize-pono-l1' } });
    assert.equal(use.statusCode, 503);
    assert.ok(!looksLikePath(use.body), use.body);
  });
});

describe('low findings', () => {
  test('/%zz is a problem+json 400', async () => {
    const r = await app.inject('/%zz');
    assert.equal(r.statusCode, 400);
    assert.match(String(r.headers['content-type']), /application\/problem\+json/);
  });

  test('HEAD /v1/generate runs no generation (405, at once)', async () => {
    const t0 = performance.now();
    const r = await app.inject({ method: 'HEAD', url: '/v1/generate?class=1&count=64&size=512' });
    assert.equal(r.statusCode, 405);
    assert.match(String(r.headers.allow), /GET/);
    assert.ok(performance.now() - t0 < 1000);
  });

  test('JSON bodies are not coerced: seed null, "0x10", true, "7" → 422; a query string still is', async () => {
    for (const seed of [null, '0x10', true, '7', 1.5]) {
      const r = await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 1, seed } });
      assert.equal(r.statusCode, 422, `seed ${JSON.stringify(seed)} → ${r.statusCode}`);
    }
    assert.equal((await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 1, seed: 7 } })).statusCode, 200);
    const q = await app.inject('/v1/generate?class=1&seed=7');
    assert.equal(q.statusCode, 200);
    assert.equal(q.headers['x-seed'], '7');
  });

  test('security headers on the page, the docs and the API', async () => {
    for (const url of ['/', '/docs/', '/v1/models', '/healthz']) {
      const r = await app.inject(url);
      assert.ok(r.statusCode < 400, `${url} ${r.statusCode}`);
      assert.match(String(r.headers['content-security-policy']), /default-src 'self'/, url);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(r.headers['x-frame-options'], 'DENY', url);
      assert.equal(r.headers['referrer-policy'], 'no-referrer', url);
    }
  });
});

describe('base64 junk', () => {
  test('a 25 MB JSON string of junk is refused from its first bytes (415) before it is decoded', async () => {
    const junk = 'QUJD'.repeat(6_500_000); // "ABC…": valid base64, not an image
    const payload = `{"image":"${junk}"}`;
    const t0 = performance.now();
    const r = await app.inject({ method: 'POST', url: '/v1/translate', payload, headers: { 'content-type': 'application/json' } });
    const ms = performance.now() - t0;
    assert.equal(r.statusCode, 415, r.body.slice(0, 200));
    assert.match(r.json().type, /not-raster$/);
    assert.match(r.json().detail, /`image` does not start like a raster image/);
    console.log(`# 25 MB junk refused in ${Math.round(ms)} ms (most of it is JSON.parse)`);
    // a real image in base64 still works
    const { colourPhoto } = await import('./helper.js');
    const ok = await app.inject({ method: 'POST', url: '/v1/translate', payload: { image: (await colourPhoto()).toString('base64') } });
    assert.equal(ok.statusCode, 200);
  });
});

describe('issue 31 conveniences', () => {
  test('POST /v1/colorize is /v1/translate (same bytes); GET /v1/models/{name} is small, photo lists as counts', async () => {
    const { grayPhoto, multipart } = await import('./helper.js');
    const photo = await grayPhoto();
    const a = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: photo } }) });
    const b = await app.inject({ method: 'POST', url: '/v1/colorize', ...multipart({ image: { data: photo } }) });
    assert.equal(b.statusCode, 200);
    assert.ok(a.rawPayload.equals(b.rawPayload));
    const m = await app.inject('/v1/models/colorize-pono-auto');
    assert.ok(m.body.length < 50_000, `${m.body.length} bytes`);
    assert.ok(m.json().training.data.train_photos.count > 100);
  });
});

describe('raw image bodies', () => {
  test('/v1/translate takes the image as the body (fields in the query); other routes and types say what to send', async () => {
    const { colourPhoto } = await import('./helper.js');
    const jpeg = await colourPhoto();
    const r = await app.inject({ method: 'POST', url: '/v1/translate?output_format=jpeg', payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
    assert.equal(r.statusCode, 200, r.body.slice(0, 200));
    assert.equal(r.headers['content-type'], 'image/jpeg');
    const bad = await app.inject({ method: 'POST', url: '/v1/translate?quality=9', payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
    assert.equal(bad.statusCode, 422);
    const inp = await app.inject({ method: 'POST', url: '/v1/inpaint', payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
    assert.equal(inp.statusCode, 415);
    assert.match(inp.json().detail, /multipart\/form-data files/);
    const text = await app.inject({ method: 'POST', url: '/v1/translate', payload: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.statusCode, 415);
    assert.match(text.json().detail, /image itself as the body/);
  });
});

describe('OpenAPI document (Swagger "Try it out")', () => {
  test('error answers are declared application/problem+json; every path parameter has an example; KServe infer has a runnable example', async () => {
    const doc = (await app.inject('/openapi.json')).json();
    const wrong: string[] = [];
    const noExample: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths) as [string, Record<string, { parameters?: { in: string; name: string; example?: unknown }[]; responses?: Record<string, { content?: Record<string, unknown> }> }>][]) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [code, r] of Object.entries(op.responses ?? {})) if (/^[45]/.test(code) && r.content?.['application/json']) wrong.push(`${method} ${p} ${code}`);
        for (const prm of op.parameters ?? []) if (prm.in === 'path' && prm.example === undefined) noExample.push(`${method} ${p} ${prm.name}`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(noExample, []);
    const infer = doc.paths['/v2/models/{name}/infer'].post;
    const example = infer.requestBody.content['application/json'].example;
    const r = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono/infer', payload: example });
    assert.equal(r.statusCode, 200, r.body.slice(0, 200));
  });
});

describe('Swagger "Try it out" with the pre-filled values', () => {
  test('every operation without a file upload runs with its examples', async () => {
    const doc = (await app.inject('/openapi.json')).json();
    const results: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths) as [string, Record<string, any>][]) {
      for (const [method, op] of Object.entries(ops)) {
        const content = op.requestBody?.content ?? {};
        if (content['multipart/form-data']) continue; // file uploads excepted
        let url = p;
        const query = new URLSearchParams();
        for (const prm of op.parameters ?? []) {
          const ex = prm.example ?? prm.schema?.examples?.[0] ?? prm.schema?.example;
          if (prm.in === 'path') url = url.replace(`{${prm.name}}`, encodeURIComponent(String(ex)));
          else if (prm.in === 'query' && ex !== undefined) query.set(prm.name, String(ex));
        }
        const json = content['application/json'];
        const body = json ? (json.example ?? json.schema?.examples?.[0]) : undefined;
        const r = await app.inject({ method: method.toUpperCase() as 'GET', url: query.size ? `${url}?${query}` : url, ...(body !== undefined ? { payload: body } : {}) });
        // a job id that does not exist is a correct 404; the admin reload needs API_KEYS (401 without)
        const expected = url.startsWith('/v1/jobs/') ? 404 : url.endsWith('/reload') ? 401 : 200;
        if (r.statusCode !== expected) results.push(`${method.toUpperCase()} ${url}?${query} → ${r.statusCode} ${r.body.slice(0, 120)}`);
      }
    }
    assert.deepEqual(results, []);
  });
});

