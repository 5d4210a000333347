/**
 * A small pool of inference worker threads (`worker.ts`), each holding a session for every model.
 *
 * `run` sends a float32 NCHW tensor to the least busy worker and resolves with the model's output;
 * the input buffer is transferred (the caller must not reuse it). Size: `WORKERS` workers ×
 * `INTRA_OP_THREADS` onnxruntime threads each; on a 2-core machine, 1 × 2 or 2 × 1.
 *
 * Crash recovery (issue 19): when a worker dies (native abort, out of memory, `process.exit`), its
 * pending runs reject at once with {@link WorkerCrashedError} (the routes answer 503), a replacement
 * worker starts and re-opens every loaded model, and until it is ready `healthy()` is false (`/readyz`
 * 503) and runs go to the other workers (or fail fast with WorkerCrashedError when none is left).
 * `onRestart` counts restarts (metrics).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { tensorBuffers } from './buffers.js';
import type { Feeds, ProviderChoice, WorkerReply, WorkerRequest } from './messages.js';

export interface RunResult { data: Float32Array; dims: number[]; inferMs: number }

interface Slot { worker: Worker; busy: number; ready: boolean; pending: Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }> }

/** A run refused because the pool is closing (the server is shutting down). */
export class PoolClosedError extends Error {
  override name = 'PoolClosedError';
}

/** A run lost because its worker thread died (or no worker is up); retry shortly. */
export class WorkerCrashedError extends Error {
  override name = 'WorkerCrashedError';
}

/** Distributive Omit, so each request variant keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** Where the worker's code lives: `worker.js` beside a compiled build, else `worker.ts` (run through tsx). */
function workerUrl(): URL {
  const js = new URL('./worker.js', import.meta.url);
  return existsSync(fileURLToPath(js)) ? js : new URL('./worker.ts', import.meta.url);
}

