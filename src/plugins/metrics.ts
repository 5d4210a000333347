/**
 * Prometheus metrics (prom-client) at `GET /metrics` (text exposition format 0.0.4), on a registry of
 * the app's own (tests build several apps in one process):
 *
 * - `normgen_http_requests_total{route, method, status, model}` and
 *   `normgen_http_request_duration_seconds{route, method, status, model}` (histogram, seconds);
 *   `model` is `name@version` from the reply's `X-Model` header, or "" when none;
 * - `normgen_queue_depth{model}` (gauge, requests waiting in the model's batcher);
 * - `normgen_batch_size{model}` (histogram, items per forward pass);
 * - `normgen_inference_seconds{model}` (histogram, onnxruntime `session.run` time);
 * - `normgen_model_load_seconds{model, version}` (gauge, file check + session creation) and
 *   `normgen_model_ready{model, version, provider}` (gauge 1/0);
 * - `normgen_client_errors_total{kind}`: connections cut before a route answered (slow-loris and
 *   stalled uploads: `request-timeout` (headers or body too slow), `idle-timeout`; `bad-request`, `reset`);
 * - `normgen_worker_restarts_total`: inference worker threads replaced after a crash;
 * - the default process metrics (`normgen_process_*`, `normgen_nodejs_*`).
 */
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatcherHooks } from '../inference/batcher.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: { registry: Registry; hooks: BatcherHooks; clientErrors: Counter<'kind'>; workerRestarts: Counter };
  }
}

export default fp(async (app) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'normgen_' });
  const labels = ['route', 'method', 'status', 'model'] as const;
  const requests = new Counter({ name: 'normgen_http_requests_total', help: 'HTTP requests', labelNames: labels, registers: [registry] });
  const duration = new Histogram({
    name: 'normgen_http_request_duration_seconds', help: 'HTTP request duration in seconds', labelNames: labels, registers: [registry],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  const queue = new Gauge({ name: 'normgen_queue_depth', help: 'requests waiting in the model queue', labelNames: ['model'], registers: [registry] });
  const running = new Gauge({ name: 'normgen_inference_running', help: 'forward passes of the model running now', labelNames: ['model'], registers: [registry] });
  const batch = new Histogram({ name: 'normgen_batch_size', help: 'items per forward pass', labelNames: ['model'], registers: [registry], buckets: [1, 2, 4, 8, 16, 32, 64] });
  const inference = new Histogram({
    name: 'normgen_inference_seconds', help: 'onnxruntime session.run time in seconds', labelNames: ['model'], registers: [registry],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  const load = new Gauge({ name: 'normgen_model_load_seconds', help: 'model load time (checksum + session) in seconds', labelNames: ['model', 'version'], registers: [registry] });
  const ready = new Gauge({ name: 'normgen_model_ready', help: '1 when the model serves, else 0', labelNames: ['model', 'version', 'provider'], registers: [registry] });

  const hooks: BatcherHooks = {
    onBatch: (model, items, _requests, inferMs) => { batch.observe({ model }, items); inference.observe({ model }, inferMs / 1000); },
    onQueueDepth: (model, depth) => queue.set({ model }, depth),
    onRunning: (model, n) => running.set({ model }, n),
  };
  const clientErrors = new Counter({
    name: 'normgen_client_errors_total', help: 'connections cut before a route answered: request-timeout (headers or body too slow), idle-timeout, bad-request, reset',
    labelNames: ['kind'], registers: [registry],
  });
  const workerRestarts = new Counter({ name: 'normgen_worker_restarts_total', help: 'inference worker threads replaced after a crash', registers: [registry] });
  app.decorate('metrics', { registry, hooks, clientErrors, workerRestarts });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    const l = { route, method: request.method, status: String(reply.statusCode), model: String(reply.getHeader('x-model') ?? '') };
    requests.inc(l);
    duration.observe(l, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { config: { public: true }, schema: { tags: ['observability'], summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] } }, async (_request, reply) => {
    for (const m of app.models?.list() ?? []) {
      if (m.loadMs !== undefined) load.set({ model: m.name, version: m.manifest.version }, m.loadMs / 1000);
      ready.set({ model: m.name, version: m.manifest.version, provider: m.provider ?? 'cpu' }, m.state === 'ready' ? 1 : 0);
    }
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}, { name: 'metrics' });
