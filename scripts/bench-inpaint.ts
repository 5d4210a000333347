/**
 * Inpainting latency by photo size (`npm run bench:inpaint`): `POST /v1/inpaint` over real HTTP on
 * 127.0.0.1, one request at a time, for a square photo of 256², 512² and 1024² px (china, resized with
 * sharp) with a user-like mask (a box of 20 % of each side plus a 10-px stroke, white = fill), and the
 * bare onnxruntime-node `session.run` of the same model at the size the service runs it (its
 * `serving.working_max_side` rule). Prints a Markdown table of medians (ms) and the HTTP / bare ratio.
 *
 * Options (env): BENCH_REPEATS (per size, default 7; the first request of each size is a warm-up and
 * not counted), BENCH_SIZES (comma-separated sides, default 256,512,1024), WORKERS / INTRA_OP_THREADS
 * as for the server, BENCH_MODEL (default `inpaint-an`; e.g. `inpaint-an-smooth` for the fill without texture
 * transfer). Exits non-zero if a request fails.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { parseManifest } from '../src/models/manifest.js';
import { workingSize } from '../src/imaging/mask.js';
import { DEFAULT_WORKING_MAX_SIDE } from '../src/routes/inpaint.js';
import { multipart } from './multipart.js';
import { quantile } from './stats.js';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 7);
const SIZES = (process.env.BENCH_SIZES ?? '256,512,1024').split(',').map(Number);
const MODEL = process.env.BENCH_MODEL ?? 'inpaint-an';
const manifestPath = `models/${MODEL}/manifest.json`;
const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, 'utf8')), manifestPath);
const workingMax = manifest.serving.working_max_side ?? DEFAULT_WORKING_MAX_SIDE;

/** A side × side mask: one box of 20 % of each side and a 10-px (at 384 px) polyline stroke. */
function maskSvg(side: number): string {
  const s = side / 384, box = Math.round(0.2 * side);
  return `<svg width="${side}" height="${side}"><rect width="${side}" height="${side}" fill="black"/>`
    + `<rect x="${Math.round(0.4 * side)}" y="${Math.round(0.35 * side)}" width="${box}" height="${box}" fill="white"/>`
    + `<polyline points="${[0.1, 0.8, 0.3, 0.6, 0.5, 0.85, 0.8, 0.7].map((v) => Math.round(v * side)).join(',')}" `
    + `fill="none" stroke="white" stroke-width="${Math.max(1, Math.round(10 * s))}" stroke-linecap="round"/></svg>`;
}

const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', MAX_EVENT_LOOP_DELAY_MS: '0', MAX_PIXELS: String(2048 * 2048) });
const app = await buildApp(config, false);
await app.ready();
await app.models.load();
const address = await app.listen({ port: 0, host: '127.0.0.1' });
const session = await ort.InferenceSession.create(`models/${MODEL}/${manifest.onnx.file}`, {
  intraOpNumThreads: config.intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
});

const rows: string[] = [];
for (const side of SIZES) {
  const photo = await sharp('test/fixtures/china-small.jpg').resize(side, side, { fit: 'cover' }).png().toBuffer();
  const mask = await sharp(Buffer.from(maskSvg(side))).png().toBuffer();
  const { body, type } = multipart({ image: photo, mask }, { model: MODEL });
  const http: number[] = [];
  for (let i = 0; i <= REPEATS; i++) {
    const t0 = performance.now();
    const res = await fetch(`${address}/v1/inpaint`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${side}²: HTTP ${res.status}`);
    if (i > 0) http.push(performance.now() - t0);
  }
  const ws = workingSize(side, side, workingMax);
  const h = Math.ceil(ws.height / 8) * 8, w = Math.ceil(ws.width / 8) * 8;
  const feeds = {
    image: new ort.Tensor('float32', new Float32Array(3 * h * w), [1, 3, h, w]),
    mask: new ort.Tensor('float32', new Float32Array(h * w).fill(0).map((_, k) => (k % 7 === 0 ? 1 : 0)), [1, 1, h, w]),
  };
  const bare: number[] = [];
  for (let i = 0; i <= REPEATS; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    if (i > 0) bare.push(performance.now() - t0);
  }
  const p50 = quantile(http, 0.5), b50 = quantile(bare, 0.5);
  rows.push(`| ${side}² | ${ws.width}×${ws.height} | ${p50.toFixed(0)} | ${quantile(http, 0.9).toFixed(0)} | ${b50.toFixed(0)} | ${(p50 / b50).toFixed(2)} |`);
  process.stderr.write(`[bench] ${side}² done\n`);
}
await app.close();
console.log(`${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'CPU'} × ${os.cpus().length} cores, `
  + `${manifest.name} ${manifest.version}, ${REPEATS} requests per size (after one warm-up)\n`);
console.log('| photo | run at | HTTP p50 ms | HTTP p90 ms | bare session.run p50 ms | HTTP / bare |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
