/**
 * `POST /v1/translate`: image → image with a translator model (default: the PONO-MS colorizer).
 *
 * multipart/form-data fields: `image` (file, required; any format sharp reads, EXIF orientation
 * applied, alpha flattened onto white), `model` (text, optional, default translator) and
 * `output_format` (`png` | `jpeg` | `webp`, default `png`). The image is converted to BT.601 luma,
 * padded by mirroring to the model's size multiple, run, and cropped back: the reply has the
 * input's width and height, the format's content type, and `X-Model: name@version`.
 *
 * Errors (problem+json): 400 missing `image`; 404 unknown model; 415 not multipart, not an image or
 * undecodable; 413 file over MAX_UPLOAD_BYTES or more than MAX_PIXELS pixels; 422 bad field value
 * or a model of another task; 503 model not loaded (yet, or failed).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { decodeLuma, probe } from '../imaging/decode.js';
import { CONTENT_TYPES, encode, OUTPUT_FORMATS, type OutputFormat } from '../imaging/encode.js';
import { fromNCHW, toNCHW } from '../imaging/tensor.js';
import type { ModelEntry, ModelRepository } from '../models/repository.js';
import type { Manifest } from '../models/manifest.js';
import { HttpProblem } from '../problem.js';
import { ProblemSchema } from './schemas.js';

export interface MultipartUpload { files: Map<string, Buffer>; fields: Map<string, string> }

/**
 * Read a multipart request into memory: the named file fields (`fileFields`) and text fields
 * (`textFields`). Each file is capped by the multipart plugin's `fileSize` limit.
 * @throws HttpProblem 415 if the request is not multipart/form-data; 422 for an unknown or repeated
 *   field; the plugin's 413 when a file is over MAX_UPLOAD_BYTES.
 */
export async function readUpload(request: FastifyRequest, fileFields: readonly string[], textFields: readonly string[]): Promise<MultipartUpload> {
  if (!request.isMultipart()) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'send the request as multipart/form-data with an `image` file field', 'not-multipart');
  }
  const files = new Map<string, Buffer>();
  const fields = new Map<string, string>();
  for await (const part of request.parts()) {
    const known = part.type === 'file' ? fileFields.includes(part.fieldname) : textFields.includes(part.fieldname);
    if (!known || files.has(part.fieldname) || fields.has(part.fieldname)) {
      if (part.type === 'file') part.file.resume();
      const allowed = [...fileFields.map((f) => `${f} (file)`), ...textFields].join(', ');
      throw new HttpProblem(422, 'Unprocessable Content', known ? `field \`${part.fieldname}\` is given twice` : `unknown ${part.type} field \`${part.fieldname}\`; accepted fields: ${allowed}`, 'invalid-field');
    }
    if (part.type === 'file') files.set(part.fieldname, await part.toBuffer());
    else fields.set(part.fieldname, String(part.value));
  }
  return { files, fields };
}

/**
 * Resolve the `model` field (or the task's default) to a ready model of `task`.
 * @throws HttpProblem 404 unknown model, 422 model of another task, 503 model not ready.
 */
export function resolveModel(models: ModelRepository, task: Manifest['task'], name: string | undefined): ModelEntry {
  const entry = name === undefined ? models.defaultFor(task) : models.get(name);
  if (!entry) {
    if (name === undefined) throw new HttpProblem(503, 'Service Unavailable', `no ${task} model is installed`, 'no-model');
    throw new HttpProblem(404, 'Not Found', `unknown model \`${name}\`; GET /v1/models lists the installed ones`, 'unknown-model');
  }
  if (entry.manifest.task !== task) {
    throw new HttpProblem(422, 'Unprocessable Content', `model \`${entry.name}\` is a ${entry.manifest.task} model, not a ${task} model`, 'wrong-task');
  }
  if (entry.state !== 'ready') {
    throw new HttpProblem(503, 'Service Unavailable', entry.state === 'loading' ? `model \`${entry.name}\` is still loading; retry shortly` : `model \`${entry.name}\` failed to load: ${entry.error}`, 'model-unavailable', { retry: entry.state === 'loading' });
  }
  return entry;
}

/** Validate `output_format`. @throws HttpProblem 422 for anything but png, jpeg, webp. */
export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === '') return 'png';
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new HttpProblem(422, 'Unprocessable Content', `output_format must be one of ${OUTPUT_FORMATS.join(', ')}; got ${JSON.stringify(value)}`, 'invalid-field');
}

const translate: FastifyPluginAsyncTypebox = async (app) => {
  const { maxPixels } = app.limits;
  app.post('/v1/translate', {
    schema: {
      tags: ['tasks'],
      summary: 'Translate an image (default: colorize a grayscale photo with PONO-MS)',
      consumes: ['multipart/form-data'],
      body: Type.Object({
        image: Type.String({ format: 'binary', description: 'the input image (PNG, JPEG, WebP, TIFF, GIF, AVIF…)' }),
        model: Type.Optional(Type.String({ description: 'model name (GET /v1/models); default: the default translator' })),
        output_format: Type.Optional(Type.Union(OUTPUT_FORMATS.map((f) => Type.Literal(f)), { default: 'png' })),
      }),
      response: {
        200: {
          description: 'the translated image, same width and height as the input; header X-Model: name@version',
          content: Object.fromEntries(OUTPUT_FORMATS.map((f) => [CONTENT_TYPES[f], { schema: { type: 'string', format: 'binary' } }])),
        },
        '4xx': ProblemSchema,
        '5xx': ProblemSchema,
      },
    },
    // The body is streamed by readUpload, not parsed: the schema above documents it for OpenAPI.
    validatorCompiler: () => () => true,
  }, async (request, reply) => {
    const upload = await readUpload(request, ['image'], ['model', 'output_format']);
    const format = parseOutputFormat(upload.fields.get('output_format'));
    const entry = resolveModel(app.models, 'translate', upload.fields.get('model'));
    const image = upload.files.get('image');
    if (!image || image.length === 0) {
      throw new HttpProblem(400, 'Bad Request', 'the multipart field `image` (a file) is required', 'missing-image');
    }
    await probe(image, maxPixels);
    const spec = entry.manifest.inputs[0]!;
    const { luma, width, height } = await decodeLuma(image, maxPixels, spec.size_multiple);
    const input = toNCHW(luma);
    const result = await app.inference.run(entry.name, input.data, input.dims);
    const body = await encode(fromNCHW(result.data, result.dims), width, height, format);
    return reply
      .header('X-Model', `${entry.name}@${entry.manifest.version}`)
      .header('Server-Timing', `infer;dur=${result.inferMs.toFixed(1)}`)
      .type(CONTENT_TYPES[format])
      .send(body);
  });
};

export default translate;
