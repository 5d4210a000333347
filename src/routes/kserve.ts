/**
 * KServe v2 / Open Inference Protocol (REST) beside the friendly API, so KServe and Triton clients can
 * call the models unchanged (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/):
 *
 * - `GET /v2/health/live`, `GET /v2/health/ready` (200 `{ live | ready: true }`, ready → 503 while loading);
 * - `GET /v2/models/{name}` metadata: `{ name, versions, platform: "onnxruntime_onnx", inputs, outputs }`
 *   with tensor `{ name, datatype: "FP32", shape }` (−1 for dynamic dims);
 * - `GET /v2/models/{name}/ready` (200 `{ name, ready: true }`, else 503);
 * - `POST /v2/models/{name}/infer`: `{ id?, inputs: [{ name, shape, datatype, data }], outputs?: [{ name }] }`
 *   → `{ model_name, model_version, id, outputs: [{ name, shape, datatype: "FP32", data }] }` (row-major flat data).
 *   `outputs` may name the model's explain maps (issue 34; listed in the metadata: `pono1_mu`, `an1_layout`, …):
 *   that request runs the model's `explain.onnx` once and computes only the outputs asked for.
 *   `datatype` is `FP32` (values as given) or `UINT8` (0–255, mapped to the input's declared range:
 *   [−1, 1] as `v / 127.5 − 1`, [0, 1] as `v / 255`). `data` may be flat or nested.
 *
 * Errors follow the protocol: `{ "error": "…" }` with 400 (bad request), 404 (unknown model),
 * 503 (not ready / queue full, with Retry-After), 504 (queue deadline).
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ModelEntry } from '../models/repository.js';
import type { TensorSpec } from '../models/manifest.js';
import { HttpProblem } from '../problem.js';
import { infer } from './common.js';

interface V2Tensor { name: string; shape: number[]; datatype: string; data: unknown }
interface V2Request { id?: string; inputs: V2Tensor[]; outputs?: { name: string }[] }

function v2Error(reply: FastifyReply, status: number, error: string) {
  return reply.code(status).type('application/json').send({ error });
}

/** The protocol's shape of a manifest tensor: −1 for dynamic dims. */
export function v2Shape(spec: TensorSpec): number[] {
  return spec.layout === 'NC' ? [-1, spec.channels] : [-1, spec.channels, -1, -1];
}

/** Largest finite float32. */
const F32_MAX = 3.4028234663852886e38;

/**
 * Flatten JSON numbers nested at most `maxDepth` arrays deep into `out` (iteratively: no recursion, so a
 * 200,000-deep nesting cannot overflow the stack), stopping as soon as more than `out.length` values come.
 * @returns the number of values written.
 * @throws Error (→ 400) for a non-number, a value outside float32, nesting deeper than the rank, or too many values.
 */
export function flattenInto(data: unknown, out: Float32Array, maxDepth: number, name: string): number {
  let n = 0;
  const stack: [unknown[], number, number][] = [];
  const put = (v: unknown) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`input ${name}: tensor data must be finite numbers`);
    if (Math.abs(v) > F32_MAX) throw new Error(`input ${name}: value ${v} overflows float32 (FP32 holds at most ±3.4e38)`);
    if (n >= out.length) throw new Error(`input ${name}: more values than its shape holds (${out.length})`);
    out[n++] = v;
  };
  if (!Array.isArray(data)) { put(data); return n; }
  stack.push([data, 0, 1]);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [arr, i, depth] = top;
    if (i >= arr.length) { stack.pop(); continue; }
    top[1] = i + 1;
    const v = arr[i];
    if (Array.isArray(v)) {
      if (depth + 1 > maxDepth) throw new Error(`input ${name}: data is nested deeper than the tensor's rank (${maxDepth})`);
      stack.push([v, 0, depth + 1]);
    } else put(v);
  }
  return n;
}

/** The largest batch × height × width (all NCHW inputs of one request together) that `/v2/.../infer` accepts. */
export const DEFAULT_KSERVE_MAX_PIXELS = 256 * 256;
/** Bytes one JSON value may take on average (`-0.12345678,` plus nesting), for the route's body limit. */
const BYTES_PER_VALUE = 20;

