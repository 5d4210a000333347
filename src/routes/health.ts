/**
 * `GET /healthz`: 200 while the process serves HTTP (liveness).
 * `GET /readyz`: 200 once the default model of every task is loaded and every inference worker is up, else 503 with each
 * model's state and the workers' (readiness; a worker replaced after a crash is `restarting`); 503 `shutting down`
 * from the moment the server starts to close (plugins/drain.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const Readiness = Type.Object({ status: Type.String(), models: Type.Record(Type.String(), Type.String()), workers: Type.Optional(Type.String()) });

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { config: { public: true }, schema: { tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }));
  app.get('/readyz', { config: { public: true }, schema: { tags: ['health'], response: { 200: Readiness, 503: Readiness } } }, async (_request, reply) => {
    const models = Object.fromEntries(app.models.list().map((m) => [m.name, m.state]));
    if (app.drain?.draining) return reply.code(503).send({ status: 'shutting down', models, workers: app.inference.healthy() ? 'up' : 'restarting' });
    const ready = app.models.isReady();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', models, workers: app.inference.healthy() ? 'up' : 'restarting' });
  });
};

export default health;
