/**
 * Colour hints latency (`npm run bench:hints`; issue 42's "512² with 10 hints under 0.5 s at p50"):
 * `POST /v1/translate` with 10 hint points on a 512² photo (china, gray), through the real app (in-process
 * HTTP injection: decode, hints, forward pass, encode), WORKERS=1, for the default colorizer (`colorize-pono`)
 * and `colorize-hints` (the network alone); prints the median and p90 of BENCH_REPEATS (default 7, after one
 * warm-up) and the same without hints. One run: figures, not a timed test.
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
await app.close();
