/**
 * `POST /v1/translate`: image → image with a translator model (default: the PONO-MS colorizer).
 *
 * multipart/form-data fields, or the same as a JSON object (`image` as base64 or a `data:` URL):
 * `image` (required; any format sharp reads, EXIF orientation applied, alpha flattened onto white),
 * `model` (optional, default translator), `output_format` (`png` | `jpeg` | `webp`, default the input's format: `replyFormat`) and
 * `response_format` (`image`: the bytes, default; `b64_json`: `{ model, data: [{ b64_json, width, height }] }`). The image is converted to BT.601 luma,
 * padded by mirroring to the model's size multiple, run, and cropped back: the reply has the
 * input's width and height, the format's content type, and `X-Model: name@version`.
 *
 * Large photos (issues 28 and 31): an image whose longer side exceeds the model's
 * `serving.working_max_side` (default {@link DEFAULT_TRANSLATE_WORKING_SIDE}) is colorized at that size
 * and its chroma upsampled onto the full-resolution luma ({@link chromaOntoLuma}): the reply is full size,
 * its luma the input's, and the forward pass (memory, time) is bounded by the working size.
 * `X-Working-Size: WxH` says the size the model ran at.
 *
 * Colour hints (models with a `hints` input: the default `colorize-pono` 3, `colorize-hints`): `hints` (an RGBA image of the
 * input's size; alpha ≥ 128 = hint, its RGB the wanted colour) or `hint_points` (a JSON list of
 * `{x, y, color: "#rrggbb", radius?}`), turned into the model's input by `imaging/hints.ts`; `X-Hints` = the
 * hinted working pixels. Hints for a model without that input, both forms at once, a hints image of another
 * size, a point outside the image, a bad colour or radius → 422.
 *
 * Errors (problem+json): 400 missing `image` or malformed multipart body; 404 unknown model; 415 not multipart, not an image or
 * undecodable; 413 file over MAX_UPLOAD_BYTES or more than MAX_PIXELS pixels; 422 bad field value
 * or a model of another task; 503 model not loaded (yet, or failed).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import sharp from 'sharp';
import { decodeLuma, probe, workingRaster } from '../imaging/decode.js';
import { workingSize } from '../imaging/mask.js';
import { chromaOntoLuma } from '../imaging/upsample.js';
import { decodeHintImage, hintsTensor, MAX_HINT_POINTS, parseHintPoints, rasterizePoints } from '../imaging/hints.js';
import { encode } from '../imaging/encode.js';
import { fromNCHW, toNCHW } from '../imaging/tensor.js';
import { HttpProblem } from '../problem.js';
import { span } from '../tracing.js';
import { infer, jsonBodyLimit, parseOutputFormat, parseResponseFormat, readUpload, replyFormat, resolveModel, sendImage } from './common.js';
import { imageResponses, modelField, OutputFormatField, ResponseFormatField } from './schemas.js';
import { modelTag } from '../models/repository.js';

/** Longer side (px) a translator runs at when its manifest sets no `serving.working_max_side`. */
export const DEFAULT_TRANSLATE_WORKING_SIDE = 768;

