/**
 * Load benchmark (`npm run bench:load`, autocannon): for each task endpoint at 256×256 (generate at
 * its native 28×28, count 1), p50 / p99 latency (ms) and throughput (req/s) at concurrency 1, 4 and 16,
 * with dynamic batching off (`BATCHING=0`) and on, over real HTTP on 127.0.0.1; plus the median of a
 * bare onnxruntime-node `session.run` on the same model input (batch 1), measured in the same run,
 * and the ratio HTTP p50 (concurrency 1, batching off) / bare p50. Prints a Markdown table.
 *
 * Options (env): BENCH_SECONDS (per cell, default 5), WORKERS / INTRA_OP_THREADS as for the server.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { warmupFeeds } from '../src/models/repository.js';
import { parseManifest } from '../src/models/manifest.js';
import { workingSize } from '../src/imaging/mask.js';
import { DEFAULT_WORKING_MAX_SIDE } from '../src/routes/inpaint.js';
import { multipart } from './multipart.js';
import { quantile } from './stats.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

const photo = await sharp('test/fixtures/china-small.jpg').resize(256, 256, { fit: 'cover' }).png().toBuffer();
const gray = await sharp(photo).grayscale().png().toBuffer();
const maskSvg = '<svg width="256" height="256"><rect width="256" height="256" fill="black"/><rect x="90" y="80" width="70" height="60" fill="white"/></svg>';
const mask = await sharp(Buffer.from(maskSvg)).png().toBuffer();
const translate = multipart({ image: gray });
const inpaint = multipart({ image: photo, mask });
// The inpainter runs at the service's working size for a 256² upload (its manifest's rule); label and bare dims follow it.
const manifestPath = 'models/inpaint-an/manifest.json';
const served = workingSize(256, 256, parseManifest(JSON.parse(readFileSync(manifestPath, 'utf8')), manifestPath).serving.working_max_side ?? DEFAULT_WORKING_MAX_SIDE);
const endpoints = [
  { name: 'POST /v1/translate (256²)', model: 'colorize-pono-auto', path: '/v1/translate', body: translate.body, type: translate.type, dims: [1, 1, 256, 256] },
  { name: `POST /v1/inpaint (256², served at ${served.width} px)`, model: 'inpaint-an', path: '/v1/inpaint', body: inpaint.body, type: inpaint.type, dims: [1, 3, served.height, served.width] },
  { name: 'POST /v1/generate (28², count 1)', model: 'fashion-an', path: '/v1/generate', body: Buffer.from(JSON.stringify({ class: 'Bag', seed: 1 })), type: 'application/json', dims: [] },
];

type Cell = { p50: number; p99: number; rps: number; errors: number };
const results: Record<string, Record<string, Cell>> = {};
const bare: Record<string, number> = {};

for (const batching of ['0', '1']) {
  const config = loadConfig({ ...process.env, BATCHING: batching, LOG_LEVEL: 'silent', MAX_EVENT_LOOP_DELAY_MS: '0' });
  const app = await buildApp(config, false);
  await app.ready();
  await app.models.load();
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  for (const ep of endpoints) {
    for (const c of [1, 4, 16]) {
      const r = await autocannon({ url: url + ep.path, method: 'POST', body: ep.body, headers: { 'content-type': ep.type }, connections: c, duration: SECONDS });
      const key = `${ep.name}|${batching}`;
      (results[key] ??= {})[String(c)] = { p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average, errors: r.errors + r.non2xx };
      console.error(`[bench] ${ep.name} batching=${batching} c=${c}: p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms ${r.requests.average} req/s non2xx ${r.non2xx}`);
    }
  }
  await app.close();
}

// Bare session.run on the model input, same thread settings.
const config = loadConfig();
for (const ep of endpoints) {
  const app = await buildApp(config, false);
  await app.ready();
  await app.models.load();
  const entry = app.models.get(ep.model)!;
  const session = await ort.InferenceSession.create(entry.onnxPath, { intraOpNumThreads: config.intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(warmupFeeds(entry.manifest))) {
    const dims = ep.dims.length && t.dims.length === 4 ? [1, t.dims[1]!, ep.dims[2]!, ep.dims[3]!] : t.dims;
    feeds[name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.1), dims);
  }
  const times: number[] = [];
  for (let i = 0; i < 25; i++) { const t0 = performance.now(); await session.run(feeds); if (i >= 5) times.push(performance.now() - t0); }
  bare[ep.name] = quantile(times, 0.5);
  await session.release();
  await app.close();
}

console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()} cores, WORKERS=${config.workers}, INTRA_OP_THREADS=${config.intraOpThreads}, ${SECONDS} s per cell\n`);
console.log('| endpoint | batching | c=1 p50 / p99 ms, req/s | c=4 p50 / p99 ms, req/s | c=16 p50 / p99 ms, req/s | bare session.run p50 ms | HTTP p50 / bare (c=1, off) |');
console.log('|---|---|---|---|---|---|---|');
for (const ep of endpoints) {
  for (const batching of ['0', '1']) {
    const row = results[`${ep.name}|${batching}`]!;
    const cell = (c: string) => `${row[c]!.p50} / ${row[c]!.p99}, ${row[c]!.rps.toFixed(1)}${row[c]!.errors ? ` (${row[c]!.errors} errors)` : ''}`;
    const ratio = batching === '0' ? (row['1']!.p50 / bare[ep.name]!).toFixed(2) : '';
    console.log(`| ${ep.name} | ${batching === '1' ? 'on' : 'off'} | ${cell('1')} | ${cell('4')} | ${cell('16')} | ${batching === '0' ? bare[ep.name]!.toFixed(1) : ''} | ${ratio} |`);
  }
}
