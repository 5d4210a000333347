/** Shared TypeBox schemas of the HTTP API (OpenAPI components). */
import { Type } from '@sinclair/typebox';

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
