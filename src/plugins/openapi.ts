/**
 * OpenAPI 3 document from the route schemas (@fastify/swagger) at `GET /openapi.json`,
 * and the Swagger UI (@fastify/swagger-ui) at `/docs`.
 */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

export default fp(async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'normgen',
        version: '0.1.0',
        description: 'Image-generation API serving normalization-based ONNX models (PONO-MS translators, Attentive Normalization inpainters). Errors are RFC 9457 application/problem+json.',
      },
      tags: [{ name: 'tasks' }, { name: 'models' }, { name: 'health' }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}, { name: 'openapi' });
