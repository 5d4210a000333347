/**
 * Model repository: reads every `MODELS_DIR/<name>/manifest.json`, checks each ONNX file's sha256,
 * and opens the models in the inference worker pool.
 *
 * A model is `loading` until every worker has opened its session, then `ready`; a model whose
 * manifest, checksum or session fails is `failed` (with the reason) and never served.
 *
 * What loads at start (issue 32, footprint): the default model of every task (what readiness waits for) and
 * those named by `MODELS` (`all` = every model). Every other model is `available`: listed, and opened on its
 * first request (that request waits for the load, ~0.2–1 s; concurrent first requests share one load), so an
 * idle replica holds only what it serves by default.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { withoutPaths } from './public.js';
import type { FastifyBaseLogger } from 'fastify';
import { Batcher, DEFAULT_BATCHING, type BatcherHooks, type BatchingConfig } from '../inference/batcher.js';
import { InferencePool } from '../inference/pool.js';
import { parseManifest, type Manifest } from './manifest.js';

export type ModelState = 'available' | 'loading' | 'ready' | 'failed';

/** One model of the repository. `dir` and `onnxPath` are filesystem paths and never leave the server. */
export interface ModelEntry {
  name: string;
  manifest: Manifest;
  dir: string;
  onnxPath: string;
  /** The variant served: `fp32` (model.onnx) or `int8` (the manifest's `variants.int8`), by {@link choosePrecision}. */
  precision: 'fp32' | 'int8';
  state: ModelState;
  error?: string;
  loadMs?: number;
  /** Execution provider in use: `cpu` or `cuda:<device id>`. */
  provider?: string;
  /** Time of the warm-up forward pass (ms), run before the model turns ready. */
  warmupMs?: number;
  /** The model's dynamic batcher and bounded queue (set once ready). */
  batcher?: Batcher;
  /** Its `explain.onnx` opened in the workers (issue 34): on the first `POST /v1/explain`, never at start. */
  explainLoad?: Promise<string>;
  /** The load of a model opened on first use (state `available` before it), shared by the requests that wait for it. */
  lazyLoad?: Promise<void>;
}

/**
 * Batching settings of a model: manifest `serving.batching` over {@link DEFAULT_BATCHING}; `enabled=false` forces
 * batch size 1. With `arenaMaxPixels` > 0 (ARENA_MAX_PIXELS) a batch never holds more pixels than that (issue 32):
 * a pass above it runs on the arena-less session, 2–3× slower (bench:peer found c=4 translate throughput at
 * 0.2–0.5× the PyTorch peer's because batches of 256² and 512² photos crossed it), so only a single large image
 * takes that path — the memory case it exists for.
 */
export function batchingOf(manifest: Manifest, enabled: boolean, arenaMaxPixels = 0): BatchingConfig {
  const b = manifest.serving.batching ?? {};
  const maxPixels = b.max_batch_pixels ?? DEFAULT_BATCHING.maxBatchPixels;
  return {
    maxBatchSize: enabled ? b.max_batch_size ?? DEFAULT_BATCHING.maxBatchSize : 1,
    maxBatchPixels: arenaMaxPixels > 0 ? Math.min(maxPixels, arenaMaxPixels) : maxPixels,
    maxQueueDelayMs: enabled ? b.max_queue_delay_ms ?? DEFAULT_BATCHING.maxQueueDelayMs : 0,
    maxQueue: b.max_queue ?? DEFAULT_BATCHING.maxQueue,
    timeoutMs: b.timeout_ms ?? DEFAULT_BATCHING.timeoutMs,
  };
}

/**
 * The most pixels (items × H × W of the first input, as the worker counts them) of one pass the routes send
 * this model: `serving.working_max_side`² for translators and inpainters that set it, `serving.tile`² for a
 * tiled upscaler (the manifest's tile; an `UPSCALE_TILE` above it is not seen here), 0 for NC inputs (a
 * generator's class and noise vectors: never large), Infinity where nothing bounds it (a translator without a working size runs at 768 px, an
 * inpainter at 512). Decides whether the arena-less session for large passes is opened at load.
 */
export function largestPassPixels(manifest: Manifest): number {
  const first = manifest.inputs[0];
  const s = manifest.serving;
  if (first?.layout === 'NC') return 0;
  if (s.tile !== undefined) return s.tile * s.tile;
  if (s.working_max_side !== undefined) return s.working_max_side * s.working_max_side;
  return Infinity;
}

