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

/** Run `fn` inside a child span `name` of the request's span (a no-op wrapper without tracing); the span
 * records an exception and error status when `fn` throws. */
export async function span<T>(request: FastifyRequest, name: string, fn: () => Promise<T>): Promise<T> {
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
 * (epoch ms) and waited `queueMs`, then ran `inferMs`.
 */
export function recordInference(request: FastifyRequest, startMs: number, r: { queueMs: number; inferMs: number; batchSize: number }, model: string): void {
  const otel = otelOf(request);
  if (!otel) return;
  const attributes = { 'normgen.model': model, 'normgen.batch_size': r.batchSize };
  otel.tracer.startSpan('queue', { startTime: startMs, attributes }, otel.context).end(startMs + r.queueMs);
  otel.tracer.startSpan('inference', { startTime: startMs + r.queueMs, attributes }, otel.context).end(startMs + r.queueMs + r.inferMs);
}
