/**
 * `POST /v1/translate`: image → image with a translator model (default: the PONO-MS colorizer).
 *
 * multipart/form-data fields, or the same as a JSON object (`image` as base64 or a `data:` URL):
 * `image` (required; any format sharp reads, EXIF orientation applied, alpha flattened onto white),
 * `model` (optional, default translator), `output_format` (`png` | `jpeg` | `webp`, default `png`) and
 * `response_format` (`image`: the bytes, default; `b64_json`: `{ model, data: [{ b64_json, width, height }] }`). The image is converted to BT.601 luma,
 * padded by mirroring to the model's size multiple, run, and cropped back: the reply has the
 * input's width and height, the format's content type, and `X-Model: name@version`.
 *
 * Errors (problem+json): 400 missing `image` or malformed multipart body; 404 unknown model; 415 not multipart, not an image or
 * undecodable; 413 file over MAX_UPLOAD_BYTES or more than MAX_PIXELS pixels; 422 bad field value
 * or a model of another task; 503 model not loaded (yet, or failed).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { decodeLuma, probe } from '../imaging/decode.js';
import { CONTENT_TYPES, encode, OUTPUT_FORMATS } from '../imaging/encode.js';
import { fromNCHW, toNCHW } from '../imaging/tensor.js';
import { HttpProblem } from '../problem.js';
import { span } from '../tracing.js';
import { infer, jsonBodyLimit, parseOutputFormat, parseResponseFormat, readUpload, resolveModel, RESPONSE_FORMATS, sendImage } from './common.js';
import { B64Json, modelField, ProblemSchema } from './schemas.js';

const translate: FastifyPluginAsyncTypebox = async (app) => {
  const { maxPixels } = app.limits;
  app.post('/v1/translate', {
    schema: {
      tags: ['tasks'],
      summary: 'Translate an image (default: colorize a grayscale photo with PONO-MS)',
      consumes: ['multipart/form-data', 'application/json'],
      body: Type.Object({
        image: Type.String({ format: 'binary', description: 'the input image (PNG, JPEG, WebP, TIFF, GIF, AVIF…): a file (multipart), or base64 / a data: URL (JSON)' }),
        model: modelField('translate', 'translator'),
        output_format: Type.Optional(Type.Union(OUTPUT_FORMATS.map((f) => Type.Literal(f)), { default: 'png' })),
        response_format: Type.Optional(Type.Union(RESPONSE_FORMATS.map((f) => Type.Literal(f)), { default: 'image', description: 'image: the bytes; b64_json: { model, data: [{ b64_json, width, height }] }' })),
      }),
      response: {
        200: {
          description: 'the translated image, same width and height as the input (or b64_json); header X-Model: name@version',
          content: {
            ...Object.fromEntries(OUTPUT_FORMATS.map((f) => [CONTENT_TYPES[f], { schema: { type: 'string', format: 'binary' } }])),
            'application/json': { schema: B64Json },
          },
        },
        '4xx': ProblemSchema,
        '5xx': ProblemSchema,
      },
    },
    // The body is streamed by readUpload, not parsed: the schema above documents it for OpenAPI.
    validatorCompiler: () => () => true,
    bodyLimit: jsonBodyLimit(app.limits.maxUploadBytes, 1),
  }, async (request, reply) => {
    const upload = await readUpload(request, ['image'], ['model', 'output_format', 'response_format']);
    const format = parseOutputFormat(upload.fields.get('output_format'));
    const responseFormat = parseResponseFormat(upload.fields.get('response_format'));
    const entry = resolveModel(app.models, 'translate', upload.fields.get('model'));
    const image = upload.files.get('image');
    if (!image || image.length === 0) {
      throw new HttpProblem(400, 'Bad Request', 'the field `image` (a file, or base64 in JSON) is required', 'missing-image');
    }
    await probe(image, maxPixels);
    const spec = entry.manifest.inputs[0]!;
    const { luma, width, height } = await span(request, 'decode', () => decodeLuma(image, maxPixels, spec.size_multiple));
    const input = toNCHW(luma);
    const result = await infer(entry, { [spec.name]: input }, request);
    const body = await span(request, 'encode', () => encode(fromNCHW(result.data, result.dims), width, height, format));
    const tag = `${entry.name}@${entry.manifest.version}`;
    reply.header('X-Model', tag).header('Server-Timing', `infer;dur=${result.inferMs.toFixed(1)}`);
    return sendImage(reply, body, format, responseFormat, tag, width, height);
  });
};

export default translate;
