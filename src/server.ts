/**
 * Entry point (`npm start`): load the config, build the app, listen on HOST:PORT, log the URL,
 * and close gracefully on SIGINT/SIGTERM (in-flight requests finish, workers stop).
 * Exits with code 1 and a clear message on a bad configuration or a port already in use. Writes its PID
 * to `.normgen/server-<PORT>.pid` (for `npm stop`) and removes it on exit.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildApp } from './app.js';
import { ConfigError, helpText, loadConfig } from './config.js';
import { passMarginMs } from './plugins/drain.js';
import { startTracing } from './tracing.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(helpText());
  process.exit(0);
}

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

// SIGINT/SIGTERM (plugins/drain.ts): readiness 503 and new connections refused at once, queued requests 503,
// work under way finishes or is answered 503 + Retry-After at the answer deadline, then the workers stop and
// the process exits 0 — within SHUTDOWN_TIMEOUT_MS (default 30 s). Should the timeout still pass, the process
// exits 1, but only once no onnxruntime pass is running (exiting inside one aborts natively).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info(`${signal}: closing (answers by ${config.shutdownTimeoutMs - passMarginMs(config.shutdownTimeoutMs)} ms, exit by ${config.shutdownTimeoutMs} ms)`);
    setTimeout(() => {
      const passes = app.inference.pending();
      app.log.error(`shutdown took longer than SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs}; exiting${passes ? ` once the ${passes} pass(es) still in onnxruntime return` : ''}`);
      app.inference.idle().then(() => process.exit(1), () => process.exit(1));
    }, config.shutdownTimeoutMs).unref();
    app.close().then(() => process.exit(0), () => process.exit(1));
  });
}
