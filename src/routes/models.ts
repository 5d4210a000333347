/**
 * `GET /v1/models` (summary of every installed model) and `GET /v1/models/{name}` (its manifest,
 * with state, and without filesystem paths). 404 problem+json for an unknown name.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { publicManifest, stripPaths } from '../models/public.js';
import type { ModelEntry } from '../models/repository.js';
import { HttpProblem } from '../problem.js';
import { ProblemSchema } from './schemas.js';

const ModelSummary = Type.Object({
  name: Type.String(),
  version: Type.String(),
  task: Type.String(),
  default: Type.Boolean(),
  state: Type.Union([Type.Literal('available'), Type.Literal('loading'), Type.Literal('ready'), Type.Literal('failed')], { description: 'available: installed, opened on its first request (not in MODELS); loading; ready; failed (see error)' }),
  error: Type.Optional(Type.String()),
  load_ms: Type.Optional(Type.Number()),
  warmup_ms: Type.Optional(Type.Number()),
  provider: Type.Optional(Type.String({ description: 'execution provider in use: cpu or cuda:<device id>' })),
  precision: Type.Union([Type.Literal('fp32'), Type.Literal('int8')], { description: 'the variant served (PRECISION): fp32 (model.onnx) or int8 (model.int8.onnx); X-Model says +int8 for the latter' }),
  variants: Type.Array(Type.Object({ precision: Type.String(), within_bounds: Type.Optional(Type.Boolean()), quality: Type.Optional(Type.Unknown()) }), { description: 'the precisions this model ships, with the int8 variant\'s measured quality against fp32' }),
  batching: Type.Optional(Type.Unknown()),
  queue_depth: Type.Optional(Type.Integer()),
  description: Type.Optional(Type.String()),
  classes: Type.Optional(Type.Array(Type.String(), { description: 'generators: the class names, index order' })),
  inputs: Type.Array(Type.Unknown()),
  outputs: Type.Array(Type.Unknown()),
  metrics: Type.Unknown(),
});

/** The precisions a model ships: fp32 always, int8 with its recorded quality where the manifest has `variants.int8`. */
function variantsOf(m: ModelEntry): { precision: string; within_bounds?: boolean; quality?: unknown }[] {
  const q = m.manifest.variants?.int8;
  return [{ precision: 'fp32' }, ...(q ? [{ precision: 'int8', within_bounds: q.within_bounds, quality: stripPaths(q.quality) }] : [])];
}

function summary(m: ModelEntry) {
  return {
    name: m.name, version: m.manifest.version, task: m.manifest.task, default: m.manifest.serving.default,
    state: m.state, error: m.error, load_ms: m.loadMs, warmup_ms: m.warmupMs, provider: m.provider,
    precision: m.precision, variants: variantsOf(m),
    batching: m.batcher?.config, queue_depth: m.batcher?.depth, description: m.manifest.description, classes: m.manifest.classes,
    inputs: m.manifest.inputs, outputs: m.manifest.outputs, metrics: stripPaths(m.manifest.metrics),
  };
}

const models: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/models', {
    schema: { tags: ['models'], summary: 'List the installed models', response: { 200: Type.Object({ models: Type.Array(ModelSummary) }) } },
  }, async () => ({ models: app.models.list().map(summary) }));

  app.get('/v1/models/:name', {
    schema: {
      tags: ['models'], summary: "One model's manifest and state",
      params: Type.Object({ name: Type.String() }),
      response: { 200: Type.Object({ state: Type.String() }, { additionalProperties: true }), 404: ProblemSchema },
    },
  }, async (request) => {
    const m = app.models.get(request.params.name);
    if (!m) throw new HttpProblem(404, 'Not Found', `unknown model \`${request.params.name}\``, 'unknown-model');
    return { ...publicManifest(m.manifest), state: m.state, error: m.error, load_ms: m.loadMs, warmup_ms: m.warmupMs, provider: m.provider, precision: m.precision, batching: m.batcher?.config };
  });

  app.post('/v1/models/:name/reload', {
    config: { admin: true },
    schema: {
      tags: ['admin'], summary: 'Reload a model from its folder (admin token required); the old version serves until the new one is warm',
      params: Type.Object({ name: Type.String() }),
      response: { 200: Type.Object({ name: Type.String(), version: Type.String(), previous: Type.String(), load_ms: Type.Number() }), '4xx': ProblemSchema, '5xx': ProblemSchema },
    },
  }, async (request) => {
    if (!app.models.get(request.params.name)) throw new HttpProblem(404, 'Not Found', `unknown model \`${request.params.name}\``, 'unknown-model');
    try {
      const r = await app.models.reload(request.params.name);
      return { name: r.name, version: r.version, previous: r.previous, load_ms: r.loadMs };
    } catch (err) {
      throw new HttpProblem(422, 'Unprocessable Content', `reload failed, the current version keeps serving: ${(err as Error).message}`, 'reload-failed');
    }
  });
};

export default models;
