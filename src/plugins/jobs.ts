/**
 * Async jobs over HTTP (issue 18), on {@link JobStore}:
 *
 * - `POST /v1/translate | /v1/inpaint | /v1/generate` with `Prefer: respond-async` → `202 Accepted`,
 *   `Location: /v1/jobs/{id}`, `Preference-Applied: respond-async`, body `{ id, status }`. The request's
 *   body is read as it came (multipart or JSON, up to the image routes' JSON body limit, else 413) and
 *   replayed later through the same route with `app.inject`, so validation and results are the sync
 *   route's. Optional `Idempotency-Key`: the same key and body within the TTL give the same job.
 * - `GET /v1/jobs/{id}` → `{ id, status, created_at, finished_at?, result?, error? }`: once succeeded,
 *   `result` is the route's JSON reply, or for an image reply `{ model, data: [{ b64_json, width, height }] }`
 *   (plus `seed` for generate); once failed, `error` is the route's problem+json document.
 * - `DELETE /v1/jobs/{id}` cancels a queued job (200 `{ id, status: "canceled" }`); 409 once it started.
 * With API_KEYS a job belongs to the key that made it: another key gets 404. The body is validated
 * before the 202 by a pass through the same route that stops where the model would run, so a bad body gets
 * its 4xx at once. Each key may have JOBS_PER_KEY active jobs (429 `job-quota` above); finished jobs are
 * evicted oldest first to make room; a store full of active jobs → 503 + Retry-After from the smoothed job
 * time. Config: JOB_TTL_S (3600), JOBS_MAX (100), JOBS_PER_KEY (JOBS_MAX / 4), JOBS_MAX_BYTES (256 MiB),
 * JOB_CONCURRENCY (2).
 */
import { createHash, randomBytes } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { IdempotencyConflictError, JobQuotaError, JobStore, JobStoreClosedError, JobStoreFullError, type Job } from '../jobs/store.js';
import { HttpProblem, PROBLEM_BASE } from '../problem.js';
import { jsonBodyLimit } from '../routes/common.js';
import { ProblemSchema } from '../routes/schemas.js';

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobStore;
    /** The header (name, random per-process value) of an async job's validation pass; see `infer`. */
    dryRun: { name: string; value: string };
  }
}

const ASYNC_ROUTES = new Set(['/v1/translate', '/v1/colorize', '/v1/inpaint', '/v1/upscale', '/v1/generate']);
const FORWARD = ['content-type', 'authorization', 'accept'];

export interface JobsOptions {
  ttlS: number; maxJobs: number; maxBytes: number; concurrency: number; apiKeys: boolean;
  /** Active jobs one key (or, without API_KEYS, everyone) may have: JOBS_PER_KEY. */
  maxPerKey?: number;
  /** Header marking replayed inner requests (random value per process, made by buildApp). */
  internal: { name: string; value: string };
}

