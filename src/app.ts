/**
 * `buildApp(config)`: the Fastify instance with its plugins (errors, multipart, OpenAPI, models),
 * routes and the try-it page (`public/`, served at `/` by @fastify/static). Tests call it directly; `server.ts` adds `listen` and signals.
 */
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvCompiler from '@fastify/ajv-compiler';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config.js';
import auth, { hasValidKey, isPublicRoute, keyDigests, markPublic, rateLimitKeyFor } from './plugins/auth.js';
import errors, { notFoundHandler } from './plugins/errors.js';
import drain from './plugins/drain.js';
import { serverTiming } from './tracing.js';
import multipart from './plugins/multipart.js';
import jsonBounds from './plugins/json.js';
import openapi from './plugins/openapi.js';
import metrics from './plugins/metrics.js';
import modelsPlugin from './plugins/models.js';
import jobs from './plugins/jobs.js';
import health from './routes/health.js';
import models from './routes/models.js';
import generate from './routes/generate.js';
import inpaint from './routes/inpaint.js';
import kserve from './routes/kserve.js';
import translate from './routes/translate.js';
import upscale from './routes/upscale.js';
import { markArrival, strictQueryIntegers } from './routes/common.js';
import explain from './routes/explain.js';

// One pool of Ajv compilers for the validator factories below (see `schemaController`).
const ajvFactory = AjvCompiler() as unknown as (external: unknown, options: unknown) => (route: unknown) => unknown;

declare module 'fastify' {
  interface FastifyInstance {
    limits: { maxUploadBytes: number; maxPixels: number; maxOutputPixels: number; upscaleTile: number | undefined; deadlineMs: number };
  }
}

/**
 * Build (but do not start) the service.
 * @param config validated configuration (see `config.ts`).
 * @param logger Fastify logger option (default: pino at `config.logLevel`).
 */
