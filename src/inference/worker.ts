/**
 * Inference worker thread: owns one onnxruntime-node `InferenceSession` per model and runs
 * forward passes on request, so that the blocking `session.run` never stalls the HTTP thread.
 *
 * Protocol: see `messages.ts`. `run` takes named float32 NCHW tensors (`feeds`) and replies with one
 * output (`outputName`, default the first), or with every output named in `fetch` (only those are computed) as float32 plus its dims and the inference time in ms. Errors (bad model file, shape mismatch) are replied, never thrown.
 *
 * Memory (issue 28): onnxruntime's CPU arena keeps the peak of the largest pass for the session's life
 * (a 2048² colorization left 6.7 GB resident). Passes larger than the load's `arenaMaxPixels` therefore
 * run on a second session of the same model opened without the arena (`enableCpuMemArena: false`), whose
 * buffers are freed when the pass ends; small passes keep the arena's speed. Memory patterns stay on there
 * (issue 32: measured on colorize-pono, 4×256² and 768², without them that session was 4× slower than the
 * arena, with them 2.3×, and the memory is still given back: RSS 243 MiB after a 768² pass vs 1154 with the arena).
 * A model whose passes can exceed the cap (load's `largeTwin`) gets that session at load, warmed up like the
 * first: opening it and its first run made the first large request after a start ~2× a warm one (issue 44).
 */
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { WorkerReply, WorkerRequest } from './messages.js';

if (!parentPort) throw new Error('worker.ts must run as a worker thread');
const port = parentPort;
/** Live sessions; a replaced (reloaded) session is released only once its in-flight runs finish. */
interface Live {
  session: ort.InferenceSession; inflight: number; retired: boolean;
  /** The arena-less twin for large passes (CPU only), opened on first use. */
  large?: Promise<ort.InferenceSession>;
  open: { onnxPath: string; intraOpThreads: number; cpu: boolean; arenaMaxPixels: number };
}
const sessions = new Map<string, Live>();

async function release(live: Live): Promise<void> {
  await live.session.release();
  if (live.large) await (await live.large).release();
}

function retire(live: Live | undefined): Promise<void> | undefined {
  if (!live) return undefined;
  live.retired = true;
  return live.inflight === 0 ? release(live) : undefined;
}

/** Items × H × W of a run's first input (1 per item for NC inputs). */
function pixelsOf(feeds: Record<string, { dims: readonly number[] }>): number {
  const dims = Object.values(feeds)[0]!.dims;
  return dims.slice(2).reduce((a, b) => a * b, dims[0]!);
}

/** onnxruntime tensors of named float32 NCHW feeds (no copy). */
function tensors(feeds: Record<string, { data: Float32Array; dims: readonly number[] }>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor('float32', t.data, t.dims);
  return out;
}

/** The arena-less CPU twin of a model's session (large passes; module docstring). */
function openLarge(open: Live['open']): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(open.onnxPath, {
    intraOpNumThreads: open.intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionProviders: ['cpu'], enableCpuMemArena: false, enableMemPattern: true,
  });
}

async function handle(msg: WorkerRequest): Promise<WorkerReply> {
  switch (msg.kind) {
    case 'load': {
      const base = { intraOpNumThreads: msg.intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
      let session: ort.InferenceSession | undefined;
      let provider = 'cpu';
      let fallback: string | undefined;
      if (msg.ep.providers.includes('cuda')) {
        try {
          session = await ort.InferenceSession.create(msg.onnxPath, { ...base, executionProviders: [{ name: 'cuda', deviceId: msg.ep.cudaDeviceId }] });
          provider = `cuda:${msg.ep.cudaDeviceId}`;
        } catch (err) {
          if (!msg.ep.providers.includes('cpu')) throw err;
          fallback = `CUDA execution provider unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); using CPU`;
        }
      }
      session ??= await ort.InferenceSession.create(msg.onnxPath, { ...base, executionProviders: ['cpu'] });
      const open = { onnxPath: msg.onnxPath, intraOpThreads: msg.intraOpThreads, cpu: provider === 'cpu', arenaMaxPixels: msg.arenaMaxPixels ?? 0 };
      let large: ort.InferenceSession | undefined;
      let warmupMs: number | undefined;
      try {
        if (msg.largeTwin && open.cpu && open.arenaMaxPixels > 0) large = await openLarge(open);
        if (msg.warmup) {
          const t0 = performance.now();
          await session.run(tensors(msg.warmup));
          warmupMs = performance.now() - t0;
          if (large) await large.run(tensors(msg.warmup));
        }
      } catch (err) {
        await session.release();
        await large?.release();
        throw err;
      }
      const old = sessions.get(msg.model);
      sessions.set(msg.model, { session, inflight: 0, retired: false, open, ...(large ? { large: Promise.resolve(large) } : {}) });
      await retire(old);
      return { id: msg.id, ok: true, inputNames: [...session.inputNames], outputNames: [...session.outputNames], provider, warmupMs, largeTwin: large !== undefined, ...(fallback ? { fallback } : {}) };
    }
    case 'crash': {
      if (process.env.NORMGEN_TEST_HOOKS !== '1') return { id: msg.id, ok: false, error: 'test hooks are off' };
      process.exit(70); // ends this worker thread only, as a native abort would
    }
    case 'run': {
      const live = sessions.get(msg.model);
      if (!live) return { id: msg.id, ok: false, error: `model ${msg.model} is not loaded in this worker` };
      let { session } = live;
      const feeds = tensors(msg.feeds);
      live.inflight++;
      let out: ort.InferenceSession.OnnxValueMapType;
      const t0 = performance.now();
      try {
        if (live.open.cpu && live.open.arenaMaxPixels > 0 && pixelsOf(msg.feeds) > live.open.arenaMaxPixels) {
          live.large ??= openLarge(live.open);
          session = await live.large;
        }
        out = msg.fetch ? await session.run(feeds, msg.fetch) : await session.run(feeds);
      } finally {
        live.inflight--;
        if (live.retired && live.inflight === 0) await release(live);
      }
      const inferMs = performance.now() - t0;
      // the inputs go back to the main thread for its next tensors of their size (buffers.ts); a buffer
      // shared by two inputs once
      const returned = [...new Set(Object.values(msg.feeds).map((t) => t.data.buffer as ArrayBuffer))];
      if (msg.fetch) {
        const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
        for (const name of msg.fetch) {
          const t = out[name];
          if (!t) return { id: msg.id, ok: false, error: `model ${msg.model} has no output ${name}` };
          outputs[name] = { data: t.data as Float32Array, dims: [...t.dims] };
        }
        return { id: msg.id, ok: true, outputs, inferMs, returned };
      }
      const first = out[msg.outputName ?? session.outputNames[0]!];
      if (!first) return { id: msg.id, ok: false, error: `model ${msg.model} has no output ${msg.outputName}` };
      const data = first.data as Float32Array;
      const dims = [...first.dims];
      for (const t of Object.values(out)) if (t !== first) t.dispose?.();
      return { id: msg.id, ok: true, data, dims, inferMs, returned };
    }
    case 'unload': {
      const live = sessions.get(msg.model);
      sessions.delete(msg.model);
      await retire(live);
      return { id: msg.id, ok: true };
    }
  }
}

port.on('message', (msg: WorkerRequest) => {
  handle(msg).then(
    (reply) => port.postMessage(reply, !reply.ok ? [] : [...new Set([
      ...(reply.data ? [reply.data.buffer as ArrayBuffer] : reply.outputs ? Object.values(reply.outputs).map((t) => t.data.buffer as ArrayBuffer) : []),
      ...(reply.returned ?? []),
    ])]),
    (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
});
