/**
 * `POST /v1/inpaint`: image + mask → image with an inpainter model (default: `inpaint-an` 2.0.0, the
 * Attentive Normalization inpainter of Wang et al. 2020 followed by texture transfer, issue 30;
 * `inpaint-an-smooth` = 1.1.0, the same network without it: a smooth fill, for thin retouching strokes).
 *
 * multipart/form-data fields: `image` (file, required), `mask` (file; white = fill, see
 * imaging/mask.ts; optional when `image` has transparent pixels, which are then the hole),
 * `model` (text, optional) and `output_format` (`png` | `jpeg` | `webp`, default the input's format: `replyFormat`).
 *
 * The rules (also in the README and OpenAPI):
 * - the reply has the input's width and height and is RGB (an input alpha channel is dropped);
 * - every pixel outside the hole is exactly the input's (bit-exact with `png`; `jpeg`/`webp` are lossy);
 * - an image whose longer side exceeds the model's `serving.working_max_side` (from the manifest; 1024 for inpaint-an)
 *   is inpainted at a reduced size (longer side = that limit); the generated hole is resized back
 *   and pasted only inside the full-resolution hole, so memory stays bounded by the working size;
 * - an empty mask returns the input's pixels unchanged (no model run, `X-Hole-Fraction: 0`);
 * - a mask that covers every pixel is refused with 422 (nothing is left to condition on).
 *
 * Errors (problem+json): 400 missing `image`, missing `mask` for an image without alpha, malformed
 * multipart; 404 unknown model; 413 file over MAX_UPLOAD_BYTES or image over MAX_PIXELS; 415 not
 * multipart or not an image; 422 mask size ≠ image size, all-white mask, bad field, unknown field,
 * model of another task; 503 model not loaded.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { probe } from '../imaging/decode.js';
import { encode } from '../imaging/encode.js';
import { checkMaskSize, decodeMask, decodeRgb, holeFraction, maskFromAlpha, pasteHole, workingCopy, workingSize } from '../imaging/mask.js';
import { maskToNCHW, toNCHW } from '../imaging/tensor.js';
import { HttpProblem } from '../problem.js';
import { span } from '../tracing.js';
import { infer, jsonBodyLimit, parseOutputFormat, parseResponseFormat, readUpload, replyFormat, resolveModel, sendImage } from './common.js';
import { imageResponses, modelField, OutputFormatField, ResponseFormatField } from './schemas.js';
import { modelTag } from '../models/repository.js';

/** Working size when a manifest gives none (px, longer side). */
export const DEFAULT_WORKING_MAX_SIDE = 512;

