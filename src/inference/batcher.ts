/**
 * Dynamic batching with a bounded queue, one {@link Batcher} per model (Triton's "dynamic batcher"
 * idea in a few lines): requests for the same model whose inputs have the same non-batch dims and that
 * arrive within `maxQueueDelayMs` of the first run as one forward pass of at most `maxBatchSize` items
 * (summed over the requests' own batch dims) and at most `maxBatchPixels` pixels (items × H × W of the
 * first input, summed; a request larger than that alone still runs, alone), concatenated along dim 0
 * (NCHW / NC) and split back. The pixel budget bounds a pass's memory: activations grow with the pixels
 * in flight (colorize-pono 2.0.0: ≈1.5 GB for one 1024² image), so eight 1024² uploads never share a
 * pass.
 *
 * Limits: at most `maxQueue` requests wait per model (more → {@link QueueFullError}, which the routes
 * answer with 503 + `Retry-After`); a request still waiting at its deadline is dropped with
 * {@link DeadlineError} (504). At most `concurrency` batches of a model run at once (the pool's
 * worker count), so the queue, not the workers, absorbs bursts.
 *
 * Load shedding (issue 28): the batcher keeps a smoothed cost of its passes in ms per megapixel
 * (exponential moving average, α = 0.3, seeded by the first pass). A new request whose expected wait —
 * the pixels queued and running ahead of it, plus its own, times that cost, over `concurrency` — is past
 * its deadline is refused at once with {@link QueueFullError} whose `retryAfterS` is that wait, instead of
 * waiting to time out.
 *
 * Shutdown (issue 43), two steps: {@link Batcher.close} rejects every queued request that has not run a pass
 * yet with {@link ShuttingDownError} and refuses new ones, while a request that already ran one (the next tile
 * of an upscale: `continuation`) is still admitted, so that work already under way can finish;
 * {@link Batcher.abort} (the shutdown's answer deadline) rejects everything left, the requests of the passes
 * running now included (their passes end in the worker and their outputs are dropped: onnxruntime cannot be
 * interrupted), so every request is answered before the process exits.
 */
import { tensorBuffers } from './buffers.js';
import type { Feeds } from './messages.js';
import type { InferencePool, RunResult } from './pool.js';

/** Per-model batching settings (manifest `serving.batching`, with these defaults). */
export interface BatchingConfig { maxBatchSize: number; maxBatchPixels: number; maxQueueDelayMs: number; maxQueue: number; timeoutMs: number }
export const DEFAULT_BATCHING: BatchingConfig = { maxBatchSize: 8, maxBatchPixels: 1024 * 1024, maxQueueDelayMs: 5, maxQueue: 32, timeoutMs: 30_000 };

/** Pixels of a request: its items × the product of the first input's dims after N and C (1 per item for NC inputs). */
export function pixelsOf(feeds: Feeds): number {
  const dims = Object.values(feeds)[0]!.dims;
  return dims.slice(2).reduce((a, b) => a * b, dims[0]!);
}

/** The model's queue is full. `retryAfterS` is a hint for the `Retry-After` header (seconds). */
export class QueueFullError extends Error {
  constructor(readonly model: string, readonly depth: number, readonly retryAfterS: number, message?: string) {
    super(message ?? `model ${model}: ${depth} requests are already queued`);
  }
}

/** The server is shutting down: queued and new requests are refused (503, retry on another replica). */
export class ShuttingDownError extends Error {
  constructor(readonly model: string) { super(`model ${model}: the server is shutting down`); }
}

/** The caller gave up (its client disconnected) before the run started: it was taken out of the queue. */
export class CanceledError extends Error {
  constructor(readonly model: string) { super(`model ${model}: the request was canceled before its run started`); }
}

/** A request waited in the queue past its deadline. */
export class DeadlineError extends Error {
  /** @param retryAfterS the queue's expected wait now, in whole seconds (≥ 1), for `Retry-After`. */
  constructor(readonly model: string, readonly waitedMs: number, readonly retryAfterS = 1) {
    super(`model ${model}: the request waited ${Math.round(waitedMs)} ms in the queue, past its deadline`);
  }
}

interface Pending {
  feeds: Feeds;
  items: number;
  pixels: number;
  key: string;
  /** Sent by a request that already ran a pass (admitted while the batcher closes). */
  continuation: boolean;
  enqueuedAt: number;
  deadline: number;
  resolve: (r: RunResult & { batchSize: number; queueMs: number }) => void;
  reject: (e: Error) => void;
}

/** Observability hooks (prom-client in plugins/metrics.ts). */
export interface BatcherHooks {
  onBatch?: (model: string, items: number, requests: number, inferMs: number) => void;
  onQueueDepth?: (model: string, depth: number) => void;
  /** Forward passes of the model running now (at dispatch and when one ends). */
  onRunning?: (model: string, running: number) => void;
}

