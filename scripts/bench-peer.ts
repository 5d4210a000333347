/**
 * `npm run bench:peer` (issue 32): normgen against the server a PyTorch user would write instead
 * (`scripts/peer/server.py`: FastAPI + uvicorn + Debian's PyTorch, the trainer's network code, the shipped
 * weights, the same pre- and post-processing). Figures, not a test: one run, requests interleaved, on whatever
 * load the machine has (say so when you quote them).
 *
 * 1. Starts both: normgen as production does (`node dist/server.js`, built first; INTRA_OP_THREADS = cores) and
 *    the peer (`--threads` = cores), each in its own process group; waits for `/readyz`.
 * 2. Parity: the same inputs to both; PSNR of normgen's output against the peer's (dB; `inf` = identical).
 * 3. Idle RSS of each process group after a warm-up (3 requests per workload), and the peak over the whole run
 *    (VmRSS summed over the group's processes, sampled every 50 ms).
 * 4. c=1: `--rounds` rounds; in each, every workload once on each server, the order alternating, each request
 *    `--gap-ms` (300) after the previous answer (so neither server's spinning thread pool slows the other's
 *    next pass): p50 / p95 ms, and normgen's HTTP p50 over its own `Server-Timing: infer` p50 (the time outside
 *    `session.run`), and a second table with the median of each of normgen's Server-Timing stages and the
 *    floor of that ratio, (infer + decode + encode + null round trip) / infer (inpaint's image and mask decode
 *    concurrently: the longer of the two counts), where the null round trip is
 *    normgen's `GET /healthz` from the same client (measured before each normgen request, after the gap), and the
 *    overhead normgen owns, (HTTP − decode − encode − null round trip) / infer (issue 47's target: ≤ 1.10).
 * 5. c=4 and c=8: for each workload, `--seconds` s of closed-loop load on one server then the other (twice, the
 *    order swapped): requests/s served (a 503 from load shedding waits its Retry-After and is counted apart).
 * Workloads: translate 256² and 512² (colorize-pono-auto, the automatic network), upscale 256² → 1024²
 * (upscale-pono, one tile), inpaint 512² with a 64² box (inpaint-an), generate 64
 * samples (fashion-an; the peer draws its noise with torch, so its samples differ — same work, no parity).
 * Prints a Markdown table with the ratios normgen / peer. Usage: `npm run bench:peer [-- --rounds 15 --seconds 8]`.
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { workloads } from './workloads.js';
import { quantile, serverTimingStages } from './stats.js';

const root = path.resolve(import.meta.dirname, '..');
const arg = (name: string, def: number) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def; };
const ROUNDS = arg('rounds', 12), SECONDS = arg('seconds', 6), GAP_MS = arg('gap-ms', 300);
const cores = os.availableParallelism();

/** VmRSS (MiB) summed over every process in `pid`'s process group. */
function groupRssMb(pgid: number): number {
  let kb = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue; // field 5 of stat: pgrp
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch { /* gone */ }
  }
  return kb / 1024;
}