/** A zero input of every model input for the warm-up run: NCHW at 1 x C x 64 x 64 (a multiple of any size_multiple ≤ 64), NC at 1 x C. */
export function warmupFeeds(manifest: Manifest): Record<string, { data: Float32Array; dims: number[] }> {
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const spec of manifest.inputs) {
    const dims = spec.layout === 'NC' ? [1, spec.channels] : [1, spec.channels, 64, 64];
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (spec.layout === 'NC' && spec.range[0] === 0) data[0] = 1; // a valid one-hot class vector
    feeds[spec.name] = { data, dims };
  }
  return feeds;
}

/** Whether this CPU has the int8 dot-product instructions that make onnxruntime's INT8 kernels fast (x86 AVX-512
 * VNNI or AVX-VNNI, from /proc/cpuinfo; false where that file is missing). Read once. */
export const cpuHasVnni: () => boolean = (() => {
  let known: boolean | undefined;
  return () => {
    if (known === undefined) {
      try {
        known = /\b(avx512_vnni|avx_vnni)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
      } catch {
        known = false;
      }
    }
    return known;
  };
})();

/**
 * Which variant of a model to serve (PRECISION): `fp32` always model.onnx; `int8` the manifest's `variants.int8`
 * where there is one (else fp32); `auto` int8 only where it pays and is safe: the CPU provider, a CPU with VNNI,
 * and a variant whose recorded quality loss is within bounds. The explain graphs stay fp32 in every case.
 * @param manifest the model's manifest; @param precision PRECISION; @param cpuProvider the first provider is the CPU;
 * @param vnni the CPU has VNNI ({@link cpuHasVnni}).
 */
export function choosePrecision(manifest: Manifest, precision: 'auto' | 'fp32' | 'int8', cpuProvider: boolean, vnni: boolean): 'fp32' | 'int8' {
  const v = manifest.variants?.int8;
  if (!v || precision === 'fp32') return 'fp32';
  if (precision === 'int8') return 'int8';
  return cpuProvider && vnni && v.within_bounds ? 'int8' : 'fp32';
}

/** `name@version`, with `+int8` when the int8 variant is served: the X-Model header and the metrics' model label. */
export function modelTag(entry: Pick<ModelEntry, 'name' | 'manifest' | 'precision'>): string {
  return `${entry.name}@${entry.manifest.version}${entry.precision === 'int8' ? '+int8' : ''}`;
}

/** sha256 of a file, lowercase hex. @throws the fs error when the file cannot be read. */
export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** The file and sha256 of a model's served variant. */
function servedFile(manifest: Manifest, precision: 'fp32' | 'int8'): { file: string; sha256: string } {
  return precision === 'int8' && manifest.variants?.int8 ? manifest.variants.int8 : manifest.onnx;
}

export class ModelRepository {
  private readonly models = new Map<string, ModelEntry>();
  private loading: Promise<void> | undefined;
  private settled = false;

  constructor(
    private readonly modelsDir: string,
    private readonly pool: InferencePool,
    private readonly log: FastifyBaseLogger,
    private readonly options: { batching: boolean; concurrency: number; hooks?: BatcherHooks; memoryBudgetMb?: number; arenaMaxPixels?: number; preload?: 'all' | string[]; precision?: 'auto' | 'fp32' | 'int8'; cpuProvider?: boolean } = { batching: true, concurrency: 1 },
  ) {}

  /**
   * Scan the folder and load every model (idempotent; returns the same promise on later calls).
   * Never rejects for a bad model: that model is marked `failed` and logged.
   * @throws Error when `modelsDir` itself cannot be read.
   */
  load(): Promise<void> {
    this.loading ??= this.loadAll();
    return this.loading;
  }