const inpaint: FastifyPluginAsyncTypebox = async (app) => {
  const { maxPixels } = app.limits;
  app.post('/v1/inpaint', {
    schema: {
      tags: ['tasks'],
      summary: 'Inpaint the white region of a mask (default model: Attentive Normalization inpainter)',
      description: 'Pixels outside the mask are returned exactly (PNG). Images whose longer side exceeds the model\'s working size (1024 px for inpaint-an) are inpainted reduced and only the hole is pasted back at full resolution. An empty mask returns the input unchanged; a mask covering the whole image gets 422. The default `inpaint-an` fills with texture borrowed from the photo around the hole; `inpaint-an-smooth` gives a smooth fill (retouching thin strokes).',
      consumes: ['multipart/form-data', 'application/json'],
      body: Type.Object({
        image: Type.String({ format: 'binary', description: 'the photo (PNG, JPEG, WebP, TIFF, GIF, AVIF…): a file (multipart), or base64 / a data: URL (JSON); with alpha and no mask, transparent pixels (alpha < 128) are the hole' }),
        mask: Type.Optional(Type.String({ format: 'binary', description: 'same size as image; white (luma > 127) = fill, black = keep; any format, gray or RGB; a file, or base64 / a data: URL' })),
        model: modelField('inpaint', 'inpainter'),
        output_format: OutputFormatField,
        response_format: ResponseFormatField,
      }),
      response: imageResponses('the inpainted RGB image, same width and height as the input; headers X-Model, X-Hole-Fraction, X-Working-Size'),
    },
    validatorCompiler: () => () => true,
    bodyLimit: jsonBodyLimit(app.limits.maxUploadBytes, 2),
  }, async (request, reply) => {
    const upload = await readUpload(request, ['image', 'mask'], ['model', 'output_format', 'response_format']);
    const askedFormat = parseOutputFormat(upload.fields.get('output_format'));
    const responseFormat = parseResponseFormat(upload.fields.get('response_format'));
    const entry = await resolveModel(app.models, 'inpaint', upload.fields.get('model'));
    const imageBytes = upload.files.get('image');
    if (!imageBytes || imageBytes.length === 0) {
      throw new HttpProblem(400, 'Bad Request', 'the field `image` (a file, or base64 in JSON) is required', 'missing-image');
    }
    const maskBytes = upload.files.get('mask');
    const info = await probe(imageBytes, maxPixels);
    const format = replyFormat(askedFormat, info.format);
    if ((!maskBytes || maskBytes.length === 0) && !info.hasAlpha) {
      throw new HttpProblem(400, 'Bad Request', 'the field `mask` (white = fill; a file, or base64 in JSON) is required unless `image` has an alpha channel whose transparent pixels mark the hole', 'missing-mask');
    }
    const hasMask = maskBytes !== undefined && maskBytes.length > 0;
    const maskInfo = hasMask ? await probe(maskBytes, maxPixels) : undefined;
    // image and mask decode at once (two libvips pipelines; issue 32); the mask's size is checked on the
    // oriented image's size, as before
    const [decodedImage, decodedMask] = await Promise.allSettled([
      span(request, 'decode', () => decodeRgb(imageBytes, maxPixels)),
      maskInfo ? span(request, 'decode-mask', () => decodeMask(maskBytes!, maxPixels)) : Promise.resolve(undefined),
    ]);
    // the image's error first, as when they decoded one after the other
    if (decodedImage.status === 'rejected') throw decodedImage.reason;
    if (decodedMask.status === 'rejected') throw decodedMask.reason;
    const { rgb, alpha } = decodedImage.value;
    const uploadedMask = decodedMask.value;
    const mask = uploadedMask ? checkMaskSize(uploadedMask, rgb.width, rgb.height) : await maskFromAlpha(alpha!);
    const fraction = holeFraction(mask);
    const tag = modelTag(entry);
    reply.header('X-Model', tag).header('X-Hole-Fraction', fraction.toFixed(4));
    if (fraction === 0) return sendImage(reply, await encode(rgb, rgb.width, rgb.height, format), format, responseFormat, tag, rgb.width, rgb.height);
    if (fraction === 1) {
      throw new HttpProblem(422, 'Unprocessable Content', 'the mask covers the whole image: an inpainter needs some known pixels (use POST /v1/generate to make an image from nothing)', 'mask-covers-image');
    }
    const [imageSpec, maskSpec] = entry.manifest.inputs as [typeof entry.manifest.inputs[0], typeof entry.manifest.inputs[0]];
    const size = workingSize(rgb.width, rgb.height, entry.manifest.serving.working_max_side ?? DEFAULT_WORKING_MAX_SIDE);
    const work = await workingCopy(rgb, mask, size, Math.max(imageSpec.size_multiple, maskSpec.size_multiple));
    const result = await infer(entry, { [imageSpec.name]: toNCHW(work.image), [maskSpec.name]: maskToNCHW(work.mask) }, request);
    const out = await span(request, 'paste', () => pasteHole(rgb, mask, result, size));
    reply.header('X-Working-Size', `${size.width}x${size.height}`);
    return sendImage(reply, await span(request, 'encode', () => encode(out, out.width, out.height, format)), format, responseFormat, tag, out.width, out.height);
  });
};

export default inpaint;