const translate: FastifyPluginAsyncTypebox = async (app) => {
  const { maxPixels } = app.limits;
  // `POST /v1/colorize` is an alias (the default translator colorizes): same fields, same answers.
  for (const url of ['/v1/translate', '/v1/colorize'] as const) app.post(url, {
    schema: {
      tags: ['tasks'],
      summary: url === '/v1/translate' ? 'Translate an image (default: colorize a grayscale photo with PONO-MS)' : 'Colorize a grayscale photo: an alias of POST /v1/translate',
      consumes: ['multipart/form-data', 'application/json'],
      body: Type.Object({
        image: Type.String({ format: 'binary', description: 'the input image (PNG, JPEG, WebP, TIFF, GIF, AVIF…): a file (multipart), or base64 / a data: URL (JSON)' }),
        model: modelField('translate', 'translator'),
        hints: Type.Optional(Type.String({ format: 'binary', description: 'colour hints (models whose inputs include `hints`: the default colorize-pono, colorize-hints): an RGBA image of the input\'s size; pixels with alpha ≥ 128 ask for their RGB\'s colour there (its chroma: the luma stays the input\'s). A file (multipart) or base64 (JSON)' })),
        hint_points: Type.Optional(Type.String({ description: 'colour hints as a JSON list (a list in JSON bodies, its text in multipart): [{"x": 120, "y": 40, "color": "#3366cc", "radius": 2}] in the input\'s pixels; each a square of side 2·radius+1 (radius 0–64, default 2). Not together with `hints`; with a model that takes hints (the default colorize-pono, colorize-hints); `[]` = no hints, for any model', examples: ['[]'] })),
        output_format: OutputFormatField,
        response_format: ResponseFormatField,
      }),
      response: imageResponses('the translated image, same width and height as the input (or b64_json); header X-Model: name@version'),
    },
    // The body is streamed by readUpload, not parsed: the schema above documents it for OpenAPI.
    validatorCompiler: () => () => true,
    bodyLimit: jsonBodyLimit(app.limits.maxUploadBytes, 1),
    // hint_points: MAX_HINT_POINTS objects of x, y, color, radius (5 values each), and the other fields
    config: { jsonMaxValues: MAX_HINT_POINTS * 5 + 256 },
  }, async (request, reply) => {
    const upload = await readUpload(request, ['image', 'hints'], ['model', 'output_format', 'response_format', 'hint_points'], true);
    const askedFormat = parseOutputFormat(upload.fields.get('output_format'));
    const responseFormat = parseResponseFormat(upload.fields.get('response_format'));
    const entry = await resolveModel(app.models, 'translate', upload.fields.get('model'));
    const image = upload.files.get('image');
    if (!image || image.length === 0) {
      throw new HttpProblem(400, 'Bad Request', 'the field `image` (a file, or base64 in JSON) is required', 'missing-image');
    }
    const info = await probe(image, maxPixels);
    const format = replyFormat(askedFormat, info.format);
    const spec = entry.manifest.inputs.find((i) => i.name !== 'hints') ?? entry.manifest.inputs[0]!;
    const hintSpec = entry.manifest.inputs.find((i) => i.name === 'hints');
    const hintFile = upload.files.get('hints');
    // `[]` (no points: the form's pre-filled example) is the same as no `hint_points`, for every model
    const rawPoints = upload.fields.get('hint_points');
    const hintPoints = rawPoints !== undefined && /^\s*\[\s*\]\s*$/.test(rawPoints) ? undefined : rawPoints;
    if ((hintFile || hintPoints) && !hintSpec) {
      throw new HttpProblem(422, 'Unprocessable Content', `model \`${entry.name}\` does not take colour hints; GET /v1/models lists the models whose inputs include \`hints\``, 'hints-unsupported');
    }
    if (hintFile && hintPoints) throw new HttpProblem(422, 'Unprocessable Content', 'give `hints` (an RGBA image) or `hint_points` (a JSON list), not both', 'invalid-hints');
    const hintImage = hintFile ? await decodeHintImage(hintFile, info.width, info.height, maxPixels)
      : hintPoints ? rasterizePoints(parseHintPoints(hintPoints, info.width, info.height), info.width, info.height) : undefined;
    /** The feeds for a gray working copy (padded `pw` × `ph`, image `ww` × `wh` inside it). */
    const feedsFor = async (gray: { data: Buffer; width: number; height: number }, ww: number, wh: number) => {
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = { [spec.name]: toNCHW({ ...gray, channels: 1 }) };
      if (hintSpec) {
        if (hintImage) {
          const t = await hintsTensor(hintImage, { width: ww, height: wh }, { width: gray.width, height: gray.height });
          reply.header('X-Hints', String(t.count));
          feeds[hintSpec.name] = t;
        } else feeds[hintSpec.name] = { data: new Float32Array(3 * gray.width * gray.height), dims: [1, 3, gray.height, gray.width] };
      }
      return feeds;
    };
    const maxSide = entry.manifest.serving.working_max_side ?? DEFAULT_TRANSLATE_WORKING_SIDE;
    const tag = modelTag(entry);
    let body: Buffer;
    let width: number, height: number;
    if (Math.max(info.width, info.height) <= maxSide) {
      const decoded = await span(request, 'decode', () => decodeLuma(image, maxPixels, spec.size_multiple));
      ({ width, height } = decoded);
      const result = await infer(entry, await feedsFor(decoded.luma, width, height), request);
      body = await span(request, 'encode', () => encode(fromNCHW(result.data, result.dims), width, height, format));
      reply.header('X-Working-Size', `${width}x${height}`);
    } else {
      // colour at the working size, detail at full size
      const full = await span(request, 'decode', () => decodeLuma(image, maxPixels, 1));
      ({ width, height } = full);
      const size = workingSize(width, height, maxSide);
      const small = await workingRaster(full.luma, width, height, size, spec.size_multiple);
      const result = await infer(entry, await feedsFor(small, size.width, size.height), request);
      const out = fromNCHW(result.data, result.dims);
      const colour = await sharp(out.data, { raw: { width: out.width, height: out.height, channels: 3 } })
        .extract({ left: 0, top: 0, width: size.width, height: size.height }).raw().toBuffer();
      const lumaFull = full.luma.width === width && full.luma.height === height ? full.luma.data
        : await sharp(full.luma.data, { raw: { width: full.luma.width, height: full.luma.height, channels: 1 } }).extract({ left: 0, top: 0, width, height }).extractChannel(0).raw().toBuffer();
      const rgb = await span(request, 'upsample', () => chromaOntoLuma({ data: colour, width: size.width, height: size.height, channels: 3 }, lumaFull, width, height));
      body = await span(request, 'encode', () => encode(rgb, width, height, format));
      reply.header('X-Working-Size', `${size.width}x${size.height}`);
    }
    reply.header('X-Model', tag);
    return sendImage(reply, body, format, responseFormat, tag, width, height);
  });
};

export default translate;
