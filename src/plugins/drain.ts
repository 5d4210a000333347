/**
 * Graceful shutdown that loses nothing (issue 43): what happens between SIGTERM (or `app.close()`) and exit.
 *
 * 1. **At once** (Fastify's `preClose`): readiness answers 503 (`/readyz`, so Knative / Kubernetes stop routing
 *    here), the listening socket closes (new connections are refused), idle keep-alive sockets close, and a
 *    request that still arrives on an open connection gets 503 problem+json `shutting-down` with
 *    `Retry-After: 1` and `Connection: close` (`/healthz` stays 200: the process is alive; `GET /v1/jobs/{id}`
 *    still answers). Requests waiting in a model's queue get the same 503 (`Batcher.close`); queued async jobs
 *    are left `failed` with that problem (`JobStore.close`).
 * 2. **Work under way finishes**: a request that already ran a pass runs its next ones (an upscale's tiles),
 *    passes running now end and are answered, running async jobs finish.
 * 3. **Answer deadline** at `SHUTDOWN_TIMEOUT_MS` minus the pass margin ({@link passMarginMs}): every request
 *    still unanswered is answered 503 `shutting-down` + `Retry-After` (`Batcher.abort`: its pending pass result
 *    is dropped), and every running job ends `failed` with it. Nothing accepted goes unanswered.
 * 4. The server closes once every connection has its answer, the worker threads are terminated once their
 *    passes have returned (an onnxruntime pass cannot be interrupted, and terminating a thread inside one
 *    aborts the process natively; the margin is there for the last pass), and `server.ts` exits 0.
 *
 * A client should retry a 503 `shutting-down` (another replica answers); an async job whose `GET` answers
 * `failed` with `shutting-down`, or 404 once its replica is gone (jobs live in the replica's memory), must be
 * submitted again.
 */
import fp from 'fastify-plugin';
import { HttpProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Shutdown state: `draining` from the start of close; `answerBy` the answer deadline (epoch ms). */
    drain: { draining: boolean; answerBy: number };
  }
}

/**
 * The margin left after the answer deadline for the passes running then to return: 5 s (the longest single
 * pass of the bundled models on 2 CPU cores is ~2 s: a 768-px colorize or a 512² inpaint), or a third of the
 * timeout when that is shorter. @param shutdownTimeoutMs SHUTDOWN_TIMEOUT_MS. @returns ms.
 */
export function passMarginMs(shutdownTimeoutMs: number): number {
  return Math.min(5000, Math.floor(shutdownTimeoutMs / 3));
}

/** Routes that still answer while draining (liveness, readiness, reading an async job's state). */
const OPEN_WHILE_DRAINING = new Set(['GET /healthz', 'GET /readyz', 'GET /v1/jobs/:id']);

export default fp<{ shutdownTimeoutMs: number; internal: { name: string; value: string } }>(async (app, opts) => {
  const state = { draining: false, answerBy: Infinity };
  app.decorate('drain', state);
  let timer: NodeJS.Timeout | undefined;

  app.addHook('onRequest', async (request, reply) => {
    if (!state.draining) return;
    // an async job's replay that already started is work under way (its own passes decide)
    if (request.headers[opts.internal.name] === opts.internal.value) return;
    if (OPEN_WHILE_DRAINING.has(`${request.method} ${request.routeOptions.url}`)) return;
    reply.header('connection', 'close');
    throw new HttpProblem(503, 'Service Unavailable', 'the server is shutting down; retry on another instance', 'shutting-down', { retry_after_s: 1 });
  });

  app.addHook('preClose', async () => {
    state.draining = true;
    const answerInMs = Math.max(0, opts.shutdownTimeoutMs - passMarginMs(opts.shutdownTimeoutMs));
    state.answerBy = Date.now() + answerInMs;
    timer = setTimeout(() => {
      const left = app.models.list().reduce((n, m) => n + (m.batcher ? m.batcher.depth + m.batcher.runningPasses : 0), 0);
      if (left) app.log.warn(`shutdown: answer deadline (${answerInMs} ms): ${left} queued or running pass(es) answered 503 shutting-down`);
      for (const m of app.models.list()) m.batcher?.abort();
    }, answerInMs);
    timer.unref();
  });
  app.addHook('onClose', async () => { if (timer) clearTimeout(timer); });
}, { name: 'drain' });
