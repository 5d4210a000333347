/**
 * Service configuration: environment variables → a typed, validated {@link Config}, read once at start.
 *
 * Every variable, its default and meaning: {@link ENV_HELP} (printed by `npm start -- --help`).
 *
 * @throws ConfigError with one line per bad variable, naming it and the accepted values.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variables: `[name, default, meaning]` (`npm start -- --help` prints them; docs/configuration.md explains them). */
export const ENV_HELP: readonly (readonly [string, string, string])[] = [
  ['`PORT`', '8080', 'TCP port (0–65535)'],
  ['`HOST`', '`0.0.0.0`', 'listen address'],
  ['`MODELS_DIR`', '`<repo>/models`', 'model repository: one folder per model with `manifest.json`'],
  ['`MODELS`', '(none)', 'models loaded at start besides each task\'s default: a comma list of names, or `all`; the others load on their first request (`GET /v1/models` state `available`)'],
  ['`MAX_UPLOAD_BYTES`', '33554432 (32 MiB)', 'largest multipart file, in bytes (larger → 413)'],
  ['`MAX_PIXELS`', '50000000 (50 MP)', 'decode limit: largest width×height, read from the header before decoding (→ 413); models run at their working size'],
  ['`WORKERS`', '1', 'inference worker threads (1–64), each with its own sessions'],
  ['`INTRA_OP_THREADS`', 'cores / WORKERS', 'onnxruntime intra-op threads per worker session'],
  ['`LOG_LEVEL`', '`info`', 'pino level'],
  ['`EXECUTION_PROVIDERS`', '`cpu`', 'onnxruntime providers in order: `cuda,cpu` tries CUDA, logs and falls back to CPU'],
  ['`CUDA_DEVICE_ID`', '0', 'GPU for the CUDA provider'],
  ['`PRECISION`', '`auto`', '`fp32`, `int8` (a model\'s `model.int8.onnx` where it has one) or `auto`: int8 on the CPU provider of a CPU with VNNI (AVX-512 VNNI or AVX-VNNI) for models whose int8 quality loss is within bounds, else fp32'],
  ['`API_KEYS`', '(none)', 'comma-separated bearer tokens; when set, every route needs one unless it is marked public (health, readiness, docs, metrics, the page; decided on the matched route, deny by default); admin routes always need one'],
  ['`MAX_EVENT_LOOP_DELAY_MS`', '1000', 'load shedding (@fastify/under-pressure): 503 above this event-loop delay'],
  ['`MAX_HEAP_USED_BYTES`', '0 (off)', 'load shedding above this V8 heap use'],
  ['`BATCHING`', '1', '1: dynamic batching per the manifests; 0: batch size 1 (queues still bounded)'],
  ['`CORS_ORIGINS`', '(none: CORS off)', 'comma list of origins allowed by CORS (`*` for any); exposes X-Model, X-Seed, Retry-After, Location'],
  ['`RATE_LIMIT_PER_MIN`', '0 (off)', 'requests per minute per configured API key (else per client IP: invented tokens share it) on every non-public route; 429 above'],
  ['`JOB_TTL_S`', '3600', 'async jobs (`Prefer: respond-async`): how long a finished job\'s result is kept'],
  ['`JOBS_MAX` / `JOBS_MAX_BYTES`', '100 / 256 MiB', 'async jobs held at once, and bytes of their bodies + results (503 above)'],
  ['`JOBS_PER_KEY`', 'JOBS_MAX / 4', 'async jobs one API key (or, without API_KEYS, everyone together) may have queued or running (429 above)'],
  ['`JOB_CONCURRENCY`', '2', 'async jobs run at once (the rest wait, and can be canceled)'],
  ['`REQUEST_TIMEOUT_MS`', '120000', 'whole request (headers + body) must arrive within this (408 and closed; 0 = off)'],
  ['`HEADERS_TIMEOUT_MS`', '10000', 'request headers must arrive within this (slow-loris; 408 and closed)'],
  ['`KEEP_ALIVE_TIMEOUT_MS`', '72000', 'an idle keep-alive connection is closed after this (above common 60 s load-balancer idle timeouts)'],
  ['`KSERVE_MAX_PIXELS`', '65536 (256²)', 'KServe `/v2/.../infer`: largest batch × H × W of one request\'s JSON tensors, checked on the declared shape before `data` is read; the route\'s body limit follows (20 B a value, 4 channels)'],
  ['`SHUTDOWN_TIMEOUT_MS`', '30000', 'on SIGTERM/SIGINT (plugins/drain.ts): readiness 503 and new connections refused at once, queued requests 503; requests under way finish, and whatever is still running at this minus the pass margin (5 s, or a third of it if smaller) is answered 503 + Retry-After; the process exits within this (sized for a 4096² upscale, ~8 s alone on 2 cores, with others in flight)'],
  ['`DEADLINE_MS`', '60000', 'every request\'s compute deadline from its arrival: queue waits and passes (all tiles of an upscale together); 504 past it (0 = only the queue\'s own timeout)'],
  ['`ARENA_MAX_PIXELS`', '262144 (512²)', 'passes with more pixels run on an arena-less onnxruntime session, so their memory is given back after them (0 = always the arena)'],
  ['`MEMORY_BUDGET_MB`', '4096', 'a replica\'s memory budget: a pass whose estimate (manifest `serving.peak_mb_per_mp` × its megapixels) does not fit (budget − RSS at ready) / WORKERS is refused with 413 before it runs (0 = no check)'],
  ['`MAX_OUTPUT_PIXELS`', '16777216 (4096²)', '`POST /v1/upscale`: largest output width×height (input × scale), refused with 413 from the header, before decoding'],
  ['`UPSCALE_TILE`', '(the manifest\'s `serving.tile`)', '`POST /v1/upscale`: largest input side of one pass; larger inputs run in overlapping tiles of this side (memory is bounded by it)'],
  ['`IDLE_TIMEOUT_MS`', '60000', 'a connection with no bytes either way for this long is closed (a stalled upload; keep it above the longest inference)'],
];