export class Batcher {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  /** Pixels of the passes running now. */
  private runningPixels = 0;
  private closed = false;
  /** After {@link abort}: nothing is admitted, not even a continuation. */
  private aborted = false;
  /** The requests of the passes running now (rejected by {@link abort}). */
  private readonly inPass = new Set<Pending>();
  /** Smoothed cost of a pass, ms per megapixel (undefined until the first pass). */
  msPerMp: number | undefined;
  /** Forward passes run so far (tests compare it with the request count). */
  runs = 0;
  /** Requests refused at once because their expected wait was past their deadline. */
  shed = 0;

  /**
   * @param model model name in the pool. @param outputName output to return. @param config batching limits.
   * @param concurrency batches of this model allowed to run at once (≥ 1).
   */
  constructor(
    private readonly pool: InferencePool,
    readonly model: string,
    private readonly outputName: string | undefined,
    readonly config: BatchingConfig,
    private readonly concurrency: number,
    private readonly hooks: BatcherHooks = {},
  ) {}

  get depth(): number { return this.queue.length; }

  /**
   * Expected wait in ms before a request of `pixels` more pixels would finish: the queued and running
   * pixels plus its own, times the smoothed ms per megapixel, over `concurrency`. 0 until a pass was timed.
   */
  expectedWaitMs(pixels = 0): number {
    if (this.msPerMp === undefined) return 0;
    const queued = this.queue.reduce((s, p) => s + p.pixels, 0);
    return ((queued + this.runningPixels + pixels) / 1e6) * this.msPerMp / this.concurrency;
  }

  /** `Retry-After` in whole seconds for the current expected wait (≥ 1). */
  retryAfterS(): number {
    return Math.max(1, Math.ceil(this.expectedWaitMs() / 1000));
  }