export async function buildApp(config: Config, logger: FastifyServerOptions['logger'] = { level: config.logLevel }): Promise<FastifyInstance> {
  // Connection-level failures (slow-loris, stalled uploads, malformed requests) never reach a route: count
  // them here, answer as Node would (408 / 400, problem+json) and close the socket.
  let countClientError: (kind: string) => void = () => {};
  // a request that matched no route is authorized only with a configured key (when API_KEYS is set)
  const keys = keyDigests(config.apiKeys);
  const app = Fastify({
    logger,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionTimeout: config.idleTimeoutMs,
    // Node checks the request and headers timeouts every connectionsCheckingInterval (30 s by default).
    http: { headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs) },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      // Node reports both the headers and the request timeout as ERR_HTTP_REQUEST_TIMEOUT
      const kind = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request-timeout' : err.code === 'ECONNRESET' ? 'reset' : 'bad-request';
      countClientError(kind);
      if (socket.writable && kind !== 'reset') {
        const status = kind.endsWith('timeout') ? 408 : 400;
        const body = JSON.stringify({ type: `https://normgen.dev/problems/${kind}`, title: STATUS_CODES[status], status,
          detail: kind.endsWith('timeout') ? 'the request did not arrive in time (HEADERS_TIMEOUT_MS for its headers, REQUEST_TIMEOUT_MS for all of it)' : 'malformed HTTP request' });
        socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
      socket.destroySoon?.();
    },
    bodyLimit: config.maxUploadBytes + 64 * 1024,
    // A URL the router cannot decode (`/%zz`) is a problem+json 400 like every other error.
    // A path parameter over the router's 100 characters (`/v1/jobs/<101 chars>`) names nothing here: 404. With
    // API_KEYS set, a request without a valid key gets 401 first, as on every route that is not public.
    frameworkErrors: (error, request, res) => {
      const reply = res as unknown as { code(s: number): { type(t: string): { send(b: unknown): void } }; header(k: string, v: string): unknown };
      const problem = (status: number, slug: string, detail: string) => reply.code(status).type('application/problem+json')
        .send({ type: `https://normgen.dev/problems/${slug}`, title: STATUS_CODES[status], status, detail });
      if (error.code === 'FST_ERR_BAD_URL') return problem(400, 'bad-url', 'the request URL is malformed (invalid percent-encoding)');
      if (keys.length > 0 && !hasValidKey(request as FastifyRequest, keys)) {
        reply.header('WWW-Authenticate', 'Bearer realm="normgen"');
        return problem(401, 'unauthorized', 'send `Authorization: Bearer <token>`');
      }
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return problem(404, 'not-found', 'no such resource: a path parameter is over 100 characters (job ids and model names are shorter)');
      return problem(404, 'not-found', `the request could not be routed (${error.code ?? 'router error'})`);
    },
    // while closing, requests on open connections are answered by plugins/drain.ts (problem+json, Retry-After)
    return503OnClosing: false,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    // Unknown JSON/query fields are errors (422), not silently dropped.
    ajv: { customOptions: { removeAdditional: false, useDefaults: true, coerceTypes: 'array', allErrors: false } },
    // Query strings and params are text, so their values are coerced ("7" -> 7); JSON bodies are typed, so
    // they are not: `seed: null | "0x10" | true | "7"` is a 422, never 0, 16, 1 or 7.
    schemaController: {
      compilersFactory: {
        buildValidator: ((externalSchemas: unknown, ajvOptions: { customOptions?: Record<string, unknown> }) => {
          const coercing = ajvFactory(externalSchemas, ajvOptions);
          const strict = ajvFactory(externalSchemas, { ...ajvOptions, customOptions: { ...ajvOptions.customOptions, coerceTypes: false } });
          return (route: { httpPart?: string }) => (route.httpPart === 'body' ? strict(route) : coercing(route));
        }) as never,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorate('limits', { maxUploadBytes: config.maxUploadBytes, maxPixels: config.maxPixels, maxOutputPixels: config.maxOutputPixels, upscaleTile: config.upscaleTile, deadlineMs: config.deadlineMs });
  // OpenTelemetry request spans (@fastify/otel; a no-op unless a tracer provider is registered, see tracing.ts).
  // First, so that it sees every route; health, metrics and docs are not traced.
  await app.register(new FastifyOtelInstrumentation({
    ignorePaths: (r: { url: string }) => /^\/(healthz|readyz|metrics|docs|openapi\.json)\b/.test(r.url),
  }).plugin());
  // Graceful shutdown with keep-alive clients (load balancers, the Knative queue-proxy, docker-proxy):
  // requests already in flight when close() begins are answered with `Connection: close`, so their
  // sockets end with the reply instead of idling until keepAliveTimeout and holding the process open.
  // The same for a reply sent before the request body was read to its end (an upload rejected early,
  // e.g. an unknown text field sent before the file): the unread rest would otherwise sit in a
  // keep-alive socket that server.close() waits on; closing it is cheaper than draining a large upload.
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  app.addHook('onSend', async (request, reply, payload) => {
    if (closing || !request.raw.complete) reply.header('connection', 'close');
    // the request's stages (tracing.ts): read, decode, queue, transfer, infer, encode, …, total
    if (!reply.hasHeader('server-timing')) {
      const timing = serverTiming(request, reply.elapsedTime);
      if (timing) reply.header('server-timing', timing);
    }
    return payload;
  });
  await app.register(errors);
  // Replayed async-job requests carry this header (a random value per process).
  const internalJob = { name: 'x-normgen-job', value: randomBytes(18).toString('base64url') };
  // shutdown: readiness 503, new requests 503 problem+json, work under way answered by the deadline
  await app.register(drain, { shutdownTimeoutMs: config.shutdownTimeoutMs, internal: internalJob });
  // every request's DEADLINE_MS counts from here
  app.addHook('onRequest', async (request) => markArrival(request));
  // integers in query strings are digits only (Ajv's coercion alone takes " " as 0 and "0x10" as 16)
  app.addHook('preValidation', strictQueryIntegers);
  // Security headers on every answer (@fastify/helmet): a CSP that allows only this origin's scripts
  // (the page and Swagger UI load theirs from files), blob:/data: images for results the page shows,
  // no framing, nosniff, no referrer.
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'], connectSrc: ["'self'"], frameAncestors: ["'none'"], objectSrc: ["'none'"],
        baseUri: ["'self'"], formAction: ["'self'"], upgradeInsecureRequests: null,
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'cross-origin' },
    crossOriginEmbedderPolicy: false,
    hsts: false,
  });
  // CORS (off unless CORS_ORIGINS): browsers on the listed origins may call the API and read its headers.
  if (config.corsOrigins.length) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      exposedHeaders: ['X-Model', 'X-Seed', 'X-Hole-Fraction', 'X-Working-Size', 'Retry-After', 'Location', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
      maxAge: 600,
    });
  }
  // Per-key rate limit (off unless RATE_LIMIT_PER_MIN): every route but the public ones (health, docs, metrics,
  // the page: decided on the matched route, as auth is). Its key is a configured API key, else the client IP.
  if (config.rateLimitPerMin > 0) {
    await app.register(rateLimit, {
      max: config.rateLimitPerMin, timeWindow: 60_000, enableDraftSpec: true,
      keyGenerator: rateLimitKeyFor(config.apiKeys),
      allowList: (request) => isPublicRoute(request) || request.headers[internalJob.name] === internalJob.value,
      errorResponseBuilder: (_request, context) => Object.assign(new Error(`rate limit: ${context.max} requests per minute per key; retry after ${Math.ceil(context.ttl / 1000)} s`), { statusCode: 429 }),
    });
  }
  await app.register(auth, { apiKeys: config.apiKeys });
  // 404s are problem+json, behind auth (onRequest) and, when it is on, the rate limit: probing paths costs budget
  if (config.rateLimitPerMin > 0) app.setNotFoundHandler({ preHandler: app.rateLimit() }, notFoundHandler);
  else app.setNotFoundHandler(notFoundHandler);
  await app.register(underPressure, {
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    maxHeapUsedBytes: config.maxHeapUsedBytes,
    retryAfter: 5,
    exposeStatusRoute: false,
    pressureHandler: (_request, reply, type, value) => {
      reply.header('Retry-After', '5').code(503).type('application/problem+json')
        .send({ type: 'https://normgen.dev/problems/under-pressure', title: 'Service Unavailable', status: 503, detail: `the server is overloaded (${type}: ${value}); retry after 5 s` });
    },
  });
  await app.register(multipart, { maxUploadBytes: config.maxUploadBytes });
  await app.register(jsonBounds);
  await app.register(openapi);
  await app.register(metrics);
  countClientError = (kind) => app.metrics.clientErrors.inc({ kind });
  app.server.on('timeout', (socket) => { countClientError('idle-timeout'); socket.destroy(); });
  await app.register(modelsPlugin, { modelsDir: config.modelsDir, workers: config.workers, intraOpThreads: config.intraOpThreads, batching: config.batching, executionProviders: config.executionProviders, cudaDeviceId: config.cudaDeviceId, precision: config.precision, arenaMaxPixels: config.arenaMaxPixels, memoryBudgetMb: config.memoryBudgetMb, preloadModels: config.preloadModels });
  await app.register(jobs, { ttlS: config.jobTtlS, maxJobs: config.jobsMax, maxBytes: config.jobsMaxBytes, concurrency: config.jobConcurrency, maxPerKey: config.jobsPerKey,
    apiKeys: config.apiKeys.length > 0, internal: internalJob });
  await app.register(health);
  await app.register(models);
  await app.register(translate);
  await app.register(inpaint);
  await app.register(upscale);
  await app.register(explain);
  await app.register(generate);
  await app.register(kserve, { maxPixels: config.kserveMaxPixels });
  // The try-it page (public/: index.html, app.js, style.css; no build step), at GET /.
  // Its routes are public (an encapsulated scope marks every route registered in it).
  await app.register(async (scope) => {
    markPublic(scope);
    await scope.register(fastifyStatic, {
      root: path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'public'),
      prefix: '/', wildcard: false, decorateReply: false, index: 'index.html', schemaHide: true,
      setHeaders: (res) => res.setHeader('cache-control', 'no-cache'),
    });
  });
  return app;
}