/** The `--help` text: usage and every variable of {@link ENV_HELP}, one per line. */
export function helpText(): string {
  const width = Math.max(...ENV_HELP.map(([n]) => n.replace(/`/g, '').length));
  return ['normgen: the image API server. Configured by environment variables (a bad value stops it with a message):', '',
    ...ENV_HELP.map(([n, d, m]) => `  ${n.replace(/`/g, '').padEnd(width)}  ${d.replace(/`/g, '')}: ${m.replace(/`/g, '')}`),
    '', 'Example: PORT=9000 WORKERS=2 INTRA_OP_THREADS=1 npm start        Details: docs/configuration.md'].join('\n');
}

export interface Config {
  port: number;
  host: string;
  modelsDir: string;
  /** MODELS: loaded at start besides each task's default (`all` = every model). */
  preloadModels: 'all' | string[];
  maxUploadBytes: number;
  maxPixels: number;
  workers: number;
  intraOpThreads: number;
  logLevel: string;
  batching: boolean;
  executionProviders: ('cuda' | 'cpu')[];
  cudaDeviceId: number;
  /** PRECISION: which variant of each model is served (repository.ts `choosePrecision`). */
  precision: 'auto' | 'fp32' | 'int8';
  apiKeys: string[];
  maxEventLoopDelayMs: number;
  maxHeapUsedBytes: number;
  corsOrigins: string[];
  rateLimitPerMin: number;
  jobTtlS: number;
  jobsMax: number;
  jobsMaxBytes: number;
  jobConcurrency: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  kserveMaxPixels: number;
  shutdownTimeoutMs: number;
  deadlineMs: number;
  arenaMaxPixels: number;
  memoryBudgetMb: number;
  jobsPerKey: number;
  maxOutputPixels: number;
  upscaleTile: number | undefined;
}

/** Raised by {@link loadConfig} when an environment variable is invalid; `message` lists every problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Parse and validate the configuration.
 * @param env the environment (default `process.env`); unset or empty variables take their defaults.
 * @returns a frozen {@link Config}.
 * @throws ConfigError if any variable is out of range or not an integer.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return def;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected an integer in [${min}, ${max}]`);
      return def;
    }
    return v;
  };
  const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const workers = int('WORKERS', 1, 1, 64);
  const config: Config = {
    port: int('PORT', 8080, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    modelsDir: path.resolve(env.MODELS_DIR?.trim() || path.join(repoRoot, 'models')),
    preloadModels: env.MODELS?.trim() === 'all' ? 'all' : (env.MODELS ?? '').split(',').map((n) => n.trim()).filter(Boolean),
    maxUploadBytes: int('MAX_UPLOAD_BYTES', 32 * 1024 * 1024, 1024, 1024 ** 3),
    maxPixels: int('MAX_PIXELS', 50_000_000, 64, 268_402_689),
    workers,
    intraOpThreads: int('INTRA_OP_THREADS', Math.max(1, Math.floor(cores / workers)), 1, 256),
    logLevel: env.LOG_LEVEL?.trim() || 'info',
    batching: int('BATCHING', 1, 0, 1) === 1,
    executionProviders: (env.EXECUTION_PROVIDERS?.trim() || 'cpu').split(',').map((p) => p.trim().toLowerCase()) as ('cuda' | 'cpu')[],
    cudaDeviceId: int('CUDA_DEVICE_ID', 0, 0, 64),
    precision: (env.PRECISION?.trim().toLowerCase() || 'auto') as 'auto' | 'fp32' | 'int8',
    maxEventLoopDelayMs: int('MAX_EVENT_LOOP_DELAY_MS', 1000, 0, 600_000),
    maxHeapUsedBytes: int('MAX_HEAP_USED_BYTES', 0, 0, 2 ** 45),
    apiKeys: (env.API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean),
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean),
    rateLimitPerMin: int('RATE_LIMIT_PER_MIN', 0, 0, 1_000_000),
    jobTtlS: int('JOB_TTL_S', 3600, 1, 7 * 86400),
    jobsMax: int('JOBS_MAX', 100, 1, 100_000),
    jobsMaxBytes: int('JOBS_MAX_BYTES', 256 * 1024 * 1024, 1024, 2 ** 40),
    jobConcurrency: int('JOB_CONCURRENCY', 2, 1, 64),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 120_000, 0, 3_600_000),
    headersTimeoutMs: int('HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 3_600_000),
    idleTimeoutMs: int('IDLE_TIMEOUT_MS', 60_000, 100, 3_600_000),
    kserveMaxPixels: int('KSERVE_MAX_PIXELS', 256 * 256, 64, 4096 * 4096),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 30_000, 100, 600_000),
    deadlineMs: int('DEADLINE_MS', 60_000, 0, 3_600_000),
    arenaMaxPixels: int('ARENA_MAX_PIXELS', 512 * 512, 0, 268_402_689),
    memoryBudgetMb: int('MEMORY_BUDGET_MB', 4096, 0, 1_048_576),
    jobsPerKey: 0,
    maxOutputPixels: int('MAX_OUTPUT_PIXELS', 4096 * 4096, 64, 268_402_689),
    upscaleTile: env.UPSCALE_TILE?.trim() ? int('UPSCALE_TILE', 256, 16, 4096) : undefined,
  };
  config.jobsPerKey = int('JOBS_PER_KEY', Math.max(1, Math.ceil(config.jobsMax / 4)), 1, 100_000);
  if (config.requestTimeoutMs > 0 && config.headersTimeoutMs > config.requestTimeoutMs) {
    problems.push(`HEADERS_TIMEOUT_MS=${config.headersTimeoutMs} is above REQUEST_TIMEOUT_MS=${config.requestTimeoutMs}: the headers are part of the request`);
  }
  const badOrigins = config.corsOrigins.filter((o) => o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o));
  if (badOrigins.length) problems.push(`CORS_ORIGINS: ${badOrigins.map((o) => JSON.stringify(o)).join(', ')}: expected origins like https://app.example.com (scheme://host[:port]) or *`);
  const badEp = config.executionProviders.filter((p) => p !== 'cuda' && p !== 'cpu');
  if (badEp.length || config.executionProviders.length === 0) problems.push(`EXECUTION_PROVIDERS=${JSON.stringify(env.EXECUTION_PROVIDERS)}: expected a comma list of cuda, cpu`);
  if (!['auto', 'fp32', 'int8'].includes(config.precision)) problems.push(`PRECISION=${JSON.stringify(env.PRECISION)}: expected auto, fp32 or int8`);
  const badNames = config.preloadModels === 'all' ? [] : config.preloadModels.filter((n) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n));
  if (badNames.length) problems.push(`MODELS=${JSON.stringify(env.MODELS)}: expected \`all\` or a comma list of model names (letters, digits, . _ -); not ${badNames.map((n) => JSON.stringify(n)).join(', ')}`);
  if (!LOG_LEVELS.includes(config.logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(config.logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`);
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(config);
}