  /**
   * Shutdown: refuse new requests and reject every queued one with {@link ShuttingDownError} now; passes
   * already running finish and resolve their requests.
   */
  close(): void {
    this.closed = true;
    const refused = this.queue.filter((p) => !p.continuation);
    this.queue = this.queue.filter((p) => p.continuation);
    if (!this.queue.length && this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    for (const p of refused) p.reject(new ShuttingDownError(this.model));
    this.hooks.onQueueDepth?.(this.model, this.queue.length);
  }

  /**
   * The shutdown's answer deadline: reject every request still queued or in a running pass with
   * {@link ShuttingDownError} (a running pass ends in its worker; its output is dropped) and admit nothing more.
   */
  abort(): void {
    this.close();
    this.aborted = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const left = [...this.queue, ...this.inPass];
    this.queue = [];
    this.inPass.clear();
    for (const p of left) p.reject(new ShuttingDownError(this.model));
    this.hooks.onQueueDepth?.(this.model, 0);
  }

  /** Passes of this model running now. */
  get runningPasses(): number { return this.running; }
  /** Queued requests removed because their caller gave up before their run started. */
  canceled = 0;

  /**
   * Queue one request (its own batch dim may be > 1) and resolve with its slice of the batch's output.
   * With `signal`, a request still queued when it aborts (its client disconnected) leaves the queue and
   * is never run, freeing its slot; once its batch started, the run completes. `continuation`: the caller already
   * ran a pass for this request (it is admitted after {@link close}, not after {@link abort}).
   * @throws ShuttingDownError after close (abort) or when abort comes while it waits or runs; QueueFullError when `maxQueue` requests already wait; DeadlineError after `timeoutMs` in the
   *   queue; CanceledError when `signal` aborted first; the pool's Error when onnxruntime rejects the batch.
   */
  run(feeds: Feeds, timeoutMs = this.config.timeoutMs, signal?: AbortSignal, continuation = false): Promise<RunResult & { batchSize: number; queueMs: number }> {
    if (signal?.aborted) return Promise.reject(new CanceledError(this.model));
    if (this.aborted || (this.closed && !continuation)) return Promise.reject(new ShuttingDownError(this.model));
    if (this.queue.length >= this.config.maxQueue) {
      return Promise.reject(new QueueFullError(this.model, this.queue.length, this.retryAfterS()));
    }
    // shed at once what could not finish before its deadline (never the only request: it runs alone)
    const wait = this.expectedWaitMs(pixelsOf(feeds));
    if ((this.queue.length > 0 || this.running > 0) && wait > timeoutMs) {
      this.shed++;
      return Promise.reject(new QueueFullError(this.model, this.queue.length, Math.max(1, Math.ceil(wait / 1000)),
        `model ${this.model}: the expected wait (${Math.round(wait / 1000)} s for the ${this.queue.length} queued and ${this.running} running passes) is past the ${Math.round(timeoutMs / 1000)} s deadline`));
    }
    const first = Object.values(feeds)[0]!;
    const key = Object.entries(feeds).map(([n, t]) => `${n}:${t.dims.slice(1).join('x')}`).sort().join('|');
    return new Promise((resolve, reject) => {
      const now = performance.now();
      const pending: Pending = { feeds, items: first.dims[0]!, pixels: pixelsOf(feeds), key, continuation, enqueuedAt: now, deadline: now + timeoutMs, resolve, reject };
      this.queue.push(pending);
      signal?.addEventListener('abort', () => {
        const i = this.queue.indexOf(pending);
        if (i < 0) return; // already dispatched: let it finish
        this.queue.splice(i, 1);
        this.canceled++;
        this.hooks.onQueueDepth?.(this.model, this.queue.length);
        reject(new CanceledError(this.model));
      }, { once: true });
      this.hooks.onQueueDepth?.(this.model, this.queue.length);
      this.schedule();
    });
  }

  private schedule(): void {
    this.expire();
    if (this.running >= this.concurrency || this.queue.length === 0) return;
    const head = this.queue[0]!;
    const same = this.queue.filter((p) => p.key === head.key);
    const ready = same.reduce((s, p) => s + p.items, 0);
    const readyPixels = same.reduce((s, p) => s + p.pixels, 0);
    const waited = performance.now() - head.enqueuedAt;
    // Nothing running: go at once (no request is about to join one that waits for a free worker; issue 32).
    // While passes run, requests queue and leave together as the next batch.
    if (this.running === 0 || ready >= this.config.maxBatchSize || readyPixels >= this.config.maxBatchPixels || waited >= this.config.maxQueueDelayMs
      || this.config.maxBatchSize <= 1) {
      this.dispatch();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.schedule(); }, Math.max(0, this.config.maxQueueDelayMs - waited));
    }
  }

  private expire(): void {
    const now = performance.now();
    const late = this.queue.filter((p) => p.deadline <= now);
    if (!late.length) return;
    this.queue = this.queue.filter((p) => p.deadline > now);
    for (const p of late) p.reject(new DeadlineError(this.model, now - p.enqueuedAt, this.retryAfterS()));
    this.hooks.onQueueDepth?.(this.model, this.queue.length);
  }

  private dispatch(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const head = this.queue[0]!;
    const batch: Pending[] = [];
    let items = 0;
    let pixels = 0;
    for (const p of this.queue) {
      if (p.key !== head.key) continue;
      if (batch.length > 0 && (items + p.items > this.config.maxBatchSize || pixels + p.pixels > this.config.maxBatchPixels)) break;
      batch.push(p);
      items += p.items;
      pixels += p.pixels;
    }
    this.queue = this.queue.filter((p) => !batch.includes(p));
    for (const p of batch) this.inPass.add(p);
    this.hooks.onQueueDepth?.(this.model, this.queue.length);
    // A batch of one request runs on that request's own tensors, and gets the output as it is: no
    // concatenation or slice copies (at 512² these fresh multi-MB buffers cost ~10 ms each in page faults
    // with MALLOC_MMAP_THRESHOLD_ set; issue 32).
    let feeds: Feeds = head.feeds;
    if (batch.length > 1) {
      feeds = {};
      for (const name of Object.keys(head.feeds)) {
        const parts = batch.map((p) => p.feeds[name]!);
        const data = new Float32Array(parts.reduce((s, t) => s + t.data.length, 0));
        let off = 0;
        for (const t of parts) { data.set(t.data, off); off += t.data.length; }
        feeds[name] = { data, dims: [items, ...parts[0]!.dims.slice(1)] };
      }
      // the requests' own tensors are copied: their buffers can serve the next requests (buffers.ts)
      for (const p of batch) for (const t of Object.values(p.feeds)) tensorBuffers.give(t.data.buffer as ArrayBuffer);
    }
    this.running++;
    this.hooks.onRunning?.(this.model, this.running);
    this.runningPixels += pixels;
    this.runs++;
    const started = performance.now();
    // The pass's bookkeeping is undone before its requests are answered, so a caller that sends its next
    // request as soon as it has this answer finds the model idle (and runs at once) instead of queueing
    // behind a pass that already ended.
    const settle = () => {
      for (const p of batch) this.inPass.delete(p);
      this.running--;
      this.hooks.onRunning?.(this.model, this.running);
      this.runningPixels -= pixels;
    };
    this.pool.run(this.model, feeds, this.outputName).then((out) => {
      settle();
      try {
        this.hooks.onBatch?.(this.model, items, batch.length, out.inferMs);
        const cost = out.inferMs / Math.max(pixels / 1e6, 1e-3);
        this.msPerMp = this.msPerMp === undefined ? cost : 0.7 * this.msPerMp + 0.3 * cost;
        const per = out.data.length / out.dims[0]!;
        let at = 0;
        for (const p of batch) {
          const data = batch.length === 1 ? out.data : out.data.slice(at * per, (at + p.items) * per);
          p.resolve({ data, dims: [p.items, ...out.dims.slice(1)], inferMs: out.inferMs, batchSize: items, queueMs: started - p.enqueuedAt });
          at += p.items;
        }
      } finally {
        if (!this.aborted) this.schedule();
      }
    }, (err: Error) => {
      settle();
      for (const p of batch) p.reject(err);
      if (!this.aborted) this.schedule();
    });
  }
}
