/**
 * Benchmark (`npm run bench`): median latency of one 256×256 `POST /v1/translate` over real HTTP
 * next to the median of a bare onnxruntime-node `session.run` on the same input tensor, measured
 * in one run on this machine. Prints medians, p90s and their ratio (HTTP / bare).
 *
 * Options (env): BENCH_N (iterations, default 30), BENCH_SIZE (side in px, default 256), MODEL
 * (default colorize-pono). Uses the app's config (WORKERS, INTRA_OP_THREADS) for both paths.
 */
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { decodeLuma } from '../src/imaging/decode.js';
import { toNCHW } from '../src/imaging/tensor.js';
import { quantile } from './stats.js';

const N = Number(process.env.BENCH_N ?? 30);
const SIZE = Number(process.env.BENCH_SIZE ?? 256);
const MODEL = process.env.MODEL ?? 'colorize-pono';


const config = loadConfig();
const app = await buildApp(config, false);
await app.ready();
await app.models.load();
const entry = app.models.get(MODEL);
if (!entry || entry.state !== 'ready') throw new Error(`model ${MODEL} is not ready`);
const url = await app.listen({ port: 0, host: '127.0.0.1' });

// A real held-out photo, resized to SIZE×SIZE gray PNG with sharp.
const photo = path.resolve(import.meta.dirname, '..', 'test', 'fixtures', 'chelsea-gray.png');
const png = await sharp(photo).resize(SIZE, SIZE, { fit: 'cover' }).png().toBuffer();

async function httpOnce(): Promise<number> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'in.png');
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/translate`, { method: 'POST', body: form });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t0;
}

const session = await ort.InferenceSession.create(entry.onnxPath, { executionProviders: ['cpu'], intraOpNumThreads: config.intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const { luma } = await decodeLuma(png, config.maxPixels, entry.manifest.inputs[0]!.size_multiple);
const input = toNCHW(luma);
async function bareOnce(): Promise<number> {
  const t0 = performance.now();
  await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input.data, input.dims) });
  return performance.now() - t0;
}

for (let i = 0; i < 3; i++) { await httpOnce(); await bareOnce(); } // warm-up
const http: number[] = [];
const bare: number[] = [];
for (let i = 0; i < N; i++) { http.push(await httpOnce()); bare.push(await bareOnce()); } // interleaved: same conditions

const f = (x: number) => x.toFixed(1).padStart(8);
console.log(`normgen bench: ${MODEL}@${entry.manifest.version}, ${SIZE}×${SIZE} gray PNG, N=${N}, ${os.cpus().length} cores (${os.cpus()[0]?.model}), WORKERS=${config.workers}, INTRA_OP_THREADS=${config.intraOpThreads}, node ${process.version}, ${new Date().toISOString()}`);
console.log(`                         median ms   p90 ms`);
console.log(`POST /v1/translate (HTTP) ${f(quantile(http, 0.5))} ${f(quantile(http, 0.9))}`);
console.log(`bare session.run          ${f(quantile(bare, 0.5))} ${f(quantile(bare, 0.9))}`);
console.log(`ratio HTTP / bare (median)  ${(quantile(http, 0.5) / quantile(bare, 0.5)).toFixed(2)}`);
await session.release();
await app.close();
