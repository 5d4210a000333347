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
