/**
 * What image-API clients expect beyond multipart (issue 18): JSON bodies with base64 / data: URL images,
 * `response_format=b64_json`, CORS (CORS_ORIGINS) and per-key rate limits (RATE_LIMIT_PER_MIN), on the
 * real app and the bundled models.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { buildReadyApp, colourPhoto, grayPhoto, maskPng, multipart } from './helper.js';

const apps: FastifyInstance[] = [];
after(async () => { for (const a of apps) await a.close(); });
const ready = async (env: Record<string, string> = {}) => { const a = await buildReadyApp(env); apps.push(a); return a; };

describe('JSON bodies and response_format', () => {
  let app: FastifyInstance;
  let gray: Buffer;
  let photo: Buffer;
  let mask: Buffer;
  before(async () => {
    app = await ready();
    gray = await grayPhoto();
    photo = await colourPhoto();
    const m = await sharp(photo).metadata();
    mask = await maskPng(m.width!, m.height!, [[20, 15, 50, 30, 255]]);
  });

  test('translate: base64 and data: URL inputs give the multipart reply byte for byte; b64_json decodes to it', async () => {
    const viaMultipart = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray } }) });
    assert.equal(viaMultipart.statusCode, 200);
    for (const image of [gray.toString('base64'), `data:image/png;base64,${gray.toString('base64')}`, gray.toString('base64url')]) {
      const r = await app.inject({ method: 'POST', url: '/v1/translate', payload: { image } });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['content-type'], 'image/png');
      assert.ok(r.rawPayload.equals(viaMultipart.rawPayload));
    }
    const b64 = await app.inject({ method: 'POST', url: '/v1/translate', payload: { image: gray.toString('base64'), response_format: 'b64_json' } });
    assert.equal(b64.statusCode, 200);
    const body = b64.json();
    assert.equal(body.model, viaMultipart.headers['x-model']);
    assert.equal(body.data.length, 1);
    assert.ok(Buffer.from(body.data[0].b64_json, 'base64').equals(viaMultipart.rawPayload));
    assert.deepEqual([body.data[0].width, body.data[0].height], [451, 300]);
    const mp = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray } }, { response_format: 'b64_json' }) });
    assert.equal(mp.json().data[0].b64_json, body.data[0].b64_json); // multipart can ask for JSON too
  });

  test('inpaint: image and mask as base64 give the multipart reply; b64_json works', async () => {
    const viaMultipart = await app.inject({ method: 'POST', url: '/v1/inpaint', ...multipart({ image: { data: photo }, mask: { data: mask } }) });
    assert.equal(viaMultipart.statusCode, 200, viaMultipart.body);
    const r = await app.inject({ method: 'POST', url: '/v1/inpaint', payload: { image: photo.toString('base64'), mask: `data:image/png;base64,${mask.toString('base64')}` } });
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(r.rawPayload.equals(viaMultipart.rawPayload));
    const b = await app.inject({ method: 'POST', url: '/v1/inpaint', payload: { image: photo.toString('base64'), mask: mask.toString('base64'), response_format: 'b64_json', output_format: 'webp' } });
    assert.equal(b.statusCode, 200, b.body);
    assert.equal((await sharp(Buffer.from(b.json().data[0].b64_json, 'base64')).metadata()).format, 'webp');
  });

  test('generate: b64_json wraps the grid\'s bytes; with layout=json it is refused', async () => {
    const q = { class: 'Bag', seed: 5, count: 4, size: 32 };
    const img = await app.inject({ method: 'POST', url: '/v1/generate', payload: q });
    const b = await app.inject({ method: 'POST', url: '/v1/generate', payload: { ...q, response_format: 'b64_json' } });
    assert.equal(b.statusCode, 200, b.body);
    assert.ok(Buffer.from(b.json().data[0].b64_json, 'base64').equals(img.rawPayload));
    assert.deepEqual([b.json().data[0].width, b.json().data[0].height], [64, 64]);
    assert.equal(b.headers['x-seed'], '5');
    const both = await app.inject({ method: 'POST', url: '/v1/generate', payload: { ...q, layout: 'json', response_format: 'b64_json' } });
    assert.equal(both.statusCode, 422);
  });

  test('each bad JSON input gets its status as problem+json, and the server keeps serving', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{}, 400, /`image`.*required/],
      [{ image: 'not base64 at all!' }, 415, /not valid base64/],
      [{ image: 'data:image/png,rawtext' }, 415, /base64 data: URLs/],
      [{ image: Buffer.from('plain text, not an image').toString('base64') }, 415, /./],
      [{ image: 42 }, 422, /base64 string/],
      [{ image: gray.toString('base64'), quality: 90 }, 422, /unknown field `quality`/],
      [{ image: gray.toString('base64'), response_format: 'url' }, 422, /response_format/],
      [[1, 2], 422, /must be an object/],
    ];
    for (const [payload, status, detail] of cases) {
      const r = await app.inject({ method: 'POST', url: '/v1/translate', payload: payload as object });
      assert.equal(r.statusCode, status, `${JSON.stringify(payload).slice(0, 60)} → ${r.body}`);
      assert.match(String(r.headers['content-type']), /application\/problem\+json/);
      assert.match(r.json().detail, detail);
    }
    const text = await app.inject({ method: 'POST', url: '/v1/translate', payload: 'image=abc', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.statusCode, 415);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/translate', payload: { image: gray.toString('base64') } })).statusCode, 200);
  });

  test('size limits: a decoded image over MAX_UPLOAD_BYTES and a JSON body over the route limit are 413', async () => {
    const small = await ready({ MAX_UPLOAD_BYTES: '4096' });
    // starts like a PNG (junk that does not is refused from its first bytes with 415, see hardening.test.ts)
    const big = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(5000, 1)]).toString('base64');
    const r = await small.inject({ method: 'POST', url: '/v1/translate', payload: { image: big } });
    assert.equal(r.statusCode, 413);
    assert.match(r.json().detail, /MAX_UPLOAD_BYTES/);
    const huge = await small.inject({ method: 'POST', url: '/v1/translate', payload: { image: 'A'.repeat(200_000) } });
    assert.equal(huge.statusCode, 413, huge.body);
    assert.match(String(huge.headers['content-type']), /problem\+json/);
  });
});

describe('CORS (CORS_ORIGINS)', () => {
  test('off by default; a listed origin passes preflight and reads the exposed headers; others do not', async () => {
    const plain = await ready();
    const none = await plain.inject({ method: 'OPTIONS', url: '/v1/generate', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    assert.equal(none.headers['access-control-allow-origin'], undefined);
    const app = await ready({ CORS_ORIGINS: 'https://app.example.com, https://other.example.org' });
    const pre = await app.inject({ method: 'OPTIONS', url: '/v1/generate', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' } });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
    const other = await app.inject({ method: 'OPTIONS', url: '/v1/generate', headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const r = await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 1, seed: 1 }, headers: { origin: 'https://app.example.com' } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    const exposed = String(r.headers['access-control-expose-headers']);
    for (const h of ['X-Model', 'X-Seed', 'Retry-After', 'Location']) assert.ok(exposed.includes(h), `${h} exposed`);
  });

  test('a malformed CORS_ORIGINS stops the start with a message', async () => {
    const { loadConfig } = await import('../src/config.js');
    assert.throws(() => loadConfig({ CORS_ORIGINS: 'app.example.com/path' }), /CORS_ORIGINS/);
  });
});

describe('rate limits (RATE_LIMIT_PER_MIN)', () => {
  test('the (N+1)-th request in a minute of one key is 429 problem+json with Retry-After and RateLimit-*; keys and health are separate', async () => {
    const app = await ready({ RATE_LIMIT_PER_MIN: '3', API_KEYS: 'key-a,key-b' });
    const call = (key: string) => app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 0, seed: 1 }, headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 3; i++) {
      const r = await call('key-a');
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['ratelimit-limit'], '3');
      assert.equal(r.headers['ratelimit-remaining'], String(2 - i));
    }
    const limited = await call('key-a');
    assert.equal(limited.statusCode, 429);
    assert.match(String(limited.headers['content-type']), /problem\+json/);
    assert.match(limited.json().detail, /3 requests per minute/);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.ok(limited.headers['ratelimit-reset'] !== undefined);
    assert.equal((await call('key-b')).statusCode, 200, 'another key has its own budget');
    for (let i = 0; i < 5; i++) assert.equal((await app.inject('/healthz')).statusCode, 200);
    assert.equal((await app.inject('/')).statusCode, 200);
  });
});

describe('async jobs (Prefer: respond-async)', () => {
  const poll = async (app: FastifyInstance, id: string, headers: Record<string, string> = {}) => {
    for (let i = 0; i < 600; i++) {
      const r = await app.inject({ url: `/v1/jobs/${id}`, headers });
      if (!['queued', 'running'].includes(r.json().status)) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error('job did not finish');
  };

  test('202 → poll → succeeded with the sync route\'s bytes; a bad input gets its 4xx before any 202', async () => {
    const app = await ready();
    const gray = await grayPhoto();
    const sync = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray } }) });
    const mp = multipart({ image: { data: gray } });
    const accepted = await app.inject({ method: 'POST', url: '/v1/translate', payload: mp.payload, headers: { ...mp.headers, prefer: 'respond-async' } });
    assert.equal(accepted.statusCode, 202, accepted.body);
    const { id, status } = accepted.json();
    assert.ok(['queued', 'running'].includes(status) && /^[\w-]{22}$/.test(id), `id ${id} is 128 random bits`);
    assert.equal(accepted.headers.location, `/v1/jobs/${id}`);
    const done = (await poll(app, id)).json();
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result.model, sync.headers['x-model']);
    assert.ok(Buffer.from(done.result.data[0].b64_json, 'base64').equals(sync.rawPayload));
    assert.deepEqual([done.result.data[0].width, done.result.data[0].height], [451, 300]);
    // generate as JSON, with its seed
    const g = await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 'Bag', seed: 9 }, headers: { prefer: 'respond-async' } });
    assert.equal((await poll(app, g.json().id)).json().result.seed, 9);
    // a bad body is refused before the 202 (issue 28), with the sync route's problem document
    const bad = await app.inject({ method: 'POST', url: '/v1/translate', payload: { image: 'not base64!' }, headers: { prefer: 'respond-async' } });
    assert.equal(bad.statusCode, 415);
    assert.match(String(bad.headers['content-type']), /problem\+json/);
    assert.match(bad.json().detail, /base64/);
    const badGen = await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 'Bag', seed: '7' }, headers: { prefer: 'respond-async' } });
    assert.equal(badGen.statusCode, 422);
    assert.equal((await app.inject('/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA')).statusCode, 404);
  });

  test('Idempotency-Key returns the same job for the same body, 422 for another; a queued job can be canceled', async () => {
    const app = await ready({ JOB_CONCURRENCY: '1' });
    const send = (body: object, key?: string) => app.inject({ method: 'POST', url: '/v1/generate', payload: body, headers: { prefer: 'respond-async', ...(key ? { 'idempotency-key': key } : {}) } });
    const a = await send({ class: 1, seed: 1, count: 64 }, 'k1');
    const again = await send({ class: 1, seed: 1, count: 64 }, 'k1');
    assert.equal(again.json().id, a.json().id);
    assert.equal((await send({ class: 2, seed: 1 }, 'k1')).statusCode, 422);
    const queued = await send({ class: 3, seed: 2, count: 64 });
    const cancel = await app.inject({ method: 'DELETE', url: `/v1/jobs/${queued.json().id}` });
    assert.equal(cancel.statusCode, 200, cancel.body);
    assert.equal(cancel.json().status, 'canceled');
    assert.equal((await app.inject(`/v1/jobs/${queued.json().id}`)).json().status, 'canceled');
    await poll(app, a.json().id);
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/jobs/${a.json().id}` })).statusCode, 409);
  });

  test('each key has its share (429), a store full of active jobs is 503 + Retry-After, finished jobs make room; another key\'s job is 404', async () => {
    const app = await ready({ JOBS_MAX: '4', JOBS_PER_KEY: '2', JOB_CONCURRENCY: '1', API_KEYS: 'alpha,beta,gamma' });
    const send = (key: string, seed = 3) => app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 0, seed, count: 64 }, headers: { prefer: 'respond-async', authorization: `Bearer ${key}` } });
    const first = await send('alpha');
    assert.equal(first.statusCode, 202);
    assert.equal((await send('alpha')).statusCode, 202);
    const quota = await send('alpha');
    assert.equal(quota.statusCode, 429, quota.body);
    assert.match(quota.json().type, /job-quota$/);
    assert.ok(Number(quota.headers['retry-after']) >= 1);
    assert.equal((await send('beta')).statusCode, 202);
    const last = await send('beta');
    assert.equal(last.statusCode, 202);
    const full = await send('gamma');
    assert.equal(full.statusCode, 503);
    assert.ok(Number(full.headers['retry-after']) >= 1);
    assert.match(full.json().detail, /job store is full/);
    const id = first.json().id;
    assert.equal((await app.inject({ url: `/v1/jobs/${id}`, headers: { authorization: 'Bearer beta' } })).statusCode, 404);
    assert.equal((await poll(app, id, { authorization: 'Bearer alpha' })).json().status, 'succeeded');
    assert.equal((await app.inject({ url: `/v1/jobs/${id}` })).statusCode, 401);
    // once they finished, the four finished jobs do not block new ones: the oldest are evicted
    await poll(app, last.json().id, { authorization: 'Bearer beta' });
    assert.equal((await send('gamma', 4)).statusCode, 202);
    assert.equal((await send('gamma', 5)).statusCode, 202);
    assert.ok(app.jobs.evicted >= 2);
    assert.equal((await app.inject({ url: `/v1/jobs/${id}`, headers: { authorization: 'Bearer alpha' } })).statusCode, 404, 'the oldest finished job was evicted');
  });

  test('a job submitted once shutdown began (the store closed) is 503 shutting-down with Retry-After, not job-store-full', async () => {
    const app = await ready();
    app.jobs.close(); // what preClose does at SIGTERM; a request whose body was read before gets here after it
    const mp = multipart({ image: { data: await grayPhoto() } });
    const r = await app.inject({ method: 'POST', url: '/v1/translate', payload: mp.payload, headers: { ...mp.headers, prefer: 'respond-async' } });
    assert.equal(r.statusCode, 503, r.body);
    assert.match(r.json().type, /shutting-down$/);
    assert.ok(Number(r.headers['retry-after']) >= 1);
  });

  test('JOBS_MAX_BYTES holds for results: older results are evicted, one larger than the limit fails 507', async () => {
    const app = await ready({ JOBS_MAX_BYTES: '2000', JOB_CONCURRENCY: '1' });
    const send = (body: object) => app.inject({ method: 'POST', url: '/v1/generate', payload: body, headers: { prefer: 'respond-async' } });
    const ids: string[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const r = await send({ class: 1, seed });
      assert.equal(r.statusCode, 202, r.body);
      ids.push(r.json().id);
      assert.equal((await poll(app, r.json().id)).json().status, 'succeeded');
      assert.ok(app.jobs.stats().bytes <= 2000, `store holds ${app.jobs.stats().bytes} bytes`);
    }
    assert.equal((await app.inject(`/v1/jobs/${ids[0]}`)).statusCode, 404, 'the oldest result was evicted');
    assert.equal((await app.inject(`/v1/jobs/${ids.at(-1)}`)).json().status, 'succeeded');
    const big = await send({ class: 1, seed: 1, count: 64, size: 128 });
    const failed = (await poll(app, big.json().id)).json();
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.status, 507);
    assert.ok(app.jobs.stats().bytes <= 2000);
  });
});
