/** Shared TypeBox schemas of the HTTP API (OpenAPI components). */
import { Type } from '@sinclair/typebox';
import { CONTENT_TYPES, OUTPUT_FORMATS } from '../imaging/encode.js';
import { RESPONSE_FORMATS } from './common.js';

/** RFC 9457 problem document, as every error reply is shaped. */
export const ProblemSchema = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.Optional(Type.String()),
  instance: Type.Optional(Type.String()),
}, { additionalProperties: true, description: 'RFC 9457 application/problem+json' });

/**
 * The default model of each task in the bundled repository (`models/`): the examples of the `model`
 * fields in the OpenAPI document, so that Swagger UI's "Try it out" sends a model that exists. A test
 * checks they are the repository's defaults.
 */
export const BUNDLED_DEFAULTS = { translate: 'colorize-pono', inpaint: 'inpaint-an', generate: 'fashion-an', upscale: 'upscale-pono' } as const;

/** The optional `model` field of a task route: empty or absent = the task's default model. */
export function modelField(task: keyof typeof BUNDLED_DEFAULTS, what: string) {
  return Type.Optional(Type.String({ description: `model name (GET /v1/models); empty or absent: the default ${what}`, examples: [BUNDLED_DEFAULTS[task]] }));
}

/** `response_format=b64_json` reply (OpenAI images' shape): the encoded image as base64 with its size. */
export const B64Json = Type.Object({
  model: Type.String({ description: 'name@version' }),
  data: Type.Array(Type.Object({ b64_json: Type.String({ contentEncoding: 'base64' }), width: Type.Integer(), height: Type.Integer() })),
});

/** The `output_format` field of the image routes (png | jpeg | webp; default the input's format, `replyFormat`). */
export const OutputFormatField = Type.Optional(Type.Union(OUTPUT_FORMATS.map((f) => Type.Literal(f)), {
  description: 'the reply\'s format; default the input\'s: JPEG in → JPEG (quality 90), WebP in → WebP, anything else → PNG. Only PNG is lossless (exact luma, exact pixels outside an inpainting hole)',
}));

/** The `response_format` field of the image routes (image | b64_json, default image). */
export const ResponseFormatField = Type.Optional(Type.Union(RESPONSE_FORMATS.map((f) => Type.Literal(f)), { default: 'image', description: 'image: the bytes; b64_json: { model, data: [{ b64_json, width, height }] }' }));

/** OpenAPI `content` of an image reply: one binary schema per output format's content type. */
export function imageContent(): Record<string, { schema: { type: 'string'; format: 'binary' } }> {
  return Object.fromEntries(OUTPUT_FORMATS.map((f) => [CONTENT_TYPES[f], { schema: { type: 'string', format: 'binary' } }]));
}

/** OpenAPI `response` of an image route: 200 = the image bytes (any output format) or the b64_json shape; problem+json otherwise. */
export function imageResponses(description: string) {
  return {
    200: { description, content: { ...imageContent(), 'application/json': { schema: B64Json } } },
    '4xx': ProblemSchema,
    '5xx': ProblemSchema,
  };
}
