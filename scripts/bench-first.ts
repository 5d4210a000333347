/**
 * `npm run bench:first`: what the first large request after a start costs, against the same request warm.
 *
 * For each of `RUNS` fresh starts of the real server (`src/server.ts`, WORKERS=1, `MALLOC_MMAP_THRESHOLD_` as
 * `npm start`), a 4000×3000 phone-sized JPEG (12 MP; the held-out china photo enlarged) is sent to
 * `/v1/translate` and then to `/v1/inpaint` (a 20 % box) as the first requests after `/readyz`, then
 * `WARM` more times each. Prints, per route, the first request's time (median over the starts), the warm
 * median, and their ratio (target ≤ 1.5: the warm-up at start covers what a first large request needs), then
 * the median of each Server-Timing stage, first / warm (where a first request's extra time goes).
 * One run on a noisy 2-core machine: read ratios, not absolute times.
 *   npm run bench:first [-- RUNS WARM]      (defaults 3 and 4)
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { quantile, serverTimingStages } from './stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 3);
const WARM = Number(process.argv[3] ?? 4);

async function start(): Promise<{ base: string; stop: () => Promise<void> }> {
  const port = 19500 + Math.floor(Math.random() * 400);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'server.ts')], {
    cwd: root, stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', WORKERS: '1', MALLOC_MMAP_THRESHOLD_: '1048576' },
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/readyz`)).status === 200) break; } catch { /* starting */ }
    if (i > 1200 || child.exitCode !== null) throw new Error('the server did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); } };
}

const W = 4000, H = 3000;
const photo = await sharp(path.join(root, 'test', 'fixtures', 'china-small.jpg')).resize(W, H, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
const box = Buffer.alloc(W * H);
for (let y = 1050; y < 1650; y++) box.fill(255, y * W + 1600, y * W + 2400);
const mask = await sharp(box, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer();

const routes: [string, () => FormData][] = [
  ['/v1/translate', () => { const f = new FormData(); f.append('image', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'p.jpg'); return f; }],
  ['/v1/inpaint', () => { const f = new FormData(); f.append('image', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'p.jpg'); f.append('mask', new Blob([new Uint8Array(mask)], { type: 'image/png' }), 'm.png'); return f; }],
];

const timings: Record<string, { first: Map<string, number>[]; warm: Map<string, number>[] }> = {};

async function timed(base: string, route: string, body: FormData, kind: 'first' | 'warm'): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${base}${route}`, { method: 'POST', body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${route}: ${res.status}`);
  (timings[route] ??= { first: [], warm: [] })[kind].push(serverTimingStages(res.headers.get('server-timing')));
  return performance.now() - t0;
}

const first: Record<string, number[]> = {}, warm: Record<string, number[]> = {};
for (let run = 0; run < RUNS; run++) {
  const server = await start();
  try {
    for (const [route, body] of routes) {
      (first[route] ??= []).push(await timed(server.base, route, body(), 'first'));
      for (let i = 0; i < WARM; i++) (warm[route] ??= []).push(await timed(server.base, route, body(), 'warm'));
    }
  } finally {
    await server.stop();
  }
  console.error(`[bench:first] start ${run + 1}/${RUNS} done`);
}
console.log(`\n12 MP JPEG (${W}×${H}), first request after /readyz vs warm; ${RUNS} starts, ${WARM} warm requests each\n`);
console.log('| route | first p50 ms | warm p50 ms | first / warm |');
console.log('|---|---|---|---|');
for (const [route] of routes) {
  const f = quantile(first[route]!, 0.5), w = quantile(warm[route]!, 0.5);
  console.log(`| ${route} | ${f.toFixed(0)} | ${w.toFixed(0)} | ${(f / w).toFixed(2)} |`);
}
console.log('\nServer-Timing stages (p50 ms), first / warm:');
for (const [route, t] of Object.entries(timings)) {
  const names = [...new Set(t.first.flatMap((x) => [...x.keys()]))];
  const p50 = (xs: Map<string, number>[], n: string) => quantile(xs.map((x) => x.get(n) ?? 0), 0.5).toFixed(0);
  console.log(`  ${route}: ${names.map((n) => `${n} ${p50(t.first, n)} / ${p50(t.warm, n)}`).join(', ')}`);
}
