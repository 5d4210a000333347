/**
 * Memory benchmarks (issue 28). Figures, not timed tests; one run, on whatever load the machine has.
 *
 * `npm run bench:memory` — the real server (`node --import tsx src/server.ts`, WORKERS=1, default config) in a
 * child process; one request at a time per route and size, its resident memory (VmRSS of the child, read from
 * /proc every 25 ms) before, at its peak during the request, and 3 s after. Sizes: 256², 1024², a 4000×3000
 * phone JPEG and the largest image MAX_PIXELS allows (7071², 50 MP). Prints a Markdown table (MiB) and the
 * largest peak, which is what a replica needs; exits non-zero if a request fails.
 *
 * `npm run bench:overload` — fairness behind a large photo, and 40 concurrent 1024² translates (see `overload`).
 *
 * `npm run bench:model-memory [-- --write]` — where a replica's memory goes, per component (`--components`, below;
 * `npm run bench:model-memory -- --components` alone), and each image model alone in a fresh process: the RSS a forward
 * pass adds per megapixel of input (the first pass at each size, over the idle process, including the image
 * decoding and encoding around it) at two sizes (512² and the model's working size), the larger of the two
 * ratios rounded up to 10 MiB/MP. With `--write` it is recorded in `models/NAME/manifest.json` as
 * `serving.peak_mb_per_mp` (the memory budget's estimate; `MEMORY_BUDGET_MB`). `BENCH_MODELS` (a comma list) picks
 * the models (default: colorize-pono, colorize-pono-l1, inpaint-an, inpaint-an-smooth).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { multipart } from './multipart.js';
import { type Workload, workloads } from './workloads.js';

const root = path.resolve(import.meta.dirname, '..');

/** VmRSS of `pid` in MiB (Linux /proc). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Sample `pid`'s RSS every 25 ms while `work` runs; returns its result and the peak. */
async function peakDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number; ms: number }> {
  let peak = rssMb(pid);
  const timer = setInterval(() => { peak = Math.max(peak, rssMb(pid)); }, 25);
  const t0 = performance.now();
  try {
    const result = await work();
    peak = Math.max(peak, rssMb(pid));
    return { result, peak, ms: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

/** The real server in a child process, once `probe` (default `/readyz`; `/healthz` for a server with no model) answers 200. */
async function startServer(env: Record<string, string>, probe = '/readyz'): Promise<{ pid: number; base: string; stop: () => Promise<void> }> {
  const port = 19000 + Math.floor(Math.random() * 500);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'server.ts')], {
    cwd: root, stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', WORKERS: '1', MALLOC_MMAP_THRESHOLD_: '1048576', ...env },
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}${probe}`)).status === 200) break; } catch { /* starting */ }
    if (i > 1200 || child.exitCode !== null) throw new Error('the server did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { pid: child.pid!, base, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); } };
}

const photo = () => sharp(path.join(root, 'test', 'fixtures', 'china-small.jpg'));

async function image(width: number, height: number, jpeg = false): Promise<Buffer> {
  const s = photo().resize(width, height, { fit: 'fill' });
  return jpeg ? s.jpeg({ quality: 85 }).toBuffer() : s.png({ compressionLevel: 1 }).toBuffer();
}

async function mask(width: number, height: number): Promise<Buffer> {
  const bw = Math.round(width * 0.2), bh = Math.round(height * 0.2);
  const data = Buffer.alloc(width * height);
  const x0 = Math.round(width * 0.4), y0 = Math.round(height * 0.35);
  for (let y = y0; y < y0 + bh; y++) data.fill(255, y * width + x0, y * width + x0 + bw);
  return sharp(data, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

async function post(base: string, route: string, files: Record<string, Buffer>): Promise<number> {
  const { body, type } = multipart(files);
  const r = await fetch(`${base}${route}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type } });
  await r.arrayBuffer();
  return r.status;
}

