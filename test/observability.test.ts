/**
 * Observability and execution providers: Prometheus `/metrics` after real requests (request counts
 * and latency by route/model/status, batch sizes, inference time, queue depth, model load time,
 * process metrics), the provider each model uses in `/v1/models`, and `EXECUTION_PROVIDERS=cuda,cpu`
 * falling back to CPU (with a log line) where onnxruntime-node's CUDA libraries are absent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, grayPhoto, multipart } from './helper.js';

let app: FastifyInstance;
before(async () => { app = await buildReadyApp({ EXECUTION_PROVIDERS: 'cuda,cpu', MODELS: 'all' }); });
after(async () => app.close());

describe('observability', () => {
  test('/metrics exposes request, batch, inference, queue, load and process metrics', async () => {
    const ok = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: await grayPhoto() } }) });
    assert.equal(ok.statusCode, 200);
    const bad = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: Buffer.from('nope') } }) });
    assert.equal(bad.statusCode, 415);
    const res = await app.inject('/metrics');
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    const text = res.body;
    const version = app.models.get('colorize-pono')!.manifest.version;
    assert.match(text, new RegExp(`normgen_http_requests_total\\{route="/v1/translate",method="POST",status="200",model="colorize-pono@${version.replace(/\./g, '\\.')}"\\} 1`));
    assert.match(text, /normgen_http_requests_total\{route="\/v1\/translate",method="POST",status="415",model=""\} 1/);
    assert.match(text, /normgen_http_request_duration_seconds_bucket\{le="[0-9.]+",route="\/v1\/translate"/);
    assert.match(text, /normgen_batch_size_count\{model="colorize-pono"\} [1-9]/);
    assert.match(text, /normgen_inference_seconds_sum\{model="colorize-pono"\} [0-9.e-]+/);
    assert.match(text, /normgen_queue_depth\{model="colorize-pono"\} 0/);
    assert.match(text, /normgen_model_load_seconds\{model="colorize-pono",version="[^"]+"\} [0-9.]+/);
    assert.match(text, /normgen_model_ready\{model="colorize-pono",version="[^"]+",provider="(cpu|cuda:0)"\} 1/);
    assert.match(text, /normgen_process_cpu_user_seconds_total/);
  });

  test('Server-Timing names each stage of a request, and their sum is within the total', async () => {
    const timings = (h: unknown) => new Map([...String(h ?? '').matchAll(/([\w-]+);dur=([\d.]+)/g)].map((m) => [m[1]!, Number(m[2])]));
    const res = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: await grayPhoto() } }) });
    assert.equal(res.statusCode, 200);
    const t = timings(res.headers['server-timing']);
    // the 451×300 photo is above the default colorizer's working size (384): its chroma is upsampled onto the luma
    assert.deepEqual([...t.keys()], ['read', 'decode', 'queue', 'infer', 'transfer', 'upsample', 'encode', 'total']);
    const stages = [...t].filter(([k]) => k !== 'total').reduce((s, [, v]) => s + v, 0);
    assert.ok(t.get('infer')! > 0 && t.get('decode')! > 0 && t.get('encode')! > 0, String(res.headers['server-timing']));
    assert.ok(stages <= t.get('total')! + 0.5, `stages ${stages} ms > total ${t.get('total')} ms`);
    const gen = await app.inject({ method: 'POST', url: '/v1/generate', payload: { class: 0, seed: 3, count: 4 } });
    assert.deepEqual([...timings(gen.headers['server-timing']).keys()], ['queue', 'infer', 'transfer', 'tiles', 'encode', 'total']);
    // a failed request carries the stages it went through (and no infer)
    const bad = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: Buffer.from('nope') } }) });
    assert.equal(bad.statusCode, 415);
    assert.ok(!timings(bad.headers['server-timing']).has('infer'));
    // routes that do no image work send none
    assert.equal((await app.inject('/healthz')).headers['server-timing'], undefined);
  });

  test('EXECUTION_PROVIDERS=cuda,cpu serves, and /v1/models names the provider in use', async () => {
    const models = (await app.inject('/v1/models')).json().models as { name: string; provider: string; state: string; batching: { maxBatchSize: number } }[];
    for (const m of models) {
      assert.equal(m.state, 'ready');
      assert.match(m.provider, /^(cpu|cuda:0)$/);
      assert.ok(m.batching.maxBatchSize >= 1);
    }
  });
});
