/**
 * Colour hints latency (`npm run bench:hints`; issue 42's "512² with 10 hints under 0.5 s at p50"):
 * `POST /v1/translate` with 10 hint points on a 512² photo (china, gray), through the real app (in-process
 * HTTP injection: decode, hints, forward pass, encode), WORKERS=1, for the default colorizer (`colorize-pono`)
 * and `colorize-hints` (the network alone); prints the median and p90 of BENCH_REPEATS (default 7, after one
 * warm-up) and the same without hints; then a 12 MP photo with 10 hints (p50 of 3, peak RSS). One run: figures,
 * not a timed test.
 */
import path from 'node:path';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { quantile } from './stats.js';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 7);
const root = path.resolve(import.meta.dirname, '..');
const app = await buildApp(loadConfig({ ...process.env, LOG_LEVEL: 'silent', WORKERS: '1' }), false);
await app.ready();
await app.models.load();
const gray = await sharp(path.join(root, 'test', 'fixtures', 'china-small.jpg')).resize(512, 512, { fit: 'fill' }).grayscale().png().toBuffer();
const points = Array.from({ length: 10 }, (_, i) => ({ x: 40 + 45 * i, y: 60 + 40 * i, color: ['#3366cc', '#55aa44', '#cc5533'][i % 3] }));
for (const model of ['colorize-pono', 'colorize-hints']) {
  for (const [label, extra] of [['10 hints', { hint_points: points }], ['no hints', {}]] as const) {
    const send = () => app.inject({ method: 'POST', url: '/v1/translate', payload: { image: gray.toString('base64'), model, ...extra } });
    const first = await send();
    if (first.statusCode !== 200) throw new Error(`request failed: ${first.body.slice(0, 200)}`);
    const ms: number[] = [];
    for (let i = 0; i < REPEATS; i++) { const t0 = performance.now(); await send(); ms.push(performance.now() - t0); }
    console.log(`${model} 512², ${label}: p50 ${quantile(ms, 0.5).toFixed(0)} ms, p90 ${quantile(ms, 0.9).toFixed(0)} ms (${REPEATS} requests)`);
  }
}
// a 12 MP photo (4000×3000, the china photo enlarged) with 10 hints: the default colorizer runs it at its working
// size and upsamples the chroma onto the full-resolution luma; p50 of 3 and the process's peak RSS while it runs
const big = await sharp(path.join(root, 'test', 'fixtures', 'china-small.jpg')).resize(4000, 3000, { fit: 'fill' }).grayscale().jpeg({ quality: 90 }).toBuffer();
const bigPoints = points.map((p) => ({ ...p, x: Math.round(p.x * 4000 / 512), y: Math.round(p.y * 3000 / 512), radius: 12 }));
let peak = 0;
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
const before = process.memoryUsage().rss;
const sendBig = () => app.inject({ method: 'POST', url: '/v1/translate', payload: { image: big.toString('base64'), hint_points: bigPoints } });
const firstBig = await sendBig();
if (firstBig.statusCode !== 200) throw new Error(`12 MP request failed: ${firstBig.body.slice(0, 200)}`);
const bigMs: number[] = [];
for (let i = 0; i < 3; i++) { const t0 = performance.now(); await sendBig(); bigMs.push(performance.now() - t0); }
clearInterval(timer);
console.log(`colorize-pono 12 MP (4000×3000 JPEG), 10 hints: p50 ${quantile(bigMs, 0.5).toFixed(0)} ms (3 requests); RSS ${(before / 2 ** 20).toFixed(0)} MiB before, peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
await app.close();
