/**
 * Upscaler figures (`npm run bench:upscale`, issue 33): `POST /v1/upscale` through the real app (in-process
 * HTTP injection: decode, tiles, forward passes, encode), WORKERS=1, default configuration.
 *
 * - a 256×256 photo (china, resized) → 1024×1024: median and p90 of BENCH_REPEATS (default 5, after one
 *   warm-up), and the median `Server-Timing: infer` (the forward pass alone);
 * - a 1024×1024 input (→ 4096×4096, the MAX_OUTPUT_PIXELS default): time, tiles run, and the process's peak
 *   RSS growth during it (VmRSS sampled every 25 ms) against MEMORY_BUDGET_MB — the tiles bound it;
 * - the same 256² input at tile sizes 128 and 512 (UPSCALE_TILE): time and tiles (the overlap's cost).
 * One run: figures, not a timed test; say what else the machine was doing when you quote them.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { quantile, serverTimingStages } from './stats.js';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const root = path.resolve(import.meta.dirname, '..');
const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const china = path.join(root, 'test', 'fixtures', 'china-small.jpg');

async function appWith(env: Record<string, string> = {}) {
  const app = await buildApp(loadConfig({ ...process.env, LOG_LEVEL: 'silent', WORKERS: '1', ...env }), false);
  await app.ready();
  await app.models.load();
  return app;
}
const input = async (side: number) => sharp(china).resize(side, side, { fit: 'fill' }).png().toBuffer();

const app = await appWith();
const small = await input(256);
const send = (a: typeof app, img: Buffer) => a.inject({ method: 'POST', url: '/v1/upscale', payload: { image: img.toString('base64') } });
if ((await send(app, small)).statusCode !== 200) throw new Error('request failed');
const ms: number[] = [], infer: number[] = [];
for (let i = 0; i < REPEATS; i++) {
  const t0 = performance.now();
  const r = await send(app, small);
  ms.push(performance.now() - t0);
  infer.push(serverTimingStages(String(r.headers['server-timing'])).get('infer')!);
}
console.log(`upscale 256² → 1024²: p50 ${quantile(ms, 0.5).toFixed(0)} ms, p90 ${quantile(ms, 0.9).toFixed(0)} ms, infer p50 ${quantile(infer, 0.5).toFixed(0)} ms (${REPEATS} requests)`);

const big = await input(1024);
const before = rssMb();
let peak = before;
const timer = setInterval(() => { peak = Math.max(peak, rssMb()); }, 25);
const t0 = performance.now();
const r = await send(app, big);
clearInterval(timer);
if (r.statusCode !== 200) throw new Error(`1024² failed: ${r.statusCode} ${r.body.slice(0, 200)}`);
const meta = await sharp(r.rawPayload).metadata();
console.log(`upscale 1024² → ${meta.width}×${meta.height}: ${(performance.now() - t0).toFixed(0)} ms, ${r.headers['x-tiles']} tiles, RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)}; MEMORY_BUDGET_MB default 4096)`);
await app.close();

for (const tile of [128, 512]) {
  const a = await appWith({ UPSCALE_TILE: String(tile) });
  await send(a, small);
  const t1 = performance.now();
  const rr = await send(a, small);
  console.log(`upscale 256² with UPSCALE_TILE=${tile}: ${(performance.now() - t1).toFixed(0)} ms, ${rr.headers['x-tiles']} tiles`);
  await a.close();
}
