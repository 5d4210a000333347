/**
 * Soak test (`npm run soak`, issue 19): the real server process (`src/server.ts`) on a loopback port,
 * saturated with a mix of /v1/translate, /v1/inpaint, /v1/generate and /v2 infer requests by autocannon
 * (16 connections) for `SOAK_SECONDS` (default 600, at most 7200), in 6 windows. Prints per window: requests,
 * status counts (2xx, 503, 429, other), p50/p99 latency and the server's resident memory (its
 * `normgen_process_resident_memory_bytes`). Exits 1 when a reply other than 2xx/503/429 appears or the
 * RSS after the first window (warm-up) moves by more than ±10 %.
 * Usage: `SOAK_SECONDS=120 npm run soak`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { multipart } from '../test/helper.js';

const SECONDS = Math.min(7200, Math.max(12, Number(process.env.SOAK_SECONDS ?? 600)));
const WINDOWS = 6;
const port = 19500 + Math.floor(Math.random() * 400);
const base = `http://127.0.0.1:${port}`;

const photo = await sharp('test/fixtures/china-small.jpg').resize(256, 256, { fit: 'cover' }).png().toBuffer();
const gray = await sharp(photo).grayscale().png().toBuffer();
const maskRaw = Buffer.alloc(256 * 256);
for (let y = 80; y < 140; y++) maskRaw.fill(255, y * 256 + 90, y * 256 + 160);
const mask = await sharp(maskRaw, { raw: { width: 256, height: 256, channels: 1 } }).png().toBuffer();
const t = multipart({ image: { data: gray, type: 'image/png' } });
const i = multipart({ image: { data: photo, type: 'image/png' }, mask: { data: mask, type: 'image/png' } });
const v2 = { inputs: [{ name: 'z', shape: [1, 128], datatype: 'FP32', data: new Array(128).fill(0.1) }, { name: 'y', shape: [1, 10], datatype: 'FP32', data: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0] }] };
const requests = [
  { method: 'POST' as const, path: '/v1/translate', headers: t.headers, body: t.payload },
  { method: 'POST' as const, path: '/v1/inpaint', headers: i.headers, body: i.payload },
  { method: 'POST' as const, path: '/v1/generate', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ class: 'Bag', count: 4 }) },
  { method: 'POST' as const, path: '/v2/models/fashion-an/infer', headers: { 'content-type': 'application/json' }, body: JSON.stringify(v2) },
];

const server = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = once(server, 'exit');
for (let k = 0; ; k++) {
  try { if ((await fetch(`${base}/readyz`)).status === 200) break; } catch { /* starting */ }
  if (k > 600) throw new Error('server not ready');
  await new Promise((r) => setTimeout(r, 100));
}
const rss = async () => Number(/normgen_process_resident_memory_bytes (\d+)/.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? NaN) / 2 ** 20;

console.log(`soak: ${SECONDS} s in ${WINDOWS} windows, 16 connections, mixed translate / inpaint / generate / v2 infer, ${base}; RSS at start ${(await rss()).toFixed(0)} MiB`);
console.log('| window | end s | requests | 2xx | 503 | 429 | other | p50 ms | p99 ms | RSS MiB |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
const rows: { other: number; rss: number }[] = [];
for (let w = 1; w <= WINDOWS; w++) {
  const statuses = { ok: 0, s503: 0, s429: 0, other: 0 };
  let instance!: autocannon.Instance;
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({ url: base, connections: 16, duration: SECONDS / WINDOWS, requests }, (err, result) => (err ? reject(err) : resolve(result)));
    instance.on('response', (_client, statusCode) => {
      if (statusCode >= 200 && statusCode < 300) statuses.ok++;
      else if (statusCode === 503) statuses.s503++;
      else if (statusCode === 429) statuses.s429++;
      else statuses.other++;
    });
  });
  statuses.other += r.errors + r.timeouts; // connection errors and timeouts count as failures
  const mem = await rss();
  rows.push({ other: statuses.other, rss: mem });
  console.log(`| ${w} | ${((SECONDS / WINDOWS) * w).toFixed(0)} | ${r.requests.total} | ${statuses.ok} | ${statuses.s503} | ${statuses.s429} | ${statuses.other} | ${r.latency.p50} | ${r.latency.p99} | ${mem.toFixed(0)} |`);
}
server.kill('SIGTERM');
await exited;
const ref = rows[1]!.rss; // after the warm-up window
const drift = Math.max(...rows.slice(1).map((x) => Math.abs(x.rss / ref - 1)));
const failures = rows.reduce((a, x) => a + x.other, 0);
console.log(`non-2xx other than 503/429: ${failures}; RSS after warm-up within ±${(drift * 100).toFixed(1)} % (target: 0 and ±10 %)`);
process.exitCode = failures === 0 && drift <= 0.1 ? 0 : 1;