/** The infer route's body limit for a pixel limit: `pixels × 4 channels × 20 B` + 64 KiB of envelope. */
export function kserveBodyLimit(maxPixels: number): number {
  return maxPixels * 4 * BYTES_PER_VALUE + 64 * 1024;
}

/** Smallest H and W an NCHW input may have: twice its size multiple (the deepest level keeps 2 px for reflection padding). */
export function minSpatialSide(spec: TensorSpec): number {
  return 2 * spec.size_multiple;
}

/**
 * Check one input tensor against its spec and convert it to float32.
 * @throws Error (→ 400) for a wrong datatype, shape (H or W below {@link minSpatialSide}), element count, an FP32
 *   value outside the input's declared `range` (or NaN / ±Infinity; a float32 overflow reads as ±Infinity), or a
 *   UINT8 value that is not an integer 0–255.
 */
export function toFeed(t: V2Tensor, spec: TensorSpec, maxPixels = DEFAULT_KSERVE_MAX_PIXELS): { data: Float32Array; dims: number[] } {
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`input ${spec.name}: shape must be a list of positive integers`);
  const want = v2Shape(spec);
  if (t.shape.length !== want.length || want.some((d, i) => d !== -1 && d !== t.shape[i])) throw new Error(`input ${spec.name}: shape ${JSON.stringify(t.shape)} does not match ${JSON.stringify(want)}`);
  if (t.datatype !== 'FP32' && t.datatype !== 'UINT8') throw new Error(`input ${spec.name}: datatype ${JSON.stringify(t.datatype)} is not supported (FP32, UINT8)`);
  if (spec.layout === 'NCHW') {
    if (t.shape[2]! % spec.size_multiple || t.shape[3]! % spec.size_multiple) throw new Error(`input ${spec.name}: H and W must be multiples of ${spec.size_multiple}`);
    // the deepest level of every network must keep 2 px for its reflection padding (onnxruntime: "Pad reflect
    // requires axis length >= 2"): twice the size multiple (the image routes pad small images up to it)
    const minSide = minSpatialSide(spec);
    if (t.shape[2]! < minSide || t.shape[3]! < minSide) throw new Error(`input ${spec.name}: H and W must be at least ${minSide} (got ${t.shape[2]}×${t.shape[3]})`);
    // the declared size is checked before any of `data` is read
    const pixels = t.shape[0]! * t.shape[2]! * t.shape[3]!;
    if (pixels > maxPixels) throw new Error(`input ${spec.name}: batch × height × width = ${pixels} is over this server's KSERVE_MAX_PIXELS (${maxPixels}); use /v1 for large images`);
  } else if (t.shape[0]! > 1024) throw new Error(`input ${spec.name}: batch ${t.shape[0]} is over 1024`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const got = flattenInto(t.data, data, t.shape.length, spec.name);
  if (got !== n) throw new Error(`input ${spec.name}: ${got} values for shape ${JSON.stringify(t.shape)} (${n})`);
  const [lo, hi] = spec.range;
  if (t.datatype === 'FP32') {
    // the declared range is the model's contract: 1e30 in a [-1, 1] input gave 768 `null`s (inf / NaN) in the output
    for (let i = 0; i < n; i++) {
      const v = data[i]!;
      if (!(v >= lo && v <= hi)) throw new Error(`input ${spec.name}: FP32 value ${Number.isFinite(v) ? v : String(v)} at flat index ${i} is outside the input's range [${lo}, ${hi}]`);
    }
  }
  if (t.datatype === 'UINT8') {
    for (let i = 0; i < n; i++) {
      const v = data[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`input ${spec.name}: UINT8 values must be integers 0-255`);
      data[i] = lo + (hi - lo) * (v / 255);
    }
  }
  return { data, dims: t.shape };
}

