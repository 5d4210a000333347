/**
 * `POST /v1/explain` (issue 34): what the network sees — the PONO moments (`mu`, `sigma`; Li et al. 2019, §3,
 * Figs. 1 and 3) and the Attentive Normalization layouts (Wang et al. 2020, Fig. 5) of one forward pass of
 * `model`, as images.
 *
 * Inputs: the task route's inputs of the chosen `model` (required), as multipart, JSON (files as base64 /
 * `data:` URLs) — translate and upscale: `image`; inpaint: `image` + `mask` (or an image with alpha);
 * generate: `class` + `seed` (default 0) — and `output_format` (optional). The pass runs on the model's
 * `explain.onnx` (manifest `explain`; opened on the first call, never at start), fetching only the maps, at a
 * bounded size: the input reduced to EXPLAIN_MAX_SIDE (512 px; an upscaler's tile) on its longer side.
 * Passes run one at a time (EXPLAIN_QUEUE waiting, then 503): the task routes never wait for them.
 *
 * Reply: JSON `{ model, width, height, maps: [{ name, layer, kind, width, height, b64_png, … }] }` (map size
 * = the layer's), kinds: `pono_mu` / `pono_sigma` / `pono_dms_beta` / `pono_dms_gamma` (viridis heatmap, min–max per map, `range` in the layer's
 * units), `an_layout` (winning entity per position blended over the input, `shares` and `regions` = entities
 * winning ≥ 1 % of positions) and `an_sampling` (grid self-sampling positions, `points` [x, y] in the layer's
 * pixels, marked on the layout enlarged `scale` times); with `output_format` one contact-sheet image of every map instead.
 * Same input, same maps. Errors (problem+json): 400 no `model` or a missing input; 404 unknown model; 422 a
 * model whose graph has no PONO or AN layer (`no-maps`) or a bad field; 413/415 as the image routes;
 * 503 model not ready or explain queue full.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import sharp from 'sharp';
import { decodeLuma, decodeRgbPadded, probe, workingRaster, type RawImage } from '../imaging/decode.js';
import { CONTENT_TYPES, encode, OUTPUT_FORMATS } from '../imaging/encode.js';
import { caption, contactSheet, gridSamplingPoints, heatmap, layoutImage, markPoints, png } from '../imaging/explain.js';
import { checkMaskSize, decodeMask, decodeRgb, maskFromAlpha, workingCopy, workingSize } from '../imaging/mask.js';
import { fromNCHW, maskToNCHW, toNCHW } from '../imaging/tensor.js';
import { gaussianNoise, MAX_SEED } from '../inference/noise.js';
import type { Feeds } from '../inference/messages.js';
import { HttpProblem } from '../problem.js';
import { jsonBodyLimit, parseIntegerField, parseOutputFormat, readUpload } from './common.js';
import { resolveClass } from './generate.js';
import { imageContent, ProblemSchema } from './schemas.js';
import { modelTag } from '../models/repository.js';

/** Longest side (px) an explain pass runs at. */
export const EXPLAIN_MAX_SIDE = 512;
/** The an_sampling picture is the layout enlarged by an integer factor to about this side (px). */
export const SAMPLING_SIDE = 224;
/** Explain requests waiting for the one running pass; more → 503. */
export const EXPLAIN_QUEUE = 4;

const MapEntry = Type.Object({
  caption: Type.Optional(Type.String({ description: 'what the map shows, in words' })),
  name: Type.String({ description: 'the explain graph output, e.g. pono1_mu, an1_layout' }),
  layer: Type.String({ description: 'the network layer (PyTorch module path)' }),
  kind: Type.Union([Type.Literal('pono_mu'), Type.Literal('pono_sigma'), Type.Literal('pono_dms_beta'), Type.Literal('pono_dms_gamma'), Type.Literal('an_layout'), Type.Literal('an_sampling')]),
  width: Type.Integer(), height: Type.Integer(),
  range: Type.Optional(Type.Tuple([Type.Number(), Type.Number()], { description: 'pono_*: the map\'s min and max (the heatmap is min–max scaled)' })),
  shares: Type.Optional(Type.Array(Type.Number(), { description: 'an_layout: share of positions each entity wins' })),
  regions: Type.Optional(Type.Integer({ description: 'an_layout: entities winning at least 1 % of positions (1 = a flat layout)' })),
  points: Type.Optional(Type.Array(Type.Tuple([Type.Number(), Type.Number()]), { description: 'an_sampling: [x, y] in the layer\'s pixels' })),
  scale: Type.Optional(Type.Integer({ description: 'an_sampling: the picture is the layout enlarged this many times (nearest), the points marked on it' })),
  b64_png: Type.String({ contentEncoding: 'base64' }),
});

