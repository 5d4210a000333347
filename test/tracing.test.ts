/**
 * OpenTelemetry (issue 18): with a tracer provider registered (here an in-memory exporter; in
 * production @opentelemetry/sdk-node with OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set), one request to
 * the real app gives one trace that continues the caller's `traceparent`: the request span
 * (@fastify/otel) with the service's own spans under it: decode, queue, inference (model, batch size),
 * encode. Without a provider (every other test file) tracing is a no-op.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, grayPhoto, multipart } from './helper.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
let app: FastifyInstance;
before(async () => { app = await buildReadyApp(); });
after(async () => { await app.close(); await provider.shutdown(); });

const parentOf = (s: ReadableSpan) => (s as unknown as { parentSpanContext?: { spanId: string }; parentSpanId?: string }).parentSpanContext?.spanId
  ?? (s as unknown as { parentSpanId?: string }).parentSpanId;

test('one translate request: a span tree under the caller\'s trace', async () => {
  exporter.reset();
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  const mp = multipart({ image: { data: await grayPhoto() } });
  const r = await app.inject({ method: 'POST', url: '/v1/translate', payload: mp.payload, headers: { ...mp.headers, traceparent: `00-${traceId}-${callerSpan}-01` } });
  assert.equal(r.statusCode, 200);
  await new Promise((res) => setTimeout(res, 50));
  const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const root = spans.find((s) => parentOf(s) === callerSpan);
  assert.ok(root, `a span whose parent is the caller's; got ${spans.map((s) => `${s.name}<-${parentOf(s)}`).join(', ')}`);
  const descends = (s: ReadableSpan) => { for (let p = parentOf(s); p; p = byId.get(p) ? parentOf(byId.get(p)!) : undefined) if (p === root.spanContext().spanId) return true; return false; };
  for (const name of ['decode', 'queue', 'inference', 'encode']) {
    const s = spans.find((x) => x.name === name);
    assert.ok(s, `span ${name} recorded`);
    assert.ok(descends(s), `${name} is under the request span`);
  }
  const inference = spans.find((s) => s.name === 'inference')!;
  assert.equal(inference.attributes['normgen.batch_size'], 1);
  assert.match(String(inference.attributes['normgen.model']), /^colorize-pono@/);
  const queue = spans.find((s) => s.name === 'queue')!;
  const end = (s: ReadableSpan) => s.endTime[0] * 1e3 + s.endTime[1] / 1e6;
  const start = (s: ReadableSpan) => s.startTime[0] * 1e3 + s.startTime[1] / 1e6;
  assert.ok(Math.abs(end(queue) - start(inference)) < 1, 'inference starts where the queue wait ends');
  assert.equal(exporter.getFinishedSpans().filter((s) => s.name.includes('healthz')).length, 0);
});

test('health checks are not traced', async () => {
  exporter.reset();
  assert.equal((await app.inject('/healthz')).statusCode, 200);
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(exporter.getFinishedSpans().length, 0);
});
