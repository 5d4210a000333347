/**
 * OpenAPI 3 document from the route schemas (@fastify/swagger) at `GET /openapi.json`,
 * and the Swagger UI (@fastify/swagger-ui) at `/docs`.
 */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { readFileSync } from 'node:fs';
import { markPublic } from './auth.js';

/** The service's version: package.json's (one number for the service, the OpenAPI document and the clients). */
export const SERVICE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

interface OpenApiDoc { paths?: Record<string, Record<string, { parameters?: { in: string; name: string; example?: unknown; schema?: Record<string, unknown> }[]; responses?: Record<string, { content?: Record<string, unknown> }> }>> }

/** Path-parameter examples, so every Swagger UI "Try it out" runs pre-filled (issue 31). */
const PARAM_EXAMPLES: Record<string, string> = { name: 'colorize-pono', id: 'AAAAAAAAAAAAAAAAAAAAAA' };

/**
 * Post-process the generated document: error answers (4xx, 5xx) are declared `application/problem+json`
 * (RFC 9457, what the server sends) instead of `application/json`, and path parameters get examples.
 * Mutates and returns `doc`.
 */
export function problemJson(doc: OpenApiDoc): OpenApiDoc {
  for (const ops of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      for (const p of op.parameters ?? []) {
        if (p.in === 'path' && PARAM_EXAMPLES[p.name] !== undefined && p.example === undefined) p.example = PARAM_EXAMPLES[p.name];
      }
      for (const [code, res] of Object.entries(op.responses ?? {})) {
        if (!/^[45]/.test(code) || !res.content?.['application/json']) continue;
        res.content['application/problem+json'] = res.content['application/json'];
        delete res.content['application/json'];
      }
    }
  }
  return doc;
}

export default fp(async (app) => {
  await app.register(swagger, {
    transformObject: (documentObject) => problemJson((documentObject as { openapiObject: OpenApiDoc }).openapiObject) as never,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'normgen',
        version: SERVICE_VERSION,
        description: 'Image-generation API serving normalization-based ONNX models: translators (a grayscale -> colour '
          + 'photo colorizer with PONO-MS), upscalers (4x photo super-resolution with PONO-MS, POST /v1/upscale), inpainters (Attentive Normalization; white mask = fill) and class-conditional '
          + 'generators (Fashion-MNIST, Attentive Normalization; same seed, same bytes). Errors are RFC 9457 '
          + 'application/problem+json. The image routes take multipart or JSON (base64 / data: URLs), answer image '
          + 'bytes or response_format=b64_json, and run as async jobs with the header Prefer: respond-async '
          + '(202 + Location: /v1/jobs/{id}). POST /v1/explain shows what a network sees (PONO moments, AN layouts). Also: the KServe v2 Open Inference Protocol under /v2, Prometheus metrics at '
          + '/metrics, this document at /openapi.json.',
      },
      // API_KEYS: Swagger UI's "Authorize" sends the token on every "Try it out" (routes that are public ignore it)
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of API_KEYS (only when the server sets API_KEYS; admin routes always need one)' } } },
      security: [{ bearer: [] }],
      tags: [{ name: 'tasks' }, { name: 'models' }, { name: 'health' }, { name: 'jobs', description: 'async jobs: send Prefer: respond-async to an image route, then poll' }, { name: 'kserve-v2', description: 'KServe v2 Open Inference Protocol' }, { name: 'observability' }],
    },
  });
  // The docs are public: swagger-ui's routes are registered in a scope that marks them so.
  await app.register(async (scope) => {
    markPublic(scope);
    await scope.register(swaggerUi, { routePrefix: '/docs' });
  });
  app.get('/openapi.json', { config: { public: true }, schema: { tags: ['observability'], summary: 'This OpenAPI 3.1 document' } }, async () => app.swagger());
}, { name: 'openapi' });
