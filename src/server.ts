/**
 * Entry point (`npm start`): load the config, build the app, listen on HOST:PORT, log the URL,
 * and close gracefully on SIGINT/SIGTERM (in-flight requests finish, workers stop).
 * Exits with code 1 and a clear message on a bad configuration or a port already in use. Writes its PID
 * to `.normgen/server-<PORT>.pid` (for `npm stop`) and removes it on exit.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { startTracing } from './tracing.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

const stopTracing = await startTracing();
const app = await buildApp(config);
if (stopTracing) app.addHook('onClose', async () => stopTracing());
let url: string;
try {
  url = await app.listen({ port: config.port, host: config.host });
} catch (err) {
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    // one clear line on the terminal (not buried in a JSON log), and a non-zero exit
    console.error(`port ${config.port} is already in use (another normgen? \`PORT=${config.port} npm stop\` stops the one \`npm start\` started; or set PORT)`);
    await app.close().catch(() => undefined);
    process.exit(1);
  }
  throw err;
}
// The PID file lets `npm stop` stop this server and no other (.normgen/server-<port>.pid, removed on exit).
// Best effort: in a container the working directory is read-only for the server's user, and nothing needs it there.
const pidFile = path.join(process.cwd(), '.normgen', `server-${config.port}.pid`);
try {
  mkdirSync(path.dirname(pidFile), { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
  process.on('exit', () => { try { if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) unlinkSync(pidFile); } catch { /* gone */ } });
} catch (err) {
  app.log.debug({ err: (err as Error).message }, 'no PID file (npm stop will not find this server)');
}
app.log.info(`normgen listening on ${url} (docs: ${url}/docs, models from ${config.modelsDir})`);
app.models.load().then(() => {
  const ready = app.models.list().filter((m) => m.state === 'ready').map((m) => `${m.name}@${m.manifest.version}`);
  app.log.info(`ready: ${ready.length} model(s) loaded: ${ready.join(', ') || 'none'}`);
}, (err: Error) => {
  // The model repository itself is unusable (e.g. two defaults for one task): refuse to serve.
  app.log.fatal(`cannot load the models: ${err.message}`);
  app.close().finally(() => process.exit(1));
});

// SIGHUP: reload every model from disk; each keeps serving its old version until the new one is warm.
process.on('SIGHUP', () => {
  app.log.info('SIGHUP: reloading models');
  for (const m of app.models.list()) {
    app.models.reload(m.name).catch((err: Error) => app.log.error({ model: m.name, err: err.message }, 'reload failed; the old version keeps serving'));
  }
});

// SIGINT/SIGTERM: queued requests get 503 at once, running passes finish and are answered, then the
// process exits; if that takes longer than SHUTDOWN_TIMEOUT_MS (default 10 s) it exits anyway (code 1).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info(`${signal}: closing (at most ${config.shutdownTimeoutMs} ms)`);
    setTimeout(() => {
      app.log.error(`shutdown took longer than SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs}; exiting`);
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    app.close().then(() => process.exit(0), () => process.exit(1));
  });
}