  private async loadAll(): Promise<void> {
    const dirs = (await readdir(this.modelsDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    const candidates: ModelEntry[] = [];
    for (const d of dirs) {
      const dir = path.join(this.modelsDir, d);
      const manifestPath = path.join(dir, 'manifest.json');
      let manifest: Manifest;
      try {
        manifest = parseManifest(JSON.parse(await readFile(manifestPath, 'utf8')), manifestPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        this.log.error({ err, dir }, 'model manifest rejected');
        continue;
      }
      const precision = choosePrecision(manifest, this.options.precision ?? 'auto', this.options.cpuProvider ?? true, cpuHasVnni());
      const entry: ModelEntry = { name: manifest.name, manifest, dir, onnxPath: path.join(dir, servedFile(manifest, precision).file), precision, state: 'loading' };
      if (this.models.has(entry.name)) {
        this.log.error({ model: entry.name, dir }, 'duplicate model name; ignored');
        continue;
      }
      this.models.set(entry.name, entry);
      candidates.push(entry);
    }
    // One default per task: two manifests claiming `serving.default` is a packaging mistake that would
    // otherwise be settled silently by name order, so refuse to start and name both.
    for (const task of new Set(candidates.map((e) => e.manifest.task))) {
      const claims = candidates.filter((e) => e.manifest.task === task && e.manifest.serving.default).map((e) => e.name);
      if (claims.length > 1) {
        throw new Error(`models ${claims.join(' and ')} both set serving.default for the ${task} task in ${this.modelsDir}; `
          + 'set "serving": { "default": false } in all manifests but one');
      }
    }
    // At start: each task's default (defaultFor: the manifest's `serving.default`, else the first by name, as
    // nothing is ready yet) and MODELS.
    const preload = this.options.preload ?? 'all';
    const defaults = new Set([...new Set(candidates.map((e) => e.manifest.task))].map((task) => this.defaultFor(task)!.name));
    if (preload !== 'all') {
      for (const name of preload) if (!this.models.has(name)) this.log.warn({ model: name }, 'MODELS names a model that is not in the repository');
    }
    const atStart = candidates.filter((e) => preload === 'all' || defaults.has(e.name) || preload.includes(e.name));
    for (const e of candidates) if (!atStart.includes(e)) e.state = 'available';
    await Promise.all(atStart.map((e) => this.open(e)));
    this.settled = true;
    this.rssAtReadyMb = process.memoryUsage().rss / 2 ** 20;
  }

  /**
   * Open an `available` model (one not loaded at start) and wait for it; a model already loading on first use
   * is waited for; any other state returns at once. Afterwards the entry is `ready` or `failed` (with its
   * error), as after a load at start. The memory budget's baseline (RSS at ready) is raised to the RSS after
   * the load, so the budget counts the new model's weights. Never rejects.
   */
  ensureLoaded(entry: ModelEntry): Promise<void> {
    if (entry.state === 'available') {
      entry.state = 'loading';
      entry.lazyLoad = this.open(entry).then(() => {
        if (this.rssAtReadyMb !== undefined) this.rssAtReadyMb = Math.max(this.rssAtReadyMb, process.memoryUsage().rss / 2 ** 20);
        this.log.info({ model: `${entry.name}@${entry.manifest.version}`, state: entry.state }, 'model opened on first use');
      });
    }
    return entry.lazyLoad ?? Promise.resolve();
  }

  private async open(entry: ModelEntry): Promise<void> {
    const t0 = performance.now();
    try {
      const want = servedFile(entry.manifest, entry.precision);
      const digest = await sha256File(entry.onnxPath);
      if (digest !== want.sha256) {
        throw new Error(`sha256 mismatch for ${want.file}: manifest ${want.sha256}, file ${digest}`);
      }
      const ep = await this.pool.load(entry.name, entry.onnxPath, warmupFeeds(entry.manifest), entry.manifest.serving.intra_op_threads, largestPassPixels(entry.manifest));
      entry.provider = ep.provider;
      if (ep.fallback) this.log.warn({ model: entry.name }, ep.fallback);
      entry.loadMs = Math.round(performance.now() - t0);
      entry.warmupMs = ep.warmupMs === undefined ? undefined : Math.round(ep.warmupMs);
      entry.batcher = new Batcher(this.pool, entry.name, entry.manifest.outputs[0]!.name, batchingOf(entry.manifest, this.options.batching, this.options.arenaMaxPixels), this.options.concurrency, this.options.hooks);
      entry.state = 'ready';
      this.log.info({ model: `${entry.name}@${entry.manifest.version}`, task: entry.manifest.task, loadMs: entry.loadMs, warmupMs: entry.warmupMs, provider: entry.provider, batching: entry.batcher.config }, 'model loaded and warmed up');
    } catch (err) {
      entry.state = 'failed';
      // the public message names files, never their paths (the log keeps the whole error)
      entry.error = withoutPaths((err as Error).message);
      this.log.error({ model: entry.name, err }, 'model failed to load');
    }
  }

  /**
   * Reload one model from its folder (new manifest and ONNX file): checksum, open and warm up the new
   * session in every worker, then swap. The old version keeps serving until then, and keeps serving if
   * the new one fails (its error is returned, the entry keeps its state).
   * @returns the new version and timings. @throws Error for an unknown model or a failed reload.
   */
  async reload(name: string): Promise<{ name: string; version: string; previous: string; loadMs: number }> {
    const entry = this.models.get(name);
    if (!entry) throw new Error(`unknown model ${name}`);
    const t0 = performance.now();
    const manifestPath = path.join(entry.dir, 'manifest.json');
    const manifest = parseManifest(JSON.parse(await readFile(manifestPath, 'utf8')), manifestPath);
    if (manifest.name !== name) throw new Error(`${manifestPath} now names model ${manifest.name}, not ${name}`);
    const precision = choosePrecision(manifest, this.options.precision ?? 'auto', this.options.cpuProvider ?? true, cpuHasVnni());
    const want = servedFile(manifest, precision);
    const onnxPath = path.join(entry.dir, want.file);
    const digest = await sha256File(onnxPath);
    if (digest !== want.sha256) throw new Error(`sha256 mismatch for ${want.file}: manifest ${want.sha256}, file ${digest}`);
    const ep = await this.pool.load(name, onnxPath, warmupFeeds(manifest), manifest.serving.intra_op_threads, largestPassPixels(manifest));
    const previous = entry.manifest.version;
    Object.assign(entry, { manifest, onnxPath, precision, provider: ep.provider, loadMs: Math.round(performance.now() - t0), warmupMs: ep.warmupMs === undefined ? undefined : Math.round(ep.warmupMs) });
    if (entry.state !== 'ready' || !entry.batcher) {
      entry.batcher = new Batcher(this.pool, name, manifest.outputs[0]!.name, batchingOf(manifest, this.options.batching, this.options.arenaMaxPixels), this.options.concurrency, this.options.hooks);
    }
    entry.state = 'ready';
    delete entry.error;
    this.log.info({ model: `${name}@${manifest.version}`, previous, loadMs: entry.loadMs }, 'model reloaded');
    return { name, version: manifest.version, previous, loadMs: entry.loadMs! };
  }

  /**
   * Open a model's `explain.onnx` (its graph with the PONO moments and AN layouts as extra outputs; manifest
   * `explain`) in the workers on first use, after checking its sha256; later calls share that load.
   * @returns the pool name to run it under (`<name>#explain`).
   * @throws Error when the model has no `explain` entry, the file's checksum differs, or it cannot be opened
   *   (a failed load is forgotten, so the next call tries again).
   */
  explainModel(entry: ModelEntry): Promise<string> {
    const ex = entry.manifest.explain;
    if (!ex) return Promise.reject(new Error(`model ${entry.name} has no explain graph`));
    entry.explainLoad ??= (async () => {
      const file = path.join(entry.dir, ex.file);
      const digest = await sha256File(file);
      if (digest !== ex.sha256) throw new Error(`sha256 mismatch for ${ex.file}`);
      const poolName = `${entry.name}#explain`;
      await this.pool.load(poolName, file, undefined, entry.manifest.serving.intra_op_threads);
      this.log.info({ model: `${entry.name}@${entry.manifest.version}` }, 'explain graph loaded');
      return poolName;
    })().catch((err) => { entry.explainLoad = undefined; throw err; });
    return entry.explainLoad;
  }

  /** One pass of a loaded explain graph, fetching only `fetch` (see {@link InferencePool.runOutputs}). */
  runExplain(poolName: string, feeds: Record<string, { data: Float32Array; dims: number[] }>, fetch: string[]) {
    return this.pool.runOutputs(poolName, feeds, fetch);
  }

  /** Resident memory (MiB) once the models were loaded: the baseline of the memory budget. */
  rssAtReadyMb: number | undefined;

  /**
   * MiB one forward pass may add under MEMORY_BUDGET_MB: (budget − RSS at ready) / WORKERS, or undefined
   * when there is no budget (0) or the models are not loaded yet.
   */
  passBudgetMb(): number | undefined {
    const budget = this.options.memoryBudgetMb ?? 0;
    if (budget <= 0 || this.rssAtReadyMb === undefined) return undefined;
    return (budget - this.rssAtReadyMb) / Math.max(1, this.options.concurrency);
  }

  /** The model called `name`, or undefined. */
  get(name: string): ModelEntry | undefined {
    return this.models.get(name);
  }

  /** Every model, sorted by name. */
  list(): ModelEntry[] {
    return [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The default model for a task: the one with `serving.default`, else the first ready one by name. */
  defaultFor(task: Manifest['task']): ModelEntry | undefined {
    const ofTask = this.list().filter((m) => m.manifest.task === task);
    return ofTask.find((m) => m.manifest.serving.default) ?? ofTask.find((m) => m.state === 'ready') ?? ofTask[0];
  }

  /**
   * True once loading finished, the default model of every task is `ready` and the workers are up (what
   * /readyz reports). A failed non-default model does not make the replica unready: it answers 503 on its
   * own routes and on `/v2/models/{name}/ready`.
   */
  isReady(): boolean {
    if (!this.settled || this.models.size === 0 || !this.pool.healthy()) return false;
    const tasks = new Set(this.list().map((m) => m.manifest.task));
    return [...tasks].every((task) => this.defaultFor(task)?.state === 'ready');
  }
}
