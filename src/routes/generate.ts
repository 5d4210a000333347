/**
 * `POST /v1/generate` (JSON body) and `GET /v1/generate` (the same fields as a query string, for
 * browsers): class-conditional samples from a generator model (default: `fashion-an`, the Fashion-MNIST
 * generator with Attentive Normalization).
 *
 * Fields: `class` (name, case-insensitive, or index; required), `model`, `seed` (uint32; random when
 * absent; always echoed in `X-Seed`), `count` (1–64, default 1), `interpolate_to` (a second class) with
 * `steps` (2–16, default 8), `output_format` (`png` | `jpeg` | `webp`), `layout` (`grid`: one image,
 * default; `json`: `{ seed, model, images: [base64 PNG…] }`), `size` (display side of each sample
 * in px, 16–512, resized with sharp; default the model's native 28) and `response_format` (`image`, or
 * `b64_json`: the grid as `{ model, data: [{ b64_json, width, height }] }`).
 *
 * Noise: `z` for sample i is values [i·z_dim, (i+1)·z_dim) of `gaussianNoise(seed)`; the class vector
 * `y` is one-hot. An interpolation holds z fixed (sample 0's) and mixes `y = (1 − t)·onehot(a) + t·onehot(b)`,
 * t = k / (steps − 1), so its ends are the `count = 1` samples of the two classes for that seed
 * (Wang et al. 2020, Fig. 8). Same request + same seed + same model version → identical bytes.
 *
 * Errors (problem+json): 422 unknown class, count/steps/size/seed out of range, unknown field,
 * `steps` without `interpolate_to`, `count` > 1 with `interpolate_to`, model of another task;
 * 404 unknown model; 503 model not loaded.
 */
import { randomInt } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OUTPUT_FORMATS } from '../imaging/encode.js';
import { encodeGrid, encodeTile, gridColumns, resizeTile } from '../imaging/grid.js';
import { fromNCHW } from '../imaging/tensor.js';
import { gaussianNoise, MAX_SEED } from '../inference/noise.js';
import { modelTag, type ModelEntry } from '../models/repository.js';
import { HttpProblem } from '../problem.js';
import { span } from '../tracing.js';
import { infer, parseOutputFormat, parseResponseFormat, resolveModel, RESPONSE_FORMATS, sendImage } from './common.js';
import { B64Json, imageContent, modelField, ProblemSchema } from './schemas.js';

const ClassRef = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 64 })]);

export const GenerateRequest = Type.Object({
  class: Type.Unsafe<number | string>({ ...ClassRef, description: 'class name (case-insensitive) or index; GET /v1/models/{name} lists them', examples: ['Sneaker'] }),
  model: modelField('generate', 'generator'),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SEED, description: 'uint32; random when absent; echoed in X-Seed' })),
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, default: 1 })),
  interpolate_to: Type.Optional(Type.Unsafe<number | string>({ ...ClassRef, description: 'second class: the reply is the interpolation row from `class` to it, z held fixed' })),
  steps: Type.Optional(Type.Integer({ minimum: 2, maximum: 16, description: 'interpolation frames (default 8); only with interpolate_to' })),
  output_format: Type.Optional(Type.Union(OUTPUT_FORMATS.map((f) => Type.Literal(f)))),
  layout: Type.Optional(Type.Union([Type.Literal('grid'), Type.Literal('json')])),
  size: Type.Optional(Type.Integer({ minimum: 16, maximum: 512, description: 'display side of each sample in px (sharp resize); default native' })),
  response_format: Type.Optional(Type.Union(RESPONSE_FORMATS.map((f) => Type.Literal(f)), { description: 'image (default): the grid\'s bytes; b64_json: { model, data: [{ b64_json, width, height }] } with that grid (layout=json has per-sample images instead)' })),
}, { additionalProperties: false, examples: [{ class: 'Sneaker', count: 4, seed: 42, size: 112 }] });
export type GenerateRequest = Static<typeof GenerateRequest>;

/**
 * Resolve a class reference against the manifest's class names.
 * @throws HttpProblem 422 listing the classes when `ref` is neither an index nor a name.
 */
export function resolveClass(classes: readonly string[], ref: number | string, field: string): number {
  const asIndex = typeof ref === 'number' ? ref : /^\d+$/.test(ref) ? Number(ref) : -1;
  if (asIndex >= 0 && asIndex < classes.length) return asIndex;
  if (typeof ref === 'string') {
    const i = classes.findIndex((c) => c.toLowerCase() === ref.toLowerCase());
    if (i >= 0) return i;
  }
  throw new HttpProblem(422, 'Unprocessable Content', `unknown ${field} ${JSON.stringify(ref)}; classes are ${classes.map((c, i) => `${i} ${JSON.stringify(c)}`).join(', ')}`, 'unknown-class', { classes });
}

