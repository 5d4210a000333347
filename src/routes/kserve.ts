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

/** Flatten (possibly nested) JSON numbers. @throws Error on a non-number. */
function flatten(data: unknown, out: number[] = []): number[] {
  if (Array.isArray(data)) { for (const d of data) flatten(d, out); return out; }
  if (typeof data !== 'number' || !Number.isFinite(data)) throw new Error(`tensor data must be numbers, got ${JSON.stringify(data)}`);
  out.push(data);
  return out;
}

/**
 * Check one input tensor against its spec and convert it to float32.
 * @throws Error (→ 400) for a wrong datatype, shape, element count or UINT8 value.
 */
export function toFeed(t: V2Tensor, spec: TensorSpec): { data: Float32Array; dims: number[] } {
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`input ${t.name}: shape must be positive integers`);
  const want = v2Shape(spec);
  if (t.shape.length !== want.length || want.some((d, i) => d !== -1 && d !== t.shape[i])) throw new Error(`input ${t.name}: shape ${JSON.stringify(t.shape)} does not match ${JSON.stringify(want)}`);
  if (spec.layout === 'NCHW' && (t.shape[2]! % spec.size_multiple || t.shape[3]! % spec.size_multiple)) throw new Error(`input ${t.name}: H and W must be multiples of ${spec.size_multiple}`);
  const values = flatten(t.data);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new Error(`input ${t.name}: ${values.length} values for shape ${JSON.stringify(t.shape)} (${n})`);
  const data = new Float32Array(n);
  if (t.datatype === 'FP32') data.set(values);
  else if (t.datatype === 'UINT8') {
    const [lo, hi] = spec.range;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`input ${t.name}: UINT8 values must be integers 0-255`);
      data[i] = lo + (hi - lo) * (v / 255);
    }
  } else throw new Error(`input ${t.name}: datatype ${t.datatype} is not supported (FP32, UINT8)`);
  return { data, dims: t.shape };
}

const kserve: FastifyPluginAsync = async (app) => {
  const ready = (m: ModelEntry | undefined) => m?.state === 'ready';
  app.get('/v2/health/live', { config: { public: true }, schema: { tags: ['kserve-v2'], summary: 'Server liveness (v2 protocol)' } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { config: { public: true }, schema: { tags: ['kserve-v2'], summary: 'Server readiness: every model loaded (v2 protocol)' } }, async (_r, reply) => (app.models.isReady() ? { ready: true } : reply.code(503).send({ ready: false })));
  app.get<{ Params: { name: string } }>('/v2/models/:name', { schema: { tags: ['kserve-v2'], summary: 'Model metadata: inputs and outputs (v2 protocol)' } }, async (request, reply) => {
    const m = app.models.get(request.params.name);
    if (!m) return v2Error(reply, 404, `unknown model ${request.params.name}`);
    return {
      name: m.name, versions: [m.manifest.version], platform: 'onnxruntime_onnx',
      inputs: m.manifest.inputs.map((s) => ({ name: s.name, datatype: 'FP32', shape: v2Shape(s) })),
      outputs: m.manifest.outputs.map((s) => ({ name: s.name, datatype: 'FP32', shape: v2Shape(s) })),
    };
  });
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', { schema: { tags: ['kserve-v2'], summary: 'Model readiness (v2 protocol)' } }, async (request, reply) => {
    const m = app.models.get(request.params.name);
    if (!m) return v2Error(reply, 404, `unknown model ${request.params.name}`);
    return reply.code(ready(m) ? 200 : 503).send({ name: m.name, ready: ready(m) });
  });
  app.post<{ Params: { name: string }; Body: V2Request }>('/v2/models/:name/infer', { schema: { tags: ['kserve-v2'], summary: 'Inference with JSON tensors (FP32 or UINT8, v2 protocol), through the model\'s batcher' } }, async (request, reply) => {
    const m = app.models.get(request.params.name);
    if (!m) return v2Error(reply, 404, `unknown model ${request.params.name}`);
    if (!ready(m)) return v2Error(reply, 503, `model ${m.name} is not ready`);
    const body = request.body;
    if (!body || typeof body !== 'object' || !Array.isArray(body.inputs)) return v2Error(reply, 400, 'the body must be a JSON object with an `inputs` array');
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    try {
      for (const spec of m.manifest.inputs) {
        const t = body.inputs.find((i) => i?.name === spec.name);
        if (!t) throw new Error(`missing input ${spec.name}; the model takes ${m.manifest.inputs.map((s) => s.name).join(', ')}`);
        feeds[spec.name] = toFeed(t, spec);
      }
      const extra = body.inputs.filter((i) => !m.manifest.inputs.some((s) => s.name === i?.name));
      if (extra.length) throw new Error(`unknown input ${extra.map((e) => e?.name).join(', ')}`);
      const batch = new Set(Object.values(feeds).map((f) => f.dims[0]));
      if (batch.size > 1) throw new Error('all inputs must have the same batch size');
      const wanted = body.outputs?.map((o) => o.name) ?? [m.manifest.outputs[0]!.name];
      const unknownOut = wanted.filter((w) => w !== m.manifest.outputs[0]!.name);
      if (unknownOut.length) throw new Error(`output ${unknownOut.join(', ')} is not served; outputs: ${m.manifest.outputs[0]!.name}`);
    } catch (err) {
      return v2Error(reply, 400, (err as Error).message);
    }
    try {
      const out = await infer(m, feeds);
      return {
        model_name: m.name, model_version: m.manifest.version, id: body.id ?? request.id,
        outputs: [{ name: m.manifest.outputs[0]!.name, shape: out.dims, datatype: 'FP32', data: Array.from(out.data) }],
      };
    } catch (err) {
      if (err instanceof HttpProblem) {
        const retry = err.extensions.retry_after_s;
        if (typeof retry === 'number') reply.header('Retry-After', String(retry));
        return v2Error(reply, err.statusCode, err.message);
      }
      return v2Error(reply, 400, (err as Error).message);
    }
  });
};

export default kserve;