async function readBody(request: FastifyRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpProblem(413, 'Content Too Large', `the request body is over ${limit} bytes`, 'body-too-large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export default fp<JobsOptions>(async (app, opts) => {
  // Inner (replayed) requests carry this header: they skip the async hook and the rate limit (the job
  // was counted when it was submitted). The value is random per process, so clients cannot forge it.
  const internal = opts.internal;
  const owner = (request: FastifyRequest): string | null => {
    if (!opts.apiKeys) return null;
    const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    return m ? createHash('sha256').update(m[1]!.trim()).digest('hex') : null;
  };
  const dryRun = { name: 'x-normgen-dry-run', value: randomBytes(18).toString('base64url') };
  app.decorate('dryRun', dryRun);
  const store = new JobStore({ maxJobs: opts.maxJobs, maxBytes: opts.maxBytes, ttlMs: opts.ttlS * 1000, concurrency: opts.concurrency, maxPerOwner: opts.maxPerKey }, async (job) => {
    const r = job.request!;
    const res = await app.inject({ method: r.method as 'POST', url: r.url, headers: { ...r.headers, [internal.name]: internal.value }, payload: r.body });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = String(v);
    return { statusCode: res.statusCode, headers, body: res.rawPayload };
  });
  app.decorate('jobs', store);
  // Shutdown: at once, queued jobs are left `failed` (shutting-down: submit again) and new ones refused; the
  // running ones finish, or are ended by the answer deadline (plugins/drain.ts) with the same problem, before
  // the model workers stop.
  app.addHook('preClose', async () => store.close());
  app.addHook('onClose', async () => store.idle());

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST' || !/\brespond-async\b/i.test(String(request.headers.prefer ?? ''))) return;
    // the route the router matched (so `/%761/translate` is the same route as `/v1/translate`)
    const path = request.routeOptions.url;
    if (path === undefined || !ASYNC_ROUTES.has(path) || request.headers[internal.name] === internal.value) return;
    const body = await readBody(request, jsonBodyLimit(app.limits.maxUploadBytes, 2));
    const headers: Record<string, string> = {};
    for (const h of FORWARD) if (request.headers[h] !== undefined) headers[h] = String(request.headers[h]);
    const key = request.headers['idempotency-key'];
    // validate before answering 202: the same route, with this body, up to the point where it would run the
    // model (`infer` answers 204 to this pass); any other answer is the client's error, now
    const check = await app.inject({ method: 'POST', url: request.url, payload: body,
      headers: { ...headers, [internal.name]: internal.value, [dryRun.name]: dryRun.value } });
    if (check.statusCode !== 204) {
      for (const h of ['content-type', 'retry-after', 'allow']) if (check.headers[h] !== undefined) reply.header(h, String(check.headers[h]));
      return reply.code(check.statusCode).send(check.rawPayload);
    }
    let submitted;
    try {
      submitted = store.submit(owner(request), path, { method: 'POST', url: request.url, headers, body }, typeof key === 'string' && key ? key : undefined);
    } catch (err) {
      // a body read and checked while the server began to shut down: the same answer as any request then
      if (err instanceof JobStoreClosedError) throw new HttpProblem(503, 'Service Unavailable', err.message, 'shutting-down', { retry_after_s: 1 });
      if (err instanceof JobStoreFullError) throw new HttpProblem(503, 'Service Unavailable', err.message, 'job-store-full', { retry_after_s: err.retryAfterS });
      if (err instanceof JobQuotaError) throw new HttpProblem(429, 'Too Many Requests', err.message, 'job-quota', { retry_after_s: err.retryAfterS, limit: err.limit });
      if (err instanceof IdempotencyConflictError) throw new HttpProblem(422, 'Unprocessable Content', err.message, 'idempotency-conflict');
      throw err;
    }
    const { job } = submitted;
    return reply.code(202).header('Location', `/v1/jobs/${job.id}`).header('Preference-Applied', 'respond-async')
      .send({ id: job.id, status: job.status });
  });

  const JobParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;
  const find = (request: FastifyRequest<{ Params: { id: string } }>): Job => {
    const job = store.get(request.params.id, owner(request));
    if (!job) throw new HttpProblem(404, 'Not Found', `no job ${request.params.id} (unknown, expired, or another key's)`, 'unknown-job');
    return job;
  };

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', {
    schema: {
      tags: ['jobs'], summary: 'An async job: its status and, once done, its result or error', params: JobParams,
      response: { 404: ProblemSchema },
    },
  }, async (request) => {
    const job = find(request);
    const out: Record<string, unknown> = { id: job.id, status: job.status, route: job.route, created_at: new Date(job.createdAt).toISOString() };
    if (job.finishedAt) out.finished_at = new Date(job.finishedAt).toISOString();
    const res = job.result;
    if (res && job.status === 'succeeded') {
      if ((res.headers['content-type'] ?? '').startsWith('application/json')) {
        out.result = JSON.parse(res.body.toString('utf8'));
      } else {
        const meta = await sharp(res.body).metadata();
        out.result = { model: res.headers['x-model'], ...(res.headers['x-seed'] ? { seed: Number(res.headers['x-seed']) } : {}),
          data: [{ b64_json: res.body.toString('base64'), width: meta.width, height: meta.height }] };
      }
    } else if (res && job.status === 'failed') {
      try {
        out.error = JSON.parse(res.body.toString('utf8'));
      } catch {
        out.error = { type: PROBLEM_BASE + 'internal', title: 'Internal Server Error', status: res.statusCode };
      }
    }
    return out;
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', {
    schema: { tags: ['jobs'], summary: 'Cancel a queued async job', params: JobParams, response: { 404: ProblemSchema, 409: ProblemSchema } },
  }, async (request) => {
    const job = find(request);
    if (!store.cancel(job)) throw new HttpProblem(409, 'Conflict', `job ${job.id} is ${job.status}: only a queued job can be canceled`, 'job-not-queued');
    return { id: job.id, status: job.status };
  });
}, { name: 'jobs' });
