/**
 * Container benchmark (`npm run bench:container`): cold start of the image and the latency of one request
 * in the container next to the same request on the host (the same compiled service, `node dist/server.js`).
 *
 * - Cold start: `docker run -d` → first `GET /readyz` = 200, polled every 25 ms, COLD_RUNS times (default 5);
 *   also the model load + warm-up times the service logs, summed over the bundled models.
 * - Latency: per endpoint, 3 warm-up then REQUESTS (default 15) sequential requests, container and host one
 *   after the other (never at once), both with WORKERS=1 INTRA_OP_THREADS=2; median and p90 in ms and the
 *   container / host ratio of the medians.
 * Needs a running engine and the image (`bash scripts/docker-build.sh`); IMAGE defaults to normgen:local.
 * Prints a Markdown table. Timings on a shared machine are noisy: compare medians and ratios from one run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { quantile } from './stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE = process.env.IMAGE ?? 'normgen:local';
const DOCKER = ['/usr/bin/docker', 'docker'].find((d) => { try { execFileSync(d, ['--version']); return true; } catch { return false; } }) ?? 'docker';
const COLD_RUNS = Number(process.env.COLD_RUNS ?? 5);
const REQUESTS = Number(process.env.REQUESTS ?? 15);
const env = { WORKERS: '1', INTRA_OP_THREADS: '2', LOG_LEVEL: 'info' };
const docker = (...args: string[]) => execFileSync(DOCKER, args, { encoding: 'utf8' }).trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => quantile(xs, 0.5);
const p90 = (xs: number[]) => quantile(xs, 0.9);

async function waitReady(base: string, timeoutMs = 120_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1000); // a ref'd timer: AbortSignal.timeout's is unref'd
    try { if ((await fetch(`${base}/readyz`, { signal: ac.signal })).status === 200) return performance.now() - t0; } catch { /* not listening yet */ } finally { clearTimeout(timer); }
    if (performance.now() - t0 > timeoutMs) throw new Error(`${base} not ready after ${timeoutMs} ms`);
    await sleep(25);
  }
}

const started = new Set<string>();
process.on('exit', () => { for (const id of started) { try { docker('rm', '-f', id); } catch { /* already gone */ } } });

function runContainer(port: number): string {
  const id = docker('run', '-d', '-p', `127.0.0.1:${port}:8080`, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), IMAGE);
  started.add(id);
  return id;
}

/** Model load + warm-up ms the service logged (`loadMs`, `warmupMs`), summed over models. */
function loadTimes(logs: string): { load: number; warmup: number } {
  let load = 0; let warmup = 0;
  for (const line of logs.split('\n')) {
    const m = /"loadMs":(\d+(?:\.\d+)?),"warmupMs":(\d+(?:\.\d+)?)/.exec(line);
    if (m) { load += Number(m[1]); warmup += Number(m[2]); }
  }
  return { load, warmup };
}

const gray = readFileSync(path.join(root, 'test', 'fixtures', 'chelsea-gray.png'));
const colour = await sharp(readFileSync(path.join(root, 'test', 'fixtures', 'china-small.jpg'))).png().toBuffer();
const { width: W, height: H } = await sharp(colour).metadata();
const maskPx = Buffer.alloc(W! * H!);
for (let y = 70; y < 120; y++) maskPx.fill(255, y * W! + 120, y * W! + 180);
const mask = await sharp(maskPx, { raw: { width: W!, height: H!, channels: 1 } }).png().toBuffer();

const requests: { name: string; send: (base: string) => Promise<Response> }[] = [
  { name: 'POST /v1/translate (chelsea 451×300)', send: (b) => { const fd = new FormData(); fd.append('image', new Blob([new Uint8Array(gray)], { type: 'image/png' }), 'a.png'); return fetch(`${b}/v1/translate`, { method: 'POST', body: fd }); } },
  { name: `POST /v1/inpaint (china ${W}×${H}, 60×50 hole)`, send: (b) => { const fd = new FormData(); fd.append('image', new Blob([new Uint8Array(colour)], { type: 'image/png' }), 'a.png'); fd.append('mask', new Blob([new Uint8Array(mask)], { type: 'image/png' }), 'm.png'); return fetch(`${b}/v1/inpaint`, { method: 'POST', body: fd }); } },
  { name: 'POST /v1/generate (count 1)', send: (b) => fetch(`${b}/v1/generate`, { method: 'POST', body: '{"class":"sneaker","seed":1}', headers: { 'content-type': 'application/json' } }) },
];

async function latencies(base: string): Promise<number[][]> {
  const out: number[][] = [];
  for (const r of requests) {
    for (let i = 0; i < 3; i++) await (await r.send(base)).arrayBuffer();
    const ms: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = performance.now();
      const res = await r.send(base);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${r.name}: ${res.status}`);
      ms.push(performance.now() - t0);
    }
    out.push(ms);
  }
  return out;
}

const size = Number(docker('image', 'inspect', '-f', '{{.Size}}', IMAGE));
console.log(`# container benchmark, ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model} × ${os.cpus().length}, image ${IMAGE} ${(size / 1e6).toFixed(0)} MB`);

// Cold starts.
const cold: number[] = []; let lt = { load: 0, warmup: 0 };
for (let i = 0; i < COLD_RUNS; i++) {
  const t0 = performance.now();
  const id = runContainer(18700 + i);
  await waitReady(`http://127.0.0.1:${18700 + i}`);
  cold.push(performance.now() - t0);
  lt = loadTimes(docker('logs', id));
  docker('rm', '-f', id); started.delete(id);
}
console.log(`cold start (docker run → /readyz 200), ${COLD_RUNS} runs: median ${median(cold).toFixed(0)} ms (min ${Math.min(...cold).toFixed(0)}, max ${Math.max(...cold).toFixed(0)}); models' load ${lt.load.toFixed(0)} ms + warm-up ${lt.warmup.toFixed(0)} ms (last run)`);

// Container latency.
const id = runContainer(18790);
await waitReady('http://127.0.0.1:18790');
const inContainer = await latencies('http://127.0.0.1:18790');
docker('rm', '-f', id); started.delete(id);

// Host latency: the same compiled service.
execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
const host = spawn(process.execPath, [path.join(root, 'dist', 'server.js')], { cwd: root, env: { ...process.env, ...env, PORT: '18791', HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, stdio: 'ignore' });
try {
  const hostReady = await waitReady('http://127.0.0.1:18791');
  console.log(`host start (node dist/server.js → /readyz 200): ${hostReady.toFixed(0)} ms`);
  const onHost = await latencies('http://127.0.0.1:18791');
  console.log(`\n| request (${REQUESTS} sequential, after 3 warm-up) | container p50 / p90 ms | host p50 / p90 ms | container / host (p50) |`);
  console.log('|---|---|---|---|');
  requests.forEach((r, i) => {
    const [c, h] = [inContainer[i]!, onHost[i]!];
    console.log(`| ${r.name} | ${median(c).toFixed(1)} / ${p90(c).toFixed(1)} | ${median(h).toFixed(1)} / ${p90(h).toFixed(1)} | ${(median(c) / median(h)).toFixed(2)} |`);
  });
} finally {
  host.kill('SIGTERM');
}