export class InferencePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** Every model opened so far (re-opened in a replacement worker). */
  private readonly loaded = new Map<string, { onnxPath: string; warmup?: Feeds; threads: number; largeTwin: boolean }>();
  /** Workers replaced after a crash, since start. */
  restarts = 0;
  onRestart?: (reason: string) => void;

  /**
   * @param size number of worker threads (≥ 1).
   * @param intraOpThreads onnxruntime intra-op threads per session (≥ 1).
   */
  constructor(size: number, private readonly intraOpThreads: number, private readonly ep: ProviderChoice = { providers: ['cpu'], cudaDeviceId: 0 },
    /** Passes above this many pixels run on an arena-less CPU session (see worker.ts); 0 = never. */
    private readonly arenaMaxPixels = 0) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn(i, true));
  }

  private spawn(index: number, ready: boolean): Slot {
    const url = workerUrl();
    // A .ts worker (development, tests) registers tsx's loader inside the thread first (Node 20
    // does not carry the main thread's --import hooks into workers); a compiled .js worker does not need it.
    const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
    const worker = url.pathname.endsWith('.ts') ? new Worker(bootstrap, { eval: true }) : new Worker(url);
    const slot: Slot = { worker, busy: 0, ready, pending: new Map() };
    worker.on('message', (reply: WorkerReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      slot.busy--;
      p.resolve(reply);
    });
    let dead = false;
    const died = (why: string) => {
      if (dead || this.closed) return;
      dead = true;
      slot.ready = false;
      this.failAll(slot, new WorkerCrashedError(`the inference worker died (${why}); retry shortly`));
      this.replace(index, why);
    };
    worker.on('error', (err) => died(err.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    return slot;
  }

  /** Start a replacement for slot `index` and re-open every loaded model in it; ready once they are. */
  private replace(index: number, why: string): void {
    this.restarts++;
    this.onRestart?.(why);
    const slot = this.spawn(index, false);
    this.slots[index] = slot;
    const reopen = async () => {
      for (const [model, m] of this.loaded) {
        const reply = await this.send(slot, { kind: 'load', model, onnxPath: m.onnxPath, intraOpThreads: m.threads, ep: this.ep, arenaMaxPixels: this.arenaMaxPixels, largeTwin: m.largeTwin, ...(m.warmup ? { warmup: m.warmup } : {}) });
        if (!reply.ok) throw new Error(reply.error);
      }
    };
    reopen().then(() => { if (this.slots[index] === slot) slot.ready = true; }, () => { /* it died again: its own exit handler replaces it */ });
  }

  private failAll(slot: Slot, err: Error): void {
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
    slot.busy = 0;
  }

  /** True when every worker is up with every model (false while a replacement starts). */
  healthy(): boolean {
    return this.slots.every((s) => s.ready);
  }

  /**
   * Test hook: make worker `index` exit as a crash would (honoured only when the process runs with
   * NORMGEN_TEST_HOOKS=1, which the workers inherit).
   */
  crashForTest(index = 0): void {
    this.slots[index]!.worker.postMessage({ kind: 'crash', id: this.nextId++ });
  }

  private send(slot: Slot, msg: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new PoolClosedError('the server is shutting down'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.busy++;
      slot.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /**
   * Open `onnxPath` as model `model` in every worker, with the configured execution providers; with
   * `warmup`, each worker runs it once on the new session before the session replaces any old one
   * (so a reload keeps serving the old version until the new one is warm).
   * `maxThreads` (the manifest's `serving.intra_op_threads`) caps this model's intra-op threads below the
   * pool's. `maxPassPixels` (items × H × W of the largest pass the routes send it; Infinity when unbounded):
   * above the pool's `arenaMaxPixels`, the workers also open and warm the arena-less session for large passes
   * now, so that the first large request does not pay for it.
   * @returns the provider in use (`cuda:<id>` or `cpu`), whether the large-pass session was opened now
   *   (`largeTwin`) and, when CUDA was asked for but could not be used, the reason for the CPU fallback.
   * @throws Error with onnxruntime's message when any worker cannot open it (bad or corrupt file).
   */
  async load(model: string, onnxPath: string, warmup?: Feeds, maxThreads?: number, maxPassPixels = 0): Promise<{ provider: string; fallback?: string; warmupMs?: number; largeTwin: boolean }> {
    const threads = Math.max(1, Math.min(this.intraOpThreads, maxThreads ?? this.intraOpThreads));
    const largeTwin = this.arenaMaxPixels > 0 && maxPassPixels > this.arenaMaxPixels;
    // each worker gets its own copy of the warm-up inputs (they are copied, not transferred)
    const replies = await Promise.all(this.slots.map((s) => this.send(s, { kind: 'load', model, onnxPath, intraOpThreads: threads, ep: this.ep, arenaMaxPixels: this.arenaMaxPixels, largeTwin, ...(warmup ? { warmup } : {}) })));
    const bad = replies.find((r) => !r.ok);
    if (bad && !bad.ok) throw new Error(bad.error);
    this.loaded.set(model, { onnxPath, threads, largeTwin, ...(warmup ? { warmup } : {}) });
    const first = replies[0] as { provider?: string; fallback?: string; warmupMs?: number; largeTwin?: boolean };
    return { provider: first.provider ?? 'cpu', largeTwin: first.largeTwin === true, ...(first.fallback ? { fallback: first.fallback } : {}), ...(first.warmupMs !== undefined ? { warmupMs: first.warmupMs } : {}) };
  }

  /**
   * One forward pass.
   * @param feeds named float32 NCHW inputs, e.g. `{ gray: { data, dims: [1, 1, H, W] } }`; their buffers
   *   are transferred to the worker (do not reuse them) and come back to the recycler of `buffers.ts`.
   * @param outputName the output to return (default: the model's first output).
   * @returns that output tensor (float32 NCHW), its dims and the session.run time in ms.
   * @throws Error when the model is not loaded or onnxruntime rejects the inputs; WorkerCrashedError
   *   when the worker died during the run, or no worker is ready.
   */
  async run(model: string, feeds: Feeds, outputName?: string): Promise<RunResult> {
    const ready = this.slots.filter((s) => s.ready);
    if (ready.length === 0) throw new WorkerCrashedError('no inference worker is ready (one is restarting); retry shortly');
    const slot = ready.reduce((a, b) => (b.busy < a.busy ? b : a));
    // (a set: two inputs that are views of one buffer transfer it once)
    const transfer = [...new Set(Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer))];
    const reply = await this.send(slot, { kind: 'run', model, feeds, outputName }, transfer);
    if (!reply.ok) throw new Error(reply.error);
    for (const b of reply.returned ?? []) tensorBuffers.give(b);
    return { data: reply.data!, dims: reply.dims!, inferMs: reply.inferMs! };
  }

  /**
   * One forward pass that computes and returns only the outputs named in `fetch` (onnxruntime skips the rest
   * of the graph), e.g. the PONO moments and AN layouts of a model's `explain.onnx`.
   * @returns `{ outputs: { name: { data, dims } }, inferMs }`.
   * @throws as {@link run}; Error when an output name is unknown.
   */
  async runOutputs(model: string, feeds: Feeds, fetch: string[]): Promise<{ outputs: Record<string, { data: Float32Array; dims: number[] }>; inferMs: number }> {
    const ready = this.slots.filter((s) => s.ready);
    if (ready.length === 0) throw new WorkerCrashedError('no inference worker is ready (one is restarting); retry shortly');
    const slot = ready.reduce((a, b) => (b.busy < a.busy ? b : a));
    const transfer = Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer);
    const reply = await this.send(slot, { kind: 'run', model, feeds, fetch }, transfer);
    if (!reply.ok) throw new Error(reply.error);
    for (const b of reply.returned ?? []) tensorBuffers.give(b);
    return { outputs: reply.outputs!, inferMs: reply.inferMs! };
  }

  /**
   * Stop: refuse new runs, let the runs already in the workers return (their callers may have gone: a client
   * that disconnected, or a request answered 503 at the shutdown's answer deadline), then terminate the
   * workers. Terminating a worker (or exiting the process) in the middle of onnxruntime's `run` aborts the
   * whole process natively ("terminate called after throwing an instance of 'Napi::Error'"), hence the wait,
   * which is unbounded here: each pass is bounded by the routes, and `server.ts` owns the overall timeout.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /** Runs (passes, loads) sent to the workers and not returned yet. */
  pending(): number {
    return this.slots.reduce((n, s) => n + s.pending.size, 0);
  }

  /** Resolves once no run is inside a worker (each pass is bounded: the routes cap its pixels). */
  async idle(): Promise<void> {
    while (this.pending() > 0) await new Promise((r) => setTimeout(r, 10));
  }
}
