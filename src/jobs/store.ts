/**
 * Async jobs (issue 18): a request to an image route with `Prefer: respond-async` becomes a job that runs
 * in the background through the same route (`app.inject` with the request's own body and headers), and
 * whose result is kept for `ttlMs`.
 *
 * - Bounded: at most `maxJobs` jobs and `maxBytes` bytes of request bodies + results are held. Finished
 *   jobs do not block new ones: when a bound is reached the oldest finished jobs are evicted first (their
 *   results are gone early, as after their TTL); only when the active (queued or running) jobs alone fill
 *   a bound is a new job refused ({@link JobStoreFullError} → 503, `Retry-After` = the smoothed job time ×
 *   the jobs ahead / concurrency). A result larger than `maxBytes` on its own is not kept: the job fails
 *   with 507.
 * - Fair: one owner may have at most `maxPerOwner` active jobs ({@link JobQuotaError} → 429), so one API
 *   key cannot fill the store for the others.
 * - Run `concurrency` at a time, first in first out; a job still `queued` can be canceled.
 * - Ids are 128 random bits (base64url), so they cannot be guessed; each job records its owner (the
 *   caller's API-key digest, or `null` without API_KEYS) and is visible only to that owner.
 * - `Idempotency-Key`: the same owner, key and request body within the TTL return the same job; the
 *   same key with another body is a conflict ({@link IdempotencyConflictError} → 422).
 * States: `queued` → `running` → `succeeded` | `failed`; `queued` → `canceled`.
 */
import { createHash, randomBytes } from 'node:crypto';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

/** The recorded reply of the job's inner request. */
export interface JobResult { statusCode: number; headers: Record<string, string>; body: Buffer }

export interface Job {
  id: string;
  owner: string | null;
  status: JobStatus;
  createdAt: number;
  finishedAt?: number;
  route: string;
  /** The inner request, dropped once it ran. */
  request?: { method: string; url: string; headers: Record<string, string>; body: Buffer };
  result?: JobResult;
  idempotency?: { key: string; bodyHash: string };
  bytes: number;
}

export class JobStoreFullError extends Error {
  constructor(readonly retryAfterS: number, what: string) { super(`the job store is full (${what}); retry after ${retryAfterS} s`); }
}
export class IdempotencyConflictError extends Error {}
/** The store is closed: the server is shutting down (a job submitted after SIGTERM; answered 503 `shutting-down`). */
export class JobStoreClosedError extends Error {
  constructor() { super('the server is shutting down; submit the job again (to another instance)'); }
}
/** The owner already has its share of active jobs. */
export class JobQuotaError extends Error {
  constructor(readonly retryAfterS: number, readonly limit: number) { super(`this key already has ${limit} jobs queued or running (JOBS_PER_KEY); retry after ${retryAfterS} s`); }
}

/** `maxPerOwner`: active jobs one owner may have (default ⌈maxJobs / 4⌉). */
export interface JobStoreOptions { maxJobs: number; maxBytes: number; ttlMs: number; concurrency: number; maxPerOwner?: number }

export class JobStore {
  private jobs = new Map<string, Job>();
  private queue: Job[] = [];
  private running = 0;
  private bytes = 0;
  private closed = false;
  private inflight = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout;
  /** Smoothed run time of a job in ms (EWMA, α = 0.3; 5 s until one finished). */
  avgRunMs = 5000;

  /** `run` executes a job's inner request and resolves with its reply (it never rejects for HTTP errors). */
  constructor(private readonly opts: JobStoreOptions, private readonly run: (job: Job) => Promise<JobResult>) {
    this.timer = setInterval(() => this.expire(), Math.min(60_000, Math.max(1000, opts.ttlMs / 4)));
    this.timer.unref();
  }

  /**
   * Create (or, for a repeated Idempotency-Key, find) a job.
   * @throws JobStoreClosedError after {@link close}; JobStoreFullError over the count or byte bound;
   *   IdempotencyConflictError for a reused key with another body.
   */
  submit(owner: string | null, route: string, request: NonNullable<Job['request']>, idempotencyKey?: string): { job: Job; created: boolean } {
    this.expire();
    if (this.closed) throw new JobStoreClosedError();
    const bodyHash = createHash('sha256').update(request.method).update(request.url).update(request.body).digest('hex');
    if (idempotencyKey) {
      const prior = [...this.jobs.values()].find((j) => j.owner === owner && j.idempotency?.key === idempotencyKey);
      if (prior) {
        if (prior.idempotency!.bodyHash !== bodyHash) throw new IdempotencyConflictError(`Idempotency-Key ${JSON.stringify(idempotencyKey)} was used for another request`);
        return { job: prior, created: false };
      }
    }
    const active = [...this.jobs.values()].filter((j) => j.status === 'queued' || j.status === 'running');
    const share = this.opts.maxPerOwner ?? Math.max(1, Math.ceil(this.opts.maxJobs / 4));
    if (active.filter((j) => j.owner === owner).length >= share) throw new JobQuotaError(this.retryAfterS(), share);
    if (this.jobs.size >= this.opts.maxJobs) this.evictFinished(() => this.jobs.size < this.opts.maxJobs);
    if (this.jobs.size >= this.opts.maxJobs) throw new JobStoreFullError(this.retryAfterS(), `${this.opts.maxJobs} jobs queued or running`);
    if (this.bytes + request.body.length > this.opts.maxBytes) this.evictFinished(() => this.bytes + request.body.length <= this.opts.maxBytes);
    if (this.bytes + request.body.length > this.opts.maxBytes) throw new JobStoreFullError(this.retryAfterS(), `${this.opts.maxBytes} bytes`);
    const job: Job = {
      id: randomBytes(16).toString('base64url'), owner, status: 'queued', createdAt: Date.now(), route, request,
      idempotency: idempotencyKey ? { key: idempotencyKey, bodyHash } : undefined, bytes: request.body.length,
    };
    this.bytes += job.bytes;
    this.jobs.set(job.id, job);
    this.queue.push(job);
    this.pump();
    return { job, created: true };
  }

