/**
 * OpenTelemetry tracing (issue 18), off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
 *
 * - {@link startTracing} (called by `server.ts` before the app is built) starts @opentelemetry/sdk-node
 *   with the OTLP/HTTP trace exporter (endpoint, headers, service name from the standard `OTEL_*`
 *   variables; default service name `normgen`).
 * - `buildApp` registers @fastify/otel first: one span per request (W3C `traceparent` honoured: the
 *   request span continues the caller's trace), plus hook and handler spans.
 * - {@link span} and {@link recordInference} add the service's own children of the request span:
 *   `decode`, `encode` (sharp), `queue` (time waiting in the model's batcher) and `inference`
 *   (onnxruntime `session.run`, attributes `normgen.model`, `normgen.batch_size`).
 * Without a registered tracer provider every call is a no-op.
 *
 * Independently of OpenTelemetry, the same calls time the request's stages for its `Server-Timing` header
 * (issue 32, W3C Server Timing): {@link span} adds its duration under its name, {@link recordInference} adds
 * `queue` and `infer` (summed over a request's passes, e.g. the upscaler's tiles), and {@link serverTiming}
 * (the app's onSend hook) writes them with `total` (ms from the request's arrival to the reply's headers),
 * e.g. `read;dur=2.1, decode;dur=3.9, queue;dur=0.1, infer;dur=57.2, encode;dur=4.8, total;dur=70.3`.
 * `infer` is `session.run` in the worker, measured there; the rest is measured on the main thread.
 */
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';

/** Start the SDK when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; returns its shutdown function (or undefined). */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<(() => Promise<void>) | undefined> {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined;
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  env.OTEL_SERVICE_NAME ??= 'normgen';
  const sdk = new NodeSDK({ traceExporter: new OTLPTraceExporter(), instrumentations: [] });
  sdk.start();
  return () => sdk.shutdown();
}

type Otel = { enabled?: boolean; instrumented?: boolean; tracer: import('@opentelemetry/api').Tracer; context: import('@opentelemetry/api').Context };

function otelOf(request: FastifyRequest): Otel | undefined {
  const otel = (request as unknown as { opentelemetry?: () => Otel }).opentelemetry?.();
  return otel && otel.enabled !== false && otel.instrumented !== false ? otel : undefined;
}

/** Stage durations (ms) of the requests in flight, by stage name in the order first seen. */
const stages = new WeakMap<FastifyRequest, Map<string, number>>();

/** Add `ms` (milliseconds, ≥ 0) to the stage `name` of `request`'s Server-Timing (names: a token, e.g. `decode`). */
export function addTiming(request: FastifyRequest, name: string, ms: number): void {
  let m = stages.get(request);
  if (!m) stages.set(request, (m = new Map()));
  m.set(name, (m.get(name) ?? 0) + ms);
}

/**
 * The `Server-Timing` value for `request`'s recorded stages plus `total;dur=totalMs`, one decimal each;
 * undefined when no stage was recorded (routes that neither decode, encode nor run a model).
 */
export function serverTiming(request: FastifyRequest, totalMs: number): string | undefined {
  const m = stages.get(request);
  if (!m) return undefined;
  return [...m].map(([k, v]) => `${k};dur=${v.toFixed(1)}`).concat(`total;dur=${totalMs.toFixed(1)}`).join(', ');
}

/** Run `fn` inside a child span `name` of the request's span (a no-op wrapper without tracing); the span
 * records an exception and error status when `fn` throws. Its duration (ms, settled or not) is added to the
 * request's Server-Timing stage `name` ({@link addTiming}). */
export async function span<T>(request: FastifyRequest, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await otelSpan(request, name, fn);
  } finally {
    addTiming(request, name, performance.now() - t0);
  }
}

async function otelSpan<T>(request: FastifyRequest, name: string, fn: () => Promise<T>): Promise<T> {
  const otel = otelOf(request);
  if (!otel) return fn();
  return otel.tracer.startActiveSpan(name, {}, otel.context, async (s: Span) => {
    try {
      return await fn();
    } catch (err) {
      s.recordException(err as Error);
      s.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      s.end();
    }
  });
}

/**
 * Record the `queue` and `inference` spans of one batched model run that started at `startMs`
 * (epoch ms) and waited `queueMs`, then ran `inferMs` (both also added to the Server-Timing stages `queue`
 * and `infer`).
 */
export function recordInference(request: FastifyRequest, startMs: number, r: { queueMs: number; inferMs: number; batchSize: number }, model: string): void {
  addTiming(request, 'queue', r.queueMs);
  addTiming(request, 'infer', r.inferMs);
  const otel = otelOf(request);
  if (!otel) return;
  const attributes = { 'normgen.model': model, 'normgen.batch_size': r.batchSize };
  otel.tracer.startSpan('queue', { startTime: startMs, attributes }, otel.context).end(startMs + r.queueMs);
  otel.tracer.startSpan('inference', { startTime: startMs + r.queueMs, attributes }, otel.context).end(startMs + r.queueMs + r.inferMs);
}
