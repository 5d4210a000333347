/**
 * `POST /v1/upscale`: a photo → the same photo 4× (or 2×) larger, with an upscaler model (default
 * `upscale-pono`, the PONO-MS ×4 super-resolution translator of issue 33).
 *
 * multipart/form-data fields, or the same as a JSON object (`image` as base64 or a `data:` URL), or the image
 * itself as the body (fields in the query string): `image` (required; any format sharp reads, EXIF
 * orientation applied, alpha flattened onto white), `scale` (`4`, the model's own factor, default; or `2`:
 * the ×4 result resized with Lanczos-3), `model`, `output_format` (`png` | `jpeg` | `webp`, default the input's format: `replyFormat`),
 * `response_format` (`image` | `b64_json`). The reply is exactly `scale ×` the input's width and height,
 * header `X-Model: name@version`, `X-Tiles` (passes run) and `Server-Timing` (infer: the passes' sum).
 *
 * Memory and time are bounded by design: the size of the work (input × the model's ×4, for `scale=2` too: it is
 * the ×4 result resized) is checked against MAX_OUTPUT_PIXELS from the image header, before anything is
 * decoded (413, naming the largest input of that aspect ratio that fits); the tiles are at most 4× those of the
 * largest square input that fits, plus 4 (413 `too-many-tiles` for a thin 1×100000 strip); DEADLINE_MS bounds the
 * passes together (504); an input larger than the
 * model's `serving.tile` (or UPSCALE_TILE, raised to 2 × `serving.tile_overlap` + {@link MIN_CORE} if smaller) runs in
 * overlapping tiles of that side (`imaging/tiles.ts`), each a pass through the model's batcher, so a pass never
 * holds more than one tile's activations; the overlap is the network's reach, so the tiles join exactly.
 *
 * Errors (problem+json): 400 missing `image`, malformed multipart; 404 unknown model; 413 file over
 * MAX_UPLOAD_BYTES, input over MAX_PIXELS, output over MAX_OUTPUT_PIXELS (`output-too-large`); 415 not an
 * image; 422 bad `scale` or other field, model of another task; 503 model not loaded, queue full.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import sharp from 'sharp';
import { decodeRgbPadded, probe, type RawImage } from '../imaging/decode.js';
import { encode, encodeWith } from '../imaging/encode.js';
import { fromNCHW, toNCHW } from '../imaging/tensor.js';
import { crop, pasteCore, planTiles } from '../imaging/tiles.js';
import { HttpProblem } from '../problem.js';
import { span } from '../tracing.js';
import { infer, jsonBodyLimit, parseIntegerField, parseOutputFormat, parseResponseFormat, readUpload, replyFormat, resolveModel, sendImage } from './common.js';
import { imageResponses, modelField, OutputFormatField, ResponseFormatField } from './schemas.js';
import { modelTag } from '../models/repository.js';

/** The scales `scale` may ask for. */
export const UPSCALE_FACTORS = [2, 4] as const;
/** Tile side (input px) when neither UPSCALE_TILE nor the manifest says. */
export const DEFAULT_TILE = 256;
/** Smallest core (input px) a tile gives: a smaller UPSCALE_TILE is raised to 2 × overlap + this. */
export const MIN_CORE = 32;

/** Validate `scale` against the model's own factor (absent: the model's). @throws HttpProblem 422 for anything but 2 or 4 (≤ the model's), written as digits only. */
export function parseScale(value: string | undefined, modelScale: number): number {
  const factors = UPSCALE_FACTORS.filter((f) => f <= modelScale);
  // digits only (not " 4", "0x4", "4.0", "04"), as every non-JSON integer field
  const n = parseIntegerField('scale', value, Math.min(...factors), modelScale);
  if (n === undefined) return modelScale;
  if (!(factors as readonly number[]).includes(n)) {
    throw new HttpProblem(422, 'Unprocessable Content', `scale must be one of ${factors.join(', ')}; got ${JSON.stringify(value)}`, 'invalid-field');
  }
  return n;
}

/**
 * The largest `width`×`height` input (same aspect ratio, whole px, at least 1×1) whose ×`modelScale` result
 * has at most `maxOutputPixels` pixels: the size a refusal advises.
 */
export function largestInput(width: number, height: number, maxOutputPixels: number, modelScale: number): { width: number; height: number } {
  const f = Math.sqrt(maxOutputPixels / (modelScale * modelScale) / (width * height));
  let w = Math.max(1, Math.floor(width * f)), h = Math.max(1, Math.floor(height * f));
  while (w * h * modelScale * modelScale > maxOutputPixels && (w > 1 || h > 1)) { if (w >= h) w--; else h--; }
  return { width: w, height: h };
}

