/**
 * Inference worker crash recovery (issue 19), with the test-only hook (NORMGEN_TEST_HOOKS=1: a worker
 * told to crash exits as a native abort would): the requests it held get 503 problem+json at once
 * (never hang), /readyz is 503 while the replacement starts, normgen_worker_restarts_total counts it,
 * and once the replacement has re-opened the models the next request succeeds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, grayPhoto, multipart } from './helper.js';

process.env.NORMGEN_TEST_HOOKS = '1'; // read by the worker threads, which inherit the environment
let app: FastifyInstance;
before(async () => { app = await buildReadyApp({ BATCHING: '0' }); });
after(async () => app.close());

test('a worker that dies: its requests get 503 within a second, a replacement starts, then requests succeed', async () => {
  const photo = await grayPhoto();
  const translate = () => { const mp = multipart({ image: { data: photo } }); return app.inject({ method: 'POST', url: '/v1/translate', payload: mp.payload, headers: mp.headers }); };
  const t0 = Date.now();
  const inflight = Array.from({ length: 4 }, () => translate().then((r) => ({ r, ms: Date.now() - t0 })));
  await new Promise((res) => setTimeout(res, 60)); // the first ones reach the worker
  app.inference.crashForTest(0);
  const crashedAt = Date.now();
  while (app.inference.restarts === 0) {
    assert.ok(Date.now() - crashedAt < 2000, 'the crash was noticed');
    await new Promise((res) => setTimeout(res, 5));
  }
  const readyz = await app.inject('/readyz');
  assert.equal(readyz.statusCode, 503, 'not ready while the replacement starts');
  assert.equal(readyz.json().workers, 'restarting');
  const replies = await Promise.all(inflight);
  const failed = replies.filter(({ r }) => r.statusCode === 503);
  assert.ok(failed.length >= 1, `statuses ${replies.map(({ r }) => r.statusCode)}`);
  for (const { r, ms } of failed) {
    assert.match(String(r.headers['content-type']), /problem\+json/);
    assert.match(r.json().detail, /worker died|restarting/);
    assert.equal(r.headers['retry-after'], '1');
    assert.ok(ms - (crashedAt - t0) < 1000 || r.json().detail.includes('restarting'), `answered ${ms - (crashedAt - t0)} ms after the crash`);
  }
  for (const { r } of replies) assert.ok([200, 503].includes(r.statusCode));
  for (let i = 0; (await app.inject('/readyz')).statusCode !== 200; i++) {
    assert.ok(i < 300, 'the replacement worker became ready');
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(app.inference.restarts, 1);
  assert.match((await app.inject('/metrics')).body, /normgen_worker_restarts_total 1/);
  const next = await translate();
  assert.equal(next.statusCode, 200, next.body);
});