const explain: FastifyPluginAsyncTypebox = async (app) => {
  const { maxPixels } = app.limits;
  let running: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  /** One pass at a time; at most EXPLAIN_QUEUE waiting. */
  async function exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (waiting >= EXPLAIN_QUEUE) throw new HttpProblem(503, 'Service Unavailable', `${waiting} explain requests are waiting; retry after 2 s`, 'queue-full', { retry_after_s: 2 });
    waiting++;
    const prev = running;
    let done!: () => void;
    running = new Promise<void>((r) => { done = r; });
    try {
      await prev;
      waiting--;
      return await work();
    } finally {
      done();
    }
  }

  app.post('/v1/explain', {
    schema: {
      tags: ['tasks'],
      summary: 'What the network sees: PONO moments and Attentive Normalization layouts of one pass, as images',
      description: 'Send the task inputs of the chosen model (translate/upscale: image; inpaint: image + mask; generate: class + seed). Models without PONO or AN layers answer 422.',
      consumes: ['multipart/form-data', 'application/json'],
      body: Type.Object({
        model: Type.String({ description: 'a model whose graph has PONO or AN layers (GET /v1/models: `explain`), e.g. colorize-pono-auto (with an image) or fashion-an (with a class)', examples: ['fashion-an'] }),
        image: Type.Optional(Type.String({ format: 'binary', description: 'translate, upscale, inpaint: the photo' })),
        mask: Type.Optional(Type.String({ format: 'binary', description: 'inpaint: white = fill' })),
        class: Type.Optional(Type.String({ description: 'generate: class name or index (ignored for the other tasks)', examples: ['Bag'] })),
        seed: Type.Optional(Type.String({ description: 'generate: seed, digits only (default 0; ignored for the other tasks)', examples: ['0'] })),
        output_format: Type.Optional(Type.Union(OUTPUT_FORMATS.map((f) => Type.Literal(f)), { description: 'one contact-sheet image of every map instead of JSON' })),
      }),
      response: {
        200: {
          description: 'the maps (JSON), or a contact sheet (with output_format)',
          content: {
            'application/json': { schema: Type.Object({ model: Type.String(), width: Type.Integer(), height: Type.Integer(), seed: Type.Optional(Type.Integer()), maps: Type.Array(MapEntry) }) },
            ...imageContent(),
          },
        },
        '4xx': ProblemSchema,
        '5xx': ProblemSchema,
      },
    },
    validatorCompiler: () => () => true,
    bodyLimit: jsonBodyLimit(app.limits.maxUploadBytes, 2),
  }, async (request, reply) => {
    const upload = await readUpload(request, ['image', 'mask'], ['model', 'class', 'seed', 'output_format']);
    const name = upload.fields.get('model')?.trim();
    if (!name) throw new HttpProblem(400, 'Bad Request', 'the field `model` is required: the model whose maps to show (GET /v1/models lists those with `explain`)', 'missing-model');
    const format = upload.fields.has('output_format') ? parseOutputFormat(upload.fields.get('output_format')) : undefined;
    const entry = app.models.get(name);
    if (!entry) throw new HttpProblem(404, 'Not Found', `unknown model \`${name}\`; GET /v1/models lists the installed ones`, 'unknown-model');
    const ex = entry.manifest.explain;
    if (!ex) throw new HttpProblem(422, 'Unprocessable Content', `model \`${name}\` has no PONO or AN layer: there are no maps to show`, 'no-maps');
    await app.models.ensureLoaded(entry);
    if (entry.state !== 'ready') throw new HttpProblem(503, 'Service Unavailable', `model \`${name}\` is not ready`, 'model-unavailable', { retry: entry.state === 'loading' });
    const task = entry.manifest.task;
    const image = upload.files.get('image');
    const needImage = task !== 'generate';
    if (needImage && (!image || image.length === 0)) throw new HttpProblem(400, 'Bad Request', `the field \`image\` is required for a ${task} model`, 'missing-image');
    const feeds: Feeds = {};
    let backdrop: RawImage | undefined; // the input, for the layouts
    let width = 0, height = 0, seed: number | undefined;
    const inputs = entry.manifest.inputs;
    if (task === 'translate' || task === 'upscale') {
      const info = await probe(image!, maxPixels);
      const spec = inputs.find((i) => i.name !== 'hints')!;
      const side = task === 'upscale' ? Math.min(EXPLAIN_MAX_SIDE, entry.manifest.serving.tile ?? 256) : Math.min(EXPLAIN_MAX_SIDE, entry.manifest.serving.working_max_side ?? EXPLAIN_MAX_SIDE);
      const size = workingSize(info.width, info.height, side);
      ({ width, height } = size);
      const full = task === 'upscale' ? (await decodeRgbPadded(image!, maxPixels, 1)).rgb : (await decodeLuma(image!, maxPixels, 1)).luma;
      const raw = await workingRaster(full, info.width, info.height, size, spec.size_multiple);
      feeds[spec.name] = toNCHW(raw);
      const hints = inputs.find((i) => i.name === 'hints');
      if (hints) feeds[hints.name] = { data: new Float32Array(3 * raw.width * raw.height), dims: [1, 3, raw.height, raw.width] };
      backdrop = raw;
    } else if (task === 'inpaint') {
      const info = await probe(image!, maxPixels);
      const maskBytes = upload.files.get('mask');
      if ((!maskBytes || maskBytes.length === 0) && !info.hasAlpha) throw new HttpProblem(400, 'Bad Request', 'the field `mask` (white = fill) is required for an inpaint model unless `image` has alpha', 'missing-mask');
      const { rgb, alpha } = await decodeRgb(image!, maxPixels);
      const mask = maskBytes && maskBytes.length > 0 ? checkMaskSize(await decodeMask(maskBytes, maxPixels), rgb.width, rgb.height) : await maskFromAlpha(alpha!);
      const [imageSpec, maskSpec] = inputs as [typeof inputs[0], typeof inputs[0]];
      const size = workingSize(rgb.width, rgb.height, Math.min(EXPLAIN_MAX_SIDE, entry.manifest.serving.working_max_side ?? EXPLAIN_MAX_SIDE));
      ({ width, height } = size);
      const work = await workingCopy(rgb, mask, size, Math.max(imageSpec.size_multiple, maskSpec.size_multiple));
      feeds[imageSpec.name] = toNCHW(work.image);
      feeds[maskSpec.name] = maskToNCHW(work.mask);
      backdrop = work.image;
    } else {
      const classes = entry.manifest.classes ?? [];
      const cls = upload.fields.get('class');
      if (cls === undefined || cls === '') throw new HttpProblem(400, 'Bad Request', 'the field `class` is required for a generate model', 'missing-class');
      const a = resolveClass(classes, /^\d+$/.test(cls) ? Number(cls) : cls, 'class');
      const s = upload.fields.get('seed');
      seed = parseIntegerField('seed', s, 0, MAX_SEED) ?? 0;
      const zDim = entry.manifest.z_dim ?? 128;
      const [zSpec, ySpec] = inputs as [typeof inputs[0], typeof inputs[0]];
      const y = new Float32Array(classes.length);
      y[a] = 1;
      feeds[zSpec.name] = { data: gaussianNoise(seed, zDim), dims: [1, zDim] };
      feeds[ySpec.name] = { data: y, dims: [1, classes.length] };
    }
    let poolName: string;
    try {
      poolName = await app.models.explainModel(entry);
    } catch (err) {
      request.log.error({ err, model: name }, 'explain graph failed to load');
      throw new HttpProblem(503, 'Service Unavailable', `the explain graph of model \`${name}\` could not be opened`, 'model-unavailable');
    }
    const outName = entry.manifest.outputs[0]!.name;
    const fetch = [...new Set([...ex.maps.map((m) => m.output), ...(task === 'generate' ? [outName] : [])])];
    const { outputs, inferMs } = await exclusive(() => app.models.runExplain(poolName, feeds, fetch));
    if (task === 'generate') {
      backdrop = fromNCHW(outputs[outName]!.data, outputs[outName]!.dims);
      ({ width, height } = backdrop);
    }
    const atSize = async (w: number, h: number): Promise<RawImage | undefined> => {
      if (!backdrop) return undefined;
      const data = await sharp(backdrop.data, { raw: { width: backdrop.width, height: backdrop.height, channels: backdrop.channels as 1 | 3 } })
        .extract({ left: 0, top: 0, width: Math.min(width, backdrop.width), height: Math.min(height, backdrop.height) })
        .resize(w, h, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
      return { data, width: w, height: h, channels: backdrop.channels };
    };
    const maps: { name: string; layer: string; kind: string; image: RawImage; extra: Record<string, unknown> }[] = [];
    for (const m of ex.maps) {
      const t = outputs[m.output]!;
      if (m.kind === 'an_layout') {
        const [, , h, w] = t.dims as [number, number, number, number];
        const under = await atSize(w, h);
        const lay = layoutImage(t.data, t.dims, 0, under);
        maps.push({ name: m.output, layer: m.layer, kind: m.kind, image: lay.image, extra: { shares: lay.shares.map((v) => Number(v.toFixed(4))), regions: lay.regions } });
        if (m.sampling?.mode === 'grid') {
          const points = gridSamplingPoints(h, w, m.sampling.n ?? t.dims[1]!, m.sampling.pool ?? 2);
          // drawn over the layout, enlarged (nearest) so that the marks stay small next to the map's cells
          const k = Math.max(1, Math.floor(SAMPLING_SIDE / Math.max(w, h)));
          const big = await sharp(lay.image.data, { raw: { width: w, height: h, channels: 3 } }).resize(w * k, h * k, { kernel: 'nearest' }).raw().toBuffer();
          const marked = markPoints({ data: big, width: w * k, height: h * k, channels: 3 }, points.map(([x, y]) => [x * k + (k - 1) / 2, y * k + (k - 1) / 2] as [number, number]));
          maps.push({ name: m.output.replace(/_layout$/, '_sampling'), layer: m.layer, kind: 'an_sampling', image: marked, extra: { points, scale: k } });
        }
      } else {
        const hm = heatmap(t.data, t.dims, 0);
        maps.push({ name: m.output, layer: m.layer, kind: m.kind, image: hm.image, extra: { range: hm.range.map((v) => Number(v.toPrecision(6))) } });
      }
    }
    const tag = modelTag(entry);
    const res = reply as unknown as FastifyReply; // the content-typed 200 schema is for OpenAPI; the body is built here
    res.header('X-Model', tag).header('Server-Timing', `infer;dur=${inferMs.toFixed(1)}`);
    if (format) {
      const sheet = await contactSheet(maps.map((m) => ({ name: caption(m.kind, m.layer).short, image: m.image })));
      return res.type(CONTENT_TYPES[format]).send(await encode(sheet, sheet.width, sheet.height, format));
    }
    const out = await Promise.all(maps.map(async (m) => ({ name: m.name, layer: m.layer, kind: m.kind, caption: caption(m.kind, m.layer).long, width: m.image.width, height: m.image.height, ...m.extra, b64_png: (await png(m.image)).toString('base64') })));
    return res.type('application/json').send({ model: tag, width, height, ...(seed !== undefined ? { seed } : {}), maps: out });
  });
};

export default explain;
