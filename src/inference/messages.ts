/**
 * Messages between the main thread ({@link InferencePool}) and an inference worker (`worker.ts`).
 * Tensors travel as Float32Array with NCHW `dims`; their buffers are transferred, not copied.
 */
/** Execution providers in preference order (`cuda` with its device id, then `cpu`). */
export interface ProviderChoice { providers: ('cuda' | 'cpu')[]; cudaDeviceId: number }
/** `warmup`: inputs of one forward pass run on the new session before it replaces the old one. */
/**
 * `arenaMaxPixels`: passes with more pixels (items × H × W) run on a second, arena-less CPU session of the
 * model, so their peak memory is given back to the system afterwards (0 = always the arena). `largeTwin`: open
 * that session now and run the warm-up on it too (the model's passes can exceed `arenaMaxPixels`); else it is
 * opened on first use (its creation and first run cost a first large request ~5 s, issue 44).
 */
export interface LoadRequest { kind: 'load'; id: number; model: string; onnxPath: string; intraOpThreads: number; ep: ProviderChoice; warmup?: Feeds; arenaMaxPixels?: number; largeTwin?: boolean }
/** Named float32 NCHW input tensors of one run. */
export type Feeds = Record<string, { data: Float32Array; dims: number[] }>;
/** `fetch`: run only these outputs and reply with all of them (`outputs`); else the one `outputName` (default the first). */
export interface RunRequest { kind: 'run'; id: number; model: string; feeds: Feeds; outputName?: string; fetch?: string[] }
export interface UnloadRequest { kind: 'unload'; id: number; model: string }
/** Test hook (NORMGEN_TEST_HOOKS=1 only): the worker exits as if it had crashed. */
export interface CrashRequest { kind: 'crash'; id: number }
export type WorkerRequest = LoadRequest | RunRequest | UnloadRequest | CrashRequest;

/** `returned`: a run's input buffers, transferred back for reuse (`buffers.ts`). */
export interface WorkerOk { id: number; ok: true; returned?: ArrayBuffer[]; data?: Float32Array; dims?: number[]; outputs?: Record<string, { data: Float32Array; dims: number[] }>; inferMs?: number; inputNames?: string[]; outputNames?: string[]; provider?: string; fallback?: string; warmupMs?: number; largeTwin?: boolean }
export interface WorkerFail { id: number; ok: false; error: string }
export type WorkerReply = WorkerOk | WorkerFail;