interface Server { name: string; base: string; child: ChildProcess; peak: number; startMs: number }
async function start(name: string, cmd: string, args: string[], env: Record<string, string>, port: number): Promise<Server> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { cwd: root, detached: true, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/readyz`)).status === 200) break; } catch { /* starting */ }
    if (i > 3000 || child.exitCode !== null) throw new Error(`${name} did not become ready`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { name, base, child, peak: 0, startMs: performance.now() - t0 };
}

// the peer ignores the model field (it serves one model per route); normgen needs it for colorize-pono-auto
type Work = { label: string; path: string; make: () => { body: Buffer; type: string } };
const works: Work[] = (await workloads(root)).map((w) => ({ label: w.label, path: w.path, make: () => w.body(w.model === 'colorize-pono-auto') }));

/** One request; a 503 or 504 (load shedding, queue deadline) is returned as `shed` when `allowShed`, any other failure throws. */
async function call(s: Server, w: Work, allowShed = false): Promise<{ ms: number; bytes: Buffer; shed?: boolean; inferMs?: number; stages?: Map<string, number> }> {
  const { body, type } = w.make();
  const t0 = performance.now();
  const res = await fetch(s.base + w.path, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type } });
  const bytes = Buffer.from(await res.arrayBuffer());
  if ((res.status === 503 || res.status === 504) && allowShed) {
    await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
    return { ms: performance.now() - t0, bytes, shed: true };
  }
  if (res.status !== 200) throw new Error(`${s.name} ${w.label}: ${res.status} ${bytes.toString().slice(0, 200)}`);
  const ms = performance.now() - t0;
  // normgen's Server-Timing: `name;dur=ms` per stage (src/tracing.ts); the peer sends none
  const stages = serverTimingStages(res.headers.get('server-timing'));
  return { ms, bytes, ...(stages.has('infer') ? { inferMs: stages.get('infer')!, stages } : {}) };
}

async function psnr(a: Buffer, b: Buffer): Promise<number> {
  const [x, y] = await Promise.all([sharp(a).removeAlpha().raw().toBuffer(), sharp(b).removeAlpha().raw().toBuffer()]);
  if (x.length !== y.length) return NaN;
  let se = 0;
  for (let i = 0; i < x.length; i++) se += (x[i]! - y[i]!) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / x.length));
}

execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
const ours = await start('normgen', process.execPath, [path.join(root, 'dist', 'server.js')],
  { PORT: '19501', HOST: '127.0.0.1', LOG_LEVEL: 'warn', MALLOC_MMAP_THRESHOLD_: '1048576', INTRA_OP_THREADS: String(cores) }, 19501);
let peer: Server;
try {
  peer = await start('peer', '/usr/bin/python3', [path.join(root, 'scripts', 'peer', 'server.py'), '--port', '19502', '--threads', String(cores)], {}, 19502);
} catch (err) {
  process.kill(-ours.child.pid!, 'SIGTERM');
  throw err;
}
const servers = [ours, peer];
const sampler = setInterval(() => { for (const s of servers) s.peak = Math.max(s.peak, groupRssMb(s.child.pid!)); }, 50);
try {
  console.log(`# bench:peer — ${cores} cores, load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}; start → ready: normgen ${ours.startMs.toFixed(0)} ms, peer ${peer.startMs.toFixed(0)} ms`);
  const parity: string[] = [];
  for (const w of works) {
    const outs = [];
    for (const s of servers) { for (let i = 0; i < 3; i++) outs.push((await call(s, w)).bytes); }
    if (!w.path.endsWith('generate')) parity.push(`${w.label}: ${(await psnr(outs[0]!, outs[3]!)).toFixed(1)} dB`);
  }
  await new Promise((r) => setTimeout(r, 1500));
  const idle = servers.map((s) => groupRssMb(s.child.pid!));
  console.log(`parity (PSNR of normgen's output vs the peer's): ${parity.join('; ')}; generate: same network and weights, different noise`);
  const lat = new Map<string, number[]>();
  const nullTrip: number[] = []; // normgen's GET /healthz at c=1: the HTTP round trip of a route that does nothing
  const inferOf = new Map<string, number[]>(); // normgen's Server-Timing infer (session.run alone), c=1
  const stagesOf = new Map<string, Map<string, number>[]>(); // normgen's whole Server-Timing, with `http` added, c=1
  for (let r = 0; r < ROUNDS; r++) {
    for (const w of works) {
      for (const s of r % 2 ? [...servers].reverse() : servers) {
        const key = `${s.name}|${w.label}`;
        // a pause first: each request starts on a quiet machine, as a lone user's would (both servers' thread pools
        // spin for a while after a pass — OpenMP in the peer, onnxruntime here — and would slow the other's next one)
        await new Promise((res) => setTimeout(res, GAP_MS));
        if (s === ours) {
          const t0 = performance.now();
          await (await fetch(`${ours.base}/healthz`)).arrayBuffer();
          nullTrip.push(performance.now() - t0);
          await new Promise((res) => setTimeout(res, GAP_MS));
        }
        const r = await call(s, w);
        lat.set(key, [...(lat.get(key) ?? []), r.ms]);
        if (r.inferMs !== undefined) inferOf.set(w.label, [...(inferOf.get(w.label) ?? []), r.inferMs]);
        if (r.stages) stagesOf.set(w.label, [...(stagesOf.get(w.label) ?? []), new Map([...r.stages, ['http', r.ms]])]);
      }
    }
  }
  const rps = new Map<string, number[]>();
  const shed = new Map<string, number>(); // 503s (normgen's load shedding) during the throughput runs
  for (const c of [4, 8]) {
    for (const w of works) {
      for (const order of [servers, [...servers].reverse()]) {
        for (const s of order) {
          let n = 0;
          const until = performance.now() + SECONDS * 1000;
          const t0 = performance.now();
          await Promise.all(Array.from({ length: c }, async () => {
            while (performance.now() < until) { const r = await call(s, w, true); if (r.shed) shed.set(s.name, (shed.get(s.name) ?? 0) + 1); else n++; }
          }));
          const key = `${s.name}|${w.label}|${c}`;
          rps.set(key, [...(rps.get(key) ?? []), n / ((performance.now() - t0) / 1000)]);
        }
      }
    }
  }
  const med = (xs: number[]) => quantile(xs, 0.5);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log('\n| workload | c=1 p50 ms normgen / peer (ratio) | c=1 p95 ms normgen / peer | normgen HTTP p50 / session.run p50 | c=4 req/s normgen / peer (ratio) | c=8 req/s normgen / peer (ratio) |');
  console.log('|---|---|---|---|---|---|');
  for (const w of works) {
    const [a, b] = servers.map((s) => lat.get(`${s.name}|${w.label}`)!);
    const [a4, b4] = servers.map((s) => mean(rps.get(`${s.name}|${w.label}|4`)!));
    const [a8, b8] = servers.map((s) => mean(rps.get(`${s.name}|${w.label}|8`)!));
    const inf = inferOf.get(w.label);
    const over = inf ? `${(med(a!) / med(inf)).toFixed(2)} (${med(inf).toFixed(0)} ms)` : '—';
    console.log(`| ${w.label} | ${med(a!).toFixed(0)} / ${med(b!).toFixed(0)} (${(med(a!) / med(b!)).toFixed(2)}×) | ${quantile(a!, 0.95).toFixed(0)} / ${quantile(b!, 0.95).toFixed(0)} | ${over} | ${a4!.toFixed(2)} / ${b4!.toFixed(2)} (${(a4! / b4!).toFixed(2)}×) | ${a8!.toFixed(2)} / ${b8!.toFixed(2)} (${(a8! / b8!).toFixed(2)}×) |`);
  }
  // where normgen's c=1 time goes: the median of each Server-Timing stage; `other` = the server's total minus
  // its stages (routing, validation, tensor layout, PNG metadata…), `net` = HTTP minus the server's total (the
  // connection, the client). The floor: (infer + decode + encode + a null round trip) / infer, the HTTP /
  // session.run ratio if nothing but the forward pass, the image codecs and HTTP itself took time.
  const names = ['read', 'decode', 'decode-mask', 'queue', 'transfer', 'infer', 'tiles', 'paste', 'upsample', 'encode'];
  const trip = med(nullTrip);
  console.log(`\nnormgen c=1, median ms per stage (Server-Timing); null round trip (GET /healthz, same client) ${trip.toFixed(1)} ms:\n\n| workload | ${names.join(' | ')} | other | total | net | HTTP | HTTP / infer | floor | owned |`);
  console.log(`|---|${names.map(() => '---|').join('')}---|---|---|---|---|---|---|`);
  for (const w of works) {
    const rows = stagesOf.get(w.label);
    if (!rows) continue;
    const m = (k: string) => (rows.some((r) => r.has(k)) ? med(rows.map((r) => r.get(k) ?? 0)) : undefined);
    // image and mask decode concurrently (inpaint): their wall time is the longer of the two
    const staged = (r: Map<string, number>) => names.reduce((s, k) => s + (k === 'decode-mask' ? 0 : k === 'decode' ? Math.max(r.get(k) ?? 0, r.get('decode-mask') ?? 0) : r.get(k) ?? 0), 0);
    const other = med(rows.map((r) => r.get('total')! - staged(r)));
    const net = med(rows.map((r) => r.get('http')! - r.get('total')!));
    const decodes = med(rows.map((r) => Math.max(r.get('decode') ?? 0, r.get('decode-mask') ?? 0)));
    const floor = ((m('infer') ?? 0) + decodes + (m('encode') ?? 0) + trip) / m('infer')!;
    // the overhead normgen owns, per request then the median: HTTP without the codecs and the null round trip, over infer
    const owned = med(rows.map((r) => (r.get('http')! - Math.max(r.get('decode') ?? 0, r.get('decode-mask') ?? 0) - (r.get('encode') ?? 0) - trip) / r.get('infer')!));
    console.log(`| ${w.label} | ${names.map((k) => m(k)?.toFixed(1) ?? '—').join(' | ')} | ${other.toFixed(1)} | ${m('total')!.toFixed(1)} | ${net.toFixed(1)} | ${m('http')!.toFixed(1)} | ${(m('http')! / m('infer')!).toFixed(2)} | ${floor.toFixed(2)} | ${owned.toFixed(2)} |`);
  }
  console.log(`\nshed under load (503 + Retry-After, not counted as served): normgen ${shed.get('normgen') ?? 0}, peer ${shed.get('peer') ?? 0}`);
  console.log(`RSS of each process group, MiB: idle after warm-up normgen ${idle[0]!.toFixed(0)} / peer ${idle[1]!.toFixed(0)} (${(idle[0]! / idle[1]!).toFixed(2)}×); peak normgen ${ours.peak.toFixed(0)} / peer ${peer.peak.toFixed(0)} (${(ours.peak / peer.peak).toFixed(2)}×)`);
} finally {
  clearInterval(sampler);
  for (const s of servers) { try { process.kill(-s.child.pid!, 'SIGTERM'); } catch { /* gone */ } }
}
