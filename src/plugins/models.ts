/**
 * Decorates the app with `app.models` (the {@link ModelRepository}) and `app.inference`
 * (the {@link InferencePool}); starts loading the models when the app is ready and closes the
 * worker threads when the app closes. Loading runs in the background: `/readyz` tells when done.
 */
import fp from 'fastify-plugin';
import { InferencePool } from '../inference/pool.js';
import { ModelRepository } from '../models/repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRepository;
    inference: InferencePool;
  }
}

export interface ModelsPluginOptions { modelsDir: string; workers: number; intraOpThreads: number; batching: boolean; executionProviders: ('cuda' | 'cpu')[]; cudaDeviceId: number; precision?: 'auto' | 'fp32' | 'int8'; arenaMaxPixels?: number; memoryBudgetMb?: number; preloadModels?: 'all' | string[] }

export default fp<ModelsPluginOptions>(async (app, opts) => {
  const pool = new InferencePool(opts.workers, opts.intraOpThreads, { providers: opts.executionProviders, cudaDeviceId: opts.cudaDeviceId }, opts.arenaMaxPixels ?? 0);
  const repo = new ModelRepository(opts.modelsDir, pool, app.log, { batching: opts.batching, concurrency: opts.workers, hooks: app.metrics?.hooks, memoryBudgetMb: opts.memoryBudgetMb ?? 0, arenaMaxPixels: opts.arenaMaxPixels ?? 0, preload: opts.preloadModels ?? 'all', precision: opts.precision ?? 'auto', cpuProvider: opts.executionProviders[0] === 'cpu' });
  pool.onRestart = (why) => {
    app.metrics?.workerRestarts.inc();
    app.log.error({ why }, 'inference worker died; its requests got 503, a replacement is starting');
  };
  app.decorate('inference', pool);
  app.decorate('models', repo);
  app.addHook('onReady', async () => {
    repo.load().catch((err: unknown) => app.log.error({ err }, 'model repository failed to load'));
  });
  // Shutdown, first step (before the server stops accepting): queued requests get 503 `shutting-down`
  // with Retry-After at once; passes already running finish and are answered.
  app.addHook('preClose', async () => {
    for (const m of repo.list()) m.batcher?.close();
  });
  app.addHook('onClose', async () => {
    await pool.close();
  });
}, { name: 'models' });