const generate: FastifyPluginAsyncTypebox = async (app) => {
  async function handle(q: GenerateRequest, reply: FastifyReply, request: FastifyRequest) {
    const entry: ModelEntry = await resolveModel(app.models, 'generate', q.model);
    const classes = entry.manifest.classes ?? [];
    const zDim = entry.manifest.z_dim ?? 128;
    const [zSpec, ySpec] = entry.manifest.inputs as [typeof entry.manifest.inputs[0], typeof entry.manifest.inputs[0]];
    const format = parseOutputFormat(q.output_format) ?? 'png';
    const responseFormat = parseResponseFormat(q.response_format);
    if (responseFormat === 'b64_json' && q.layout === 'json') {
      throw new HttpProblem(422, 'Unprocessable Content', '`layout: json` already answers JSON (base64 PNG per sample); use it or `response_format: b64_json`, not both', 'invalid-field');
    }
    const a = resolveClass(classes, q.class, 'class');
    if (q.steps !== undefined && q.interpolate_to === undefined) {
      throw new HttpProblem(422, 'Unprocessable Content', '`steps` is only valid with `interpolate_to`', 'invalid-field');
    }
    if (q.interpolate_to !== undefined && (q.count ?? 1) > 1) {
      throw new HttpProblem(422, 'Unprocessable Content', '`count` must be 1 with `interpolate_to` (the reply is one interpolation row)', 'invalid-field');
    }
    const seed = q.seed ?? randomInt(MAX_SEED + 1);
    const k = classes.length;
    let n: number;
    let z: Float32Array;
    const y = (rows: number) => new Float32Array(rows * k);
    let yv: Float32Array;
    if (q.interpolate_to !== undefined) {
      const b = resolveClass(classes, q.interpolate_to, 'interpolate_to');
      n = q.steps ?? 8;
      const z0 = gaussianNoise(seed, zDim);
      z = new Float32Array(n * zDim);
      yv = y(n);
      for (let i = 0; i < n; i++) {
        z.set(z0, i * zDim);
        const t = i / (n - 1);
        yv[i * k + a] = 1 - t;
        yv[i * k + b] = yv[i * k + b]! + t; // a === b gives one-hot a on every frame
      }
    } else {
      n = q.count ?? 1;
      z = gaussianNoise(seed, n * zDim);
      yv = y(n);
      for (let i = 0; i < n; i++) yv[i * k + a] = 1;
    }
    const result = await infer(entry, {
      [zSpec.name]: { data: z, dims: [n, zDim] },
      [ySpec.name]: { data: yv, dims: [n, k] },
    }, request);
    const native = result.dims[3]!;
    const tiles = await span(request, 'tiles', () => Promise.all(Array.from({ length: n }, (_, i) => resizeTile(fromNCHW(result.data, result.dims, i), q.size ?? native))));
    reply.header('X-Seed', String(seed)).header('X-Model', modelTag(entry));
    if (q.layout === 'json') {
      const images = await Promise.all(tiles.map(async (t) => (await encodeTile(t, 'png')).toString('base64')));
      return reply.type('application/json').send({ seed, model: `${entry.name}@${entry.manifest.version}`, images });
    }
    const columns = q.interpolate_to !== undefined ? n : gridColumns(n);
    const side = tiles[0]!.width;
    return sendImage(reply, await span(request, 'encode', () => encodeGrid(tiles, columns, format)), format, responseFormat, `${entry.name}@${entry.manifest.version}`,
      columns * side, Math.ceil(n / columns) * side);
  }

  const schema = (where: 'body' | 'querystring') => ({
    tags: ['tasks'],
    summary: where === 'body' ? 'Generate class-conditional samples (JSON body)' : 'Generate class-conditional samples (query string, for browsers)',
    description: 'Same seed, same request → same bytes. The grid has ceil(sqrt(count)) columns (an interpolation is one row). Header X-Seed echoes the seed.',
    [where]: GenerateRequest,
    response: {
      200: {
        description: 'layout=grid: one grayscale image; layout=json: { seed, model, images: [base64 PNG] }; response_format=b64_json: { model, data: [{ b64_json, width, height }] }',
        content: {
          ...imageContent(),
          'application/json': { schema: Type.Union([Type.Object({ seed: Type.Integer(), model: Type.String(), images: Type.Array(Type.String({ contentEncoding: 'base64' })) }), B64Json]) },
        },
      },
      '4xx': ProblemSchema,
      '5xx': ProblemSchema,
    },
  });
  app.post('/v1/generate', { schema: schema('body') }, async (request, reply) => handle(request.body as GenerateRequest, reply, request));
  // No automatic HEAD twin: a HEAD would run a whole generation to send no body. HEAD is 405 instead.
  app.get('/v1/generate', { exposeHeadRoute: false, schema: schema('querystring') }, async (request, reply) => handle(request.query as GenerateRequest, reply, request));
  app.head('/v1/generate', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('Allow', 'GET, POST');
    throw new HttpProblem(405, 'Method Not Allowed', 'HEAD would run a generation for nothing; use GET or POST', 'method-not-allowed');
  });
};

export default generate;