async function routes(): Promise<void> {
  const server = await startServer({});
  const rows: string[] = [];
  let worst = 0;
  let failed = false;
  const ready = rssMb(server.pid);
  try {
    const cases: [string, string, number, number, boolean][] = [
      ['translate', '256²', 256, 256, false], ['inpaint', '256²', 256, 256, false],
      ['translate', '1024²', 1024, 1024, false], ['inpaint', '1024²', 1024, 1024, false],
      ['translate', '4000×3000 JPEG', 4000, 3000, true], ['inpaint', '4000×3000 JPEG', 4000, 3000, true],
      ['translate', '7071² JPEG (50 MP, the largest allowed)', 7071, 7071, true], ['inpaint', '7071² JPEG (50 MP)', 7071, 7071, true],
    ];
    for (const [route, label, w, h, jpeg] of cases) {
      const img = await image(w, h, jpeg);
      const files: Record<string, Buffer> = route === 'inpaint' ? { image: img, mask: await mask(w, h) } : { image: img };
      const before = rssMb(server.pid);
      const { result: status, peak, ms } = await peakDuring(server.pid, () => post(server.base, `/v1/${route}`, files));
      await new Promise((r) => setTimeout(r, 3000));
      const after = rssMb(server.pid);
      worst = Math.max(worst, peak);
      if (status !== 200) failed = true;
      rows.push(`| ${route} | ${label} | ${status} | ${Math.round(ms)} | ${Math.round(before)} | **${Math.round(peak)}** | ${Math.round(after)} |`);
      console.error(rows.at(-1));
    }
    const g = await peakDuring(server.pid, async () => (await fetch(`${server.base}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"class":1,"count":64,"size":512}' })).status);
    worst = Math.max(worst, g.peak);
    rows.push(`| generate | 64 × 512² grid | ${g.result} | ${Math.round(g.ms)} | — | ${Math.round(g.peak)} | ${Math.round(rssMb(server.pid))} |`);
  } finally {
    await server.stop();
  }
  console.log(`RSS at ready: ${Math.round(ready)} MiB (WORKERS=1, ${os.cpus().length} cores)\n`);
  console.log('| route | image | status | ms | RSS before MiB | peak MiB | 3 s after MiB |\n|---|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
  console.log(`\nlargest peak: ${Math.round(worst)} MiB`);
  if (failed) process.exit(1);
}

async function models(write: boolean): Promise<void> {
  const names = (process.env.BENCH_MODELS ?? 'colorize-pono,colorize-pono-l1,inpaint-an,inpaint-an-smooth').split(',').map((n) => n.trim()).filter(Boolean);
  for (const name of names) {
    const mf = path.join(root, 'models', name, 'manifest.json');
    const manifest = JSON.parse(readFileSync(mf, 'utf8'));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-mem-'));
    await cp(path.join(root, 'models', name), path.join(dir, name), { recursive: true });
    manifest.serving.default = true; // alone in its repository: it must be the task's default
    delete manifest.serving.peak_mb_per_mp;
    writeFileSync(path.join(dir, name, 'manifest.json'), JSON.stringify(manifest));
    const server = await startServer({ MODELS_DIR: dir, MEMORY_BUDGET_MB: '0' });
    const side = manifest.serving.working_max_side ?? (manifest.task === 'inpaint' ? 512 : 768);
    const ratios: string[] = [];
    let worst = 0;
    try {
      for (const s of [512, side]) {
        const img = await image(s, s);
        const files: Record<string, Buffer> = manifest.task === 'inpaint' ? { image: img, mask: await mask(s, s) } : { image: img };
        // the first pass at this size, over the idle process: the arena (512²) or the arena-less session
        // (larger) grows by what the pass needs, so this is the pass's own peak
        await new Promise((r) => setTimeout(r, 1000));
        const before = rssMb(server.pid);
        const { peak, result } = await peakDuring(server.pid, () => post(server.base, manifest.task === 'inpaint' ? '/v1/inpaint' : '/v1/translate', files));
        if (result !== 200) throw new Error(`${name} ${s}²: HTTP ${result}`);
        const perMp = (peak - before) / ((s * s) / 1e6);
        worst = Math.max(worst, perMp);
        ratios.push(`${s}²: +${Math.round(peak - before)} MiB (${Math.round(perMp)} MiB/MP)`);
      }
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const value = Math.ceil(worst / 10) * 10;
    console.log(`${name}: ${ratios.join(', ')} -> peak_mb_per_mp ${value}`);
    if (write) {
      // a text edit, so the rest of the trainer-written manifest (its number formatting) is left as it is
      const text = readFileSync(mf, 'utf8');
      const next = /"peak_mb_per_mp": [\d.]+/.test(text) ? text.replace(/"peak_mb_per_mp": [\d.]+/, `"peak_mb_per_mp": ${value}`)
        : text.replace(/("serving": \{\n)(\s*)/, `$1$2"peak_mb_per_mp": ${value},\n$2`);
      JSON.parse(next);
      writeFileSync(mf, next);
    }
  }
}

/**
 * `--components` (part of `npm run bench:model-memory`): where a replica's resident memory goes, one fresh server
 * (WORKERS=1, the default config otherwise) per row: the process with no model (Node, Fastify, sharp, one
 * inference worker thread with onnxruntime), each model alone at ready (its sessions: the arena one and, for a
 * model whose passes can exceed ARENA_MAX_PIXELS, the arena-less twin) and 1.5 s after two passes of
 * `npm run bench:peer`'s workload for it (`scripts/workloads.ts`) (what the pass leaves: onnxruntime's arena at that size, the recycled
 * input buffers, sharp's cache), then the default server after a warm-up of every route (bench:peer's
 * "idle after warm-up"). Prints a Markdown table (MiB).
 */
async function components(): Promise<void> {
  const ws = await workloads(root);
  const by = (label: string) => ws.find((w) => w.label === label)!;
  // each model alone with its bench:peer workload (the largest one for the automatic colorizer), and the default
  // translator (the hybrid) with the same 512² photo
  const work: [string, Workload][] = [['colorize-pono', by('translate 512²')], ['colorize-pono-auto', by('translate 512²')],
    ['upscale-pono', by('upscale 256² → 1024²')], ['inpaint-an', by('inpaint 512², 64² box')], ['fashion-an', by('generate ×64')]];
  const send = async (base: string, w: Workload, withModel: boolean) => {
    const { body, type } = w.body(withModel);
    const r = await fetch(`${base}${w.path}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type } });
    await r.arrayBuffer();
    return r.status;
  };
  const settle = async (pid: number) => { await new Promise((r) => setTimeout(r, 1500)); return rssMb(pid); };
  const alone = async (names: string[]) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-mem-'));
    for (const name of names) {
      await cp(path.join(root, 'models', name), path.join(dir, name), { recursive: true });
      const mf = path.join(dir, name, 'manifest.json');
      const manifest = JSON.parse(readFileSync(mf, 'utf8'));
      manifest.serving.default = true; // alone in its repository: the task's default
      writeFileSync(mf, JSON.stringify(manifest));
    }
    // no model: never ready (/readyz is 503), so wait for /healthz and give the worker thread a moment
    const server = await startServer({ MODELS_DIR: dir, MEMORY_BUDGET_MB: '0' }, names.length ? '/readyz' : '/healthz');
    if (!names.length) await new Promise((r) => setTimeout(r, 3000));
    return { dir, server };
  };
  const rows: string[] = [];
  const empty = await alone([]);
  const base = await settle(empty.server.pid);
  await empty.server.stop();
  await rm(empty.dir, { recursive: true, force: true });
  rows.push(`| the process, no model (Node, Fastify, sharp, 1 worker thread + onnxruntime) | ${base.toFixed(0)} | — | — |`);
  for (const [name, w] of work) {
    const { dir, server } = await alone([name]);
    try {
      const ready = await settle(server.pid);
      for (let i = 0; i < 2; i++) if ((await send(server.base, w, false)) !== 200) throw new Error(`${name}: ${w.label} failed`);
      const after = await settle(server.pid);
      rows.push(`| \`${name}\` alone: sessions at ready / + after two passes of ${w.label} | ${ready.toFixed(0)} | +${(ready - base).toFixed(0)} | +${(after - ready).toFixed(0)} |`);
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const whole = await startServer({ MEMORY_BUDGET_MB: '0' });
  try {
    const ready = await settle(whole.pid);
    for (const w of ws) for (let i = 0; i < 2; i++) if ((await send(whole.base, w, true)) !== 200) throw new Error(`default server: ${w.label} failed`);
    const after = await settle(whole.pid);
    rows.push(`| the default server (4 defaults at ready) / after bench:peer's warm-up of every route (+ colorize-pono-auto opened) | ${ready.toFixed(0)} | +${(ready - base).toFixed(0)} | +${(after - ready).toFixed(0)} = ${after.toFixed(0)} |`);
  } finally {
    await whole.stop();
  }
  console.log('\nwhere the memory goes (VmRSS MiB, WORKERS=1, one fresh server per row, 1.5 s after the last request):\n');
  console.log('| component | RSS | over the process with no model | added by the passes |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(r);
}

/**
 * `--overload`: fairness and load shedding on the real server (WORKERS=1). (1) A 64² translate sent 1 s after
 * a 4000×3000 one: its latency (before issue 28 it waited 14 s behind one huge pass). (2) 40 concurrent 1024²
 * translates: the answers by status, when the 503s came (median, max), their Retry-After, and how many 504s.
 */
async function overload(): Promise<void> {
  const server = await startServer({});
  try {
    const big = await image(4000, 3000, true);
    const small = await image(64, 64);
    const t0 = performance.now();
    const bigReq = post(server.base, '/v1/translate', { image: big }).then((s) => ({ s, ms: performance.now() - t0 }));
    await new Promise((r) => setTimeout(r, 1000));
    const t1 = performance.now();
    const smallStatus = await post(server.base, '/v1/translate', { image: small });
    const smallMs = performance.now() - t1;
    const b = await bigReq;
    console.log(`fairness: 64² sent 1 s after a 4000×3000 photo: ${smallStatus} in ${Math.round(smallMs)} ms (the photo: ${b.s} in ${Math.round(b.ms)} ms)`);
    const img = await image(1024, 1024);
    const { body, type } = multipart({ image: img });
    const t2 = performance.now();
    const res = await Promise.all(Array.from({ length: 40 }, async () => {
      const r = await fetch(`${server.base}/v1/translate`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type } });
      await r.arrayBuffer();
      return { status: r.status, ms: performance.now() - t2, retry: r.headers.get('retry-after') };
    }));
    const by = (s: number) => res.filter((r) => r.status === s);
    const med = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
    const shed = by(503);
    console.log(`overload: 40 concurrent 1024² translates: ${by(200).length} × 200 (last at ${Math.round(Math.max(...by(200).map((r) => r.ms)))} ms), `
      + `${shed.length} × 503 (median ${Math.round(med(shed.map((r) => r.ms)))} ms, max ${Math.round(Math.max(...shed.map((r) => r.ms)))} ms, Retry-After ${[...new Set(shed.map((r) => r.retry))].join('/')}), `
      + `${by(504).length} × 504, others ${res.filter((r) => ![200, 503, 504].includes(r.status)).length}`);
  } finally {
    await server.stop();
  }
}

if (process.argv.includes('--components')) await components();
else if (process.argv.includes('--models')) {
  await models(process.argv.includes('--write'));
  if (!process.argv.includes('--write')) await components();
}
else if (process.argv.includes('--overload')) await overload();
else await routes();