/** A JSON object (not null, not an array). */
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Check the request envelope: `inputs` a non-empty list of `{ name: string, … }`, optional `outputs` a list of
 * `{ name: string }`, optional `id` a string. @throws Error (→ 400) with a message for the client.
 */
export function checkEnvelope(body: unknown): asserts body is V2Request {
  if (!isObject(body)) throw new Error('the body must be a JSON object with an `inputs` array');
  if (!Array.isArray(body.inputs) || body.inputs.length === 0) throw new Error('`inputs` must be a non-empty array of tensors');
  if (body.inputs.length > 16) throw new Error('at most 16 inputs');
  for (const t of body.inputs) if (!isObject(t) || typeof t.name !== 'string') throw new Error('each input must be an object `{ name, shape, datatype, data }`');
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs) || body.outputs.length > 16) throw new Error('`outputs` must be an array of `{ name }`');
    for (const o of body.outputs) if (!isObject(o) || typeof o.name !== 'string') throw new Error('each output must be an object `{ name }`');
  }
  if (body.id !== undefined && (typeof body.id !== 'string' || body.id.length > 256)) throw new Error('`id` must be a string (at most 256 characters)');
}

/** Options: `maxPixels` = KSERVE_MAX_PIXELS (batch × H × W of one request's image inputs). */
const kserve: FastifyPluginAsync<{ maxPixels?: number }> = async (app, opts) => {
  const maxPixels = opts.maxPixels ?? DEFAULT_KSERVE_MAX_PIXELS;
  const ready = (m: ModelEntry | undefined) => m?.state === 'ready';
  app.get('/v2/health/live', { config: { public: true }, schema: { tags: ['kserve-v2'], summary: 'Server liveness (v2 protocol)' } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { config: { public: true }, schema: { tags: ['kserve-v2'], summary: 'Server readiness: the default model of every task loaded (v2 protocol; per model: /v2/models/{name}/ready)' } }, async (_r, reply) => (app.models.isReady() ? { ready: true } : reply.code(503).send({ ready: false })));
  app.get<{ Params: { name: string } }>('/v2/models/:name', { schema: { tags: ['kserve-v2'], summary: 'Model metadata: inputs and outputs (v2 protocol)' } }, async (request, reply) => {
    const m = app.models.get(request.params.name);
    if (!m) return v2Error(reply, 404, `unknown model ${request.params.name}`);
    return {
      name: m.name, versions: [m.manifest.version], platform: 'onnxruntime_onnx',
      inputs: m.manifest.inputs.map((s) => ({ name: s.name, datatype: 'FP32', shape: v2Shape(s) })),
      outputs: [...m.manifest.outputs.map((s) => ({ name: s.name, datatype: 'FP32', shape: v2Shape(s) })),
        // issue 34: the explain graph's maps (PONO mu/sigma B x 1 x h x w, AN layouts B x n x h x w), by name
        ...(m.manifest.explain?.maps ?? []).map((x) => ({ name: x.output, datatype: 'FP32', shape: [-1, x.kind === 'an_layout' ? x.entities ?? -1 : 1, -1, -1] }))],
    };
  });
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', { schema: { tags: ['kserve-v2'], summary: 'Model readiness (v2 protocol)' } }, async (request, reply) => {
    const m = app.models.get(request.params.name);
    if (!m) return v2Error(reply, 404, `unknown model ${request.params.name}`);
    return reply.code(ready(m) ? 200 : 503).send({ name: m.name, ready: ready(m) });
  });
  app.post<{ Params: { name: string }; Body: V2Request }>('/v2/models/:name/infer', {
    bodyLimit: kserveBodyLimit(maxPixels),
    // every tensor value is one JSON value: 4 channels at most per pixel, and the envelope's few
    config: { jsonMaxValues: maxPixels * 4 + 1024 },
    schema: {
      tags: ['kserve-v2'], summary: `Inference with JSON tensors (FP32 or UINT8, v2 protocol), through the model's batcher; batch × H × W at most KSERVE_MAX_PIXELS (${maxPixels})`,
      // documents the body and gives Swagger UI a runnable example (a 32×32 gray ramp and no colour hints for
      // colorize-pono, the path's example name: its smallest input); the handler checks the body itself
      // (checkEnvelope, toFeed) and answers in the protocol's { error } form
      body: { type: 'object', examples: [{ inputs: [
        { name: 'gray', shape: [1, 1, 32, 32], datatype: 'UINT8', data: Array.from({ length: 1024 }, (_, i) => i >> 2) },
        { name: 'hints', shape: [1, 3, 32, 32], datatype: 'FP32', data: Array(3072).fill(0) },
      ] }] },
    },
    validatorCompiler: () => () => true,
  }, async (request, reply) => {
    const m = app.models.get(request.params.name);
    if (!m) return v2Error(reply, 404, `unknown model ${request.params.name}`);
    await app.models.ensureLoaded(m); // a model not loaded at start (MODELS) opens on its first request
    if (!ready(m)) return v2Error(reply, 503, `model ${m.name} is not ready`);
    const body: unknown = request.body;
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    let wanted: string[] = [];
    try {
      checkEnvelope(body);
      let pixelsLeft = maxPixels;
      for (const spec of m.manifest.inputs) {
        const t = body.inputs.find((i) => i.name === spec.name);
        if (!t) throw new Error(`missing input ${spec.name}; the model takes ${m.manifest.inputs.map((s) => s.name).join(', ')}`);
        feeds[spec.name] = toFeed(t, spec, Math.max(1, pixelsLeft));
        if (spec.layout === 'NCHW') pixelsLeft -= t.shape[0]! * t.shape[2]! * t.shape[3]!;
      }
      const extra = body.inputs.filter((i) => !m.manifest.inputs.some((s) => s.name === i.name));
      if (extra.length) throw new Error(`unknown input ${extra.map((e) => JSON.stringify(e.name).slice(0, 64)).join(', ')}`);
      const batch = new Set(Object.values(feeds).map((f) => f.dims[0]));
      if (batch.size > 1) throw new Error('all inputs must have the same batch size');
      wanted = body.outputs?.map((o) => o.name) ?? [m.manifest.outputs[0]!.name];
      const served = [m.manifest.outputs[0]!.name, ...(m.manifest.explain?.maps ?? []).map((x) => x.output)];
      const unknownOut = wanted.filter((w) => !served.includes(w));
      if (unknownOut.length) throw new Error(`output ${unknownOut.map((u) => JSON.stringify(u).slice(0, 64)).join(', ')} is not served; outputs: ${served.join(', ')}`);
    } catch (err) {
      return v2Error(reply, 400, (err as Error).message);
    }
    try {
      if (wanted.some((w) => w !== m.manifest.outputs[0]!.name)) {
        // explain outputs: one pass of the model's explain.onnx computing only the asked outputs (not batched)
        const poolName = await app.models.explainModel(m);
        const { outputs } = await app.models.runExplain(poolName, feeds, [...new Set(wanted)]);
        return {
          model_name: m.name, model_version: m.manifest.version, id: (body as V2Request).id ?? request.id,
          outputs: wanted.map((w) => ({ name: w, shape: outputs[w]!.dims, datatype: 'FP32', data: Array.from(outputs[w]!.data) })),
        };
      }
      const out = await infer(m, feeds, request);
      return {
        model_name: m.name, model_version: m.manifest.version, id: (body as V2Request).id ?? request.id,
        outputs: [{ name: m.manifest.outputs[0]!.name, shape: out.dims, datatype: 'FP32', data: Array.from(out.data) }],
      };
    } catch (err) {
      if (err instanceof HttpProblem) {
        const retry = err.extensions.retry_after_s;
        if (typeof retry === 'number') reply.header('Retry-After', String(retry));
        return v2Error(reply, err.statusCode, err.message);
      }
      // onnxruntime / JavaScript errors are logged, never shown (they name graph nodes and internals)
      request.log.error({ err }, 'KServe inference failed');
      return v2Error(reply, 500, 'inference failed (see the server log with this request id: ' + request.id + ')');
    }
  });
};

export default kserve;
