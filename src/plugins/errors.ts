/**
 * RFC 9457 error handling: every error and every 404 becomes `application/problem+json`
 * (`type`, `title`, `status`, `detail`, `instance`), and the server keeps serving.
 *
 * Mapping: {@link HttpProblem} → its status; schema validation errors → 422; Fastify/plugin errors
 * with a 4xx `statusCode` (body too large 413, bad content type 415, malformed multipart 400) →
 * that status; anything else → 500 with a generic detail (the error is logged, not leaked).
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { DryRunComplete, HttpProblem, PROBLEM_BASE, type ProblemDocument } from '../problem.js';

function send(reply: FastifyReply, request: FastifyRequest, doc: ProblemDocument): FastifyReply {
  return reply.code(doc.status).type('application/problem+json').send({ ...doc, instance: request.url });
}

export default fp(async (app) => {
  app.setErrorHandler((error: FastifyError | HttpProblem, request, reply) => {
    if (error instanceof DryRunComplete) return reply.code(204).send();
    if (error instanceof HttpProblem) {
      if (error.statusCode >= 500) request.log.warn({ problem: error.slug }, error.message);
      const retry = error.extensions?.retry_after_s;
      if (typeof retry === 'number') reply.header('Retry-After', String(retry));
      return send(reply, request, { type: PROBLEM_BASE + error.slug, title: error.title, status: error.statusCode, detail: error.message, ...error.extensions });
    }
    if (error.validation) {
      const unknown = error.validation.map((v) => (v.params as { additionalProperty?: string })?.additionalProperty).filter(Boolean);
      return send(reply, request, {
        type: PROBLEM_BASE + 'invalid-field', title: 'Unprocessable Content', status: 422,
        detail: unknown.length ? `unknown field ${unknown.map((f) => `\`${f}\``).join(', ')} (${error.message})` : error.message,
        errors: error.validation.map((v) => {
          const params = v.params as { missingProperty?: string; additionalProperty?: string };
          const extra = params?.additionalProperty;
          return { field: extra ?? (v.instancePath || params?.missingProperty || ''), message: extra ? `unknown field \`${extra}\`` : v.message };
        }),
      });
    }
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) {
      request.log.error({ err: error }, 'unhandled error');
      return send(reply, request, { type: PROBLEM_BASE + 'internal', title: 'Internal Server Error', status, detail: 'the server failed to process the request; see its logs' });
    }
    const slug = (error.code ?? STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '-');
    return send(reply, request, { type: PROBLEM_BASE + slug, title: STATUS_CODES[status] ?? 'Error', status, detail: error.message });
  });

}, { name: 'errors' });

/** The 404 handler (set by `app.ts` once the rate limit is registered, so that unmatched paths count against it too). */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return send(reply, request, { type: PROBLEM_BASE + 'not-found', title: 'Not Found', status: 404, detail: `no route ${request.method} ${request.url.split('?')[0]}` });
}