const upscale: FastifyPluginAsyncTypebox = async (app) => {
  const { maxPixels, maxOutputPixels } = app.limits;
  app.post('/v1/upscale', {
    schema: {
      tags: ['tasks'],
      summary: 'Upscale a photo 4× (or 2×) with the PONO-MS super-resolution model; copes with JPEG artefacts and noise',
      description: 'The reply is exactly scale × the input\'s width and height. Inputs larger than the model\'s tile run in overlapping tiles (memory bounded by the tile); outputs over MAX_OUTPUT_PIXELS are refused with 413 before any work.',
      consumes: ['multipart/form-data', 'application/json'],
      body: Type.Object({
        image: Type.String({ format: 'binary', description: 'the photo (PNG, JPEG, WebP, TIFF, GIF, AVIF…): a file (multipart), or base64 / a data: URL (JSON)' }),
        scale: Type.Optional(Type.Union(UPSCALE_FACTORS.map((f) => Type.Literal(String(f))), { default: '4', description: '4: the model\'s own ×4; 2: the ×4 result resized with Lanczos-3' })),
        model: modelField('upscale', 'upscaler'),
        output_format: OutputFormatField,
        response_format: ResponseFormatField,
      }),
      response: imageResponses('the upscaled image, scale × the input\'s width and height (or b64_json); headers X-Model, X-Tiles'),
    },
    validatorCompiler: () => () => true,
    bodyLimit: jsonBodyLimit(app.limits.maxUploadBytes, 1),
  }, async (request, reply) => {
    const upload = await readUpload(request, ['image'], ['model', 'scale', 'output_format', 'response_format'], true);
    const askedFormat = parseOutputFormat(upload.fields.get('output_format'));
    const responseFormat = parseResponseFormat(upload.fields.get('response_format'));
    const entry = await resolveModel(app.models, 'upscale', upload.fields.get('model'));
    const modelScale = entry.manifest.serving.scale ?? 4;
    const scale = parseScale(upload.fields.get('scale'), modelScale);
    const image = upload.files.get('image');
    if (!image || image.length === 0) throw new HttpProblem(400, 'Bad Request', 'the field `image` (a file, or base64 in JSON) is required', 'missing-image');
    const info = await probe(image, maxPixels);
    const format = replyFormat(askedFormat, info.format);
    const outW = info.width * scale, outH = info.height * scale;
    // The work is the model's own ×4 (×2 is that result resized), so MAX_OUTPUT_PIXELS bounds the ×4 image
    // for every scale; the advice names the largest input of this aspect ratio that fits.
    const workW = info.width * modelScale, workH = info.height * modelScale;
    if (workW * workH > maxOutputPixels) {
      const fit = largestInput(info.width, info.height, maxOutputPixels, modelScale);
      throw new HttpProblem(413, 'Content Too Large', `a ${info.width}×${info.height} image is computed at ×${modelScale} (${workW}×${workH} = ${workW * workH} pixels${scale !== modelScale ? `, then resized to ×${scale}` : ''}); the limit is MAX_OUTPUT_PIXELS = ${maxOutputPixels}: send at most ${fit.width}×${fit.height} for this aspect ratio (at most ${Math.floor(maxOutputPixels / (modelScale * modelScale))} pixels, for ×${UPSCALE_FACTORS.filter((f) => f <= modelScale).join(' and ×')} alike)`,
        'output-too-large', { width: outW, height: outH, max_output_pixels: maxOutputPixels, max_input: fit });
    }
    const spec = entry.manifest.inputs[0]!;
    const multiple = spec.size_multiple;
    const { rgb } = await span(request, 'decode', () => decodeRgbPadded(image, maxPixels, multiple));
    // the overlap is the network's reach (so tiles join exactly); a tile keeps a core of at least MIN_CORE px
    const overlap = Math.ceil((entry.manifest.serving.tile_overlap ?? 32) / multiple) * multiple;
    const asked = app.limits.upscaleTile ?? entry.manifest.serving.tile ?? DEFAULT_TILE;
    const tileSide = Math.max(Math.floor(asked / multiple) * multiple, 2 * overlap + Math.ceil(MIN_CORE / multiple) * multiple);
    const tiles = planTiles(rgb.width, rgb.height, tileSide, overlap, multiple);
    // A thin image (1×100000: 178 bytes of PNG) fits MAX_OUTPUT_PIXELS yet needs hundreds of tiles, each a
    // whole pass: the passes are bounded by 4× those of the largest square input that fits, plus 4 (a 16:1
    // panorama at the pixel limit still fits; 1024² at the defaults is 36 passes, the bound 148).
    const side = Math.max(multiple, Math.floor(Math.sqrt(maxOutputPixels) / modelScale / multiple) * multiple);
    const maxTiles = 4 * planTiles(side, side, tileSide, overlap, multiple).length + 4;
    if (tiles.length > maxTiles) {
      throw new HttpProblem(413, 'Content Too Large', `a ${info.width}×${info.height} image needs ${tiles.length} passes of ${tileSide}² px; at most ${maxTiles} (4× those of a ${side}×${side} image, plus 4): crop or pad it to a less extreme aspect ratio`,
        'too-many-tiles', { tiles: tiles.length, max_tiles: maxTiles });
    }
    const whole: RawImage = { data: Buffer.alloc(rgb.width * rgb.height * modelScale * modelScale * 3), width: rgb.width * modelScale, height: rgb.height * modelScale, channels: 3 };
    for (const t of tiles) {
      const region = tiles.length === 1 ? rgb : crop(rgb, t.x, t.y, t.width, t.height);
      const result = await infer(entry, { [spec.name]: toNCHW(region) }, request);
      const out = fromNCHW(result.data, result.dims);
      if (out.width !== t.width * modelScale || out.height !== t.height * modelScale) {
        throw new Error(`model ${entry.name} answered ${out.width}x${out.height} for a ${t.width}x${t.height} tile; serving.scale says ×${modelScale}`);
      }
      if (tiles.length === 1) whole.data = out.data;
      else pasteCore(whole, out, t, modelScale);
    }
    const body = await span(request, 'encode', () => (scale === modelScale ? encode(whole, outW, outH, format)
      : encodeWith(sharp(whole.data, { raw: { width: whole.width, height: whole.height, channels: 3 } })
        .extract({ left: 0, top: 0, width: info.width * modelScale, height: info.height * modelScale })
        .resize(outW, outH, { fit: 'fill', kernel: 'lanczos3' }), format)));
    const tag = modelTag(entry);
    reply.header('X-Model', tag).header('X-Tiles', String(tiles.length));
    return sendImage(reply, body, format, responseFormat, tag, outW, outH);
  });
};

export default upscale;