  /** Seconds until a slot frees up, for `Retry-After`: the smoothed job time × (jobs ahead + 1) / concurrency (≥ 1). */
  retryAfterS(): number {
    const ahead = this.queue.length + this.running;
    return Math.max(1, Math.ceil((this.avgRunMs * (ahead + 1)) / this.opts.concurrency / 1000));
  }

  /**
   * Evict finished jobs, oldest first, until `enough()` holds (it reads the store's live counts).
   * `except` is never evicted (the job whose result is being stored).
   */
  private evictFinished(enough: () => boolean, except?: Job): void {
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== undefined && j !== except).sort((a, b) => a.finishedAt! - b.finishedAt!);
    for (const j of finished) {
      if (enough()) break;
      this.jobs.delete(j.id);
      this.bytes -= j.bytes;
      this.evicted++;
    }
  }

  /** Finished jobs evicted before their TTL to make room. */
  evicted = 0;

  /** The job `id` if `owner` may see it (the same owner), else undefined. */
  get(id: string, owner: string | null): Job | undefined {
    const job = this.jobs.get(id);
    return job && job.owner === owner ? job : undefined;
  }

  /** Cancel a queued job: true if it was queued (now `canceled`), false if it already started or ended. */
  cancel(job: Job): boolean {
    if (job.status !== 'queued') return false;
    this.queue = this.queue.filter((j) => j !== job);
    job.status = 'canceled';
    job.finishedAt = Date.now();
    this.release(job, 0);
    return true;
  }

  /** Jobs held, bytes held, and jobs waiting (for metrics and tests). */
  stats(): { jobs: number; bytes: number; queued: number; running: number } {
    return { jobs: this.jobs.size, bytes: this.bytes, queued: this.queue.length, running: this.running };
  }

  /**
   * Stop (server shutdown): refuse new jobs, and leave every queued job `failed` with a `shutting-down` problem
   * (status 503, `retry_after_s` 1: "submit it again") that `GET /v1/jobs/{id}` shows while the process lives.
   * Running jobs go on; {@link idle} resolves when they have ended (the shutdown's answer deadline ends them
   * with that same problem if they cannot finish). Returns at once, so it never delays the server's close.
   */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    const queued = this.queue;
    this.queue = [];
    for (const job of queued) {
      job.status = 'failed';
      job.finishedAt = Date.now();
      const body = Buffer.from(JSON.stringify({ type: 'https://normgen.dev/problems/shutting-down', title: 'Service Unavailable', status: 503,
        detail: 'the server shut down before this job started; submit it again (to another instance)', retry_after_s: 1 }));
      this.release(job, 0);
      job.result = { statusCode: 503, headers: { 'content-type': 'application/problem+json' }, body };
    }
  }

  /** Resolves once no job is running (after {@link close}, none starts again). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  private pump(): void {
    while (!this.closed && this.running < this.opts.concurrency && this.queue.length) {
      const job = this.queue.shift()!;
      job.status = 'running';
      this.running++;
      const started = Date.now();
      const done = this.run(job).then((result) => {
        this.avgRunMs = 0.7 * this.avgRunMs + 0.3 * (Date.now() - started);
        if (result.body.length > this.opts.maxBytes) {
          // larger than the whole store: not kept (older results are not thrown away for it)
          job.result = { statusCode: 507, headers: { 'content-type': 'application/problem+json' },
            body: Buffer.from(JSON.stringify({ type: 'https://normgen.dev/problems/result-too-large', title: 'Insufficient Storage', status: 507,
              detail: `the result (${result.body.length} bytes) is larger than JOBS_MAX_BYTES (${this.opts.maxBytes}); run the request synchronously` })) };
          job.status = 'failed';
          return;
        }
        job.result = result;
        job.status = result.statusCode < 400 ? 'succeeded' : 'failed';
      }, (err: Error) => {
        job.result = { statusCode: 500, headers: { 'content-type': 'application/problem+json' },
          body: Buffer.from(JSON.stringify({ type: 'about:blank', title: 'Internal Server Error', status: 500, detail: err.message })) };
        job.status = 'failed';
      }).finally(() => {
        job.finishedAt = Date.now();
        this.release(job, job.result?.body.length ?? 0);
        // JOBS_MAX_BYTES holds for results too: older finished results make room
        if (this.bytes > this.opts.maxBytes) this.evictFinished(() => this.bytes <= this.opts.maxBytes, job);
        this.running--;
        this.inflight.delete(done);
        this.pump();
      });
      this.inflight.add(done);
    }
  }

  /** Drop the request body (it ran or never will) and account for the result's bytes instead. */
  private release(job: Job, resultBytes: number): void {
    this.bytes += resultBytes - job.bytes;
    job.bytes = resultBytes;
    job.request = undefined;
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, job] of this.jobs) {
      if (job.finishedAt !== undefined && now - job.finishedAt > this.opts.ttlMs) {
        this.jobs.delete(id);
        this.bytes -= job.bytes;
      }
    }
  }
}
