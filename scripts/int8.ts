/**
 * INT8 variants, the onnxruntime side (the graph side is trainer/int8.py; `npm run int8 -- MODEL` runs both).
 *
 *   npx tsx scripts/int8.ts calibrate CALIB.onnx INPUTS_DIR OUT.json
 *     runs the calibration graph (model.onnx with every Conv input and output as an extra output) on the
 *     calibration inputs (trainer/int8.py calibration_inputs: validation crops) and writes, per tensor, the
 *     0.01 % and 99.99 % percentiles of its values (a reservoir of up to 2^20 values per tensor).
 *   npx tsx scripts/int8.ts compare FP32.onnx INT8.onnx INPUTS_DIR OUT.json
 *     runs both graphs on the same inputs (e.g. the test photos) with 1 intra-op thread: the median
 *     session.run time of each (5 runs after a warm-up, per input), their ratio, and the PSNR of the int8
 *     output against the fp32 output (peak-to-peak 2 for [-1, 1] outputs); with targets (`target` files)
 *     also each one's PSNR against the target. Both outputs are kept as raw float32 in OUT-outputs/NNN-{fp32,int8}.f32.
 *
 *   npx tsx scripts/int8.ts build NAME [--side 128] [--speed-side 512]   (npm run int8 -- NAME)
 *     every step for models/NAME: trainer onnx int8-prepare (validation crops, test crops, calibration graph),
 *     calibrate, trainer onnx int8-quantize (models/NAME/model.int8.onnx), compare on the test crops (quality)
 *     and on the speed crops, trainer onnx int8-record (the manifest's variants.int8). Work files in out/int8/NAME.
 *
 * Inputs: INPUTS_DIR/inputs.json {samples: [{NAME: {file, shape}}], targets?: [{file, shape}]}, raw
 * little-endian float32 NCHW files. Prints progress; writes JSON.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { quantile } from './stats.js';

type Desc = { samples: Record<string, { file: string; shape: number[] }>[]; targets?: { file: string; shape: number[] }[] };

function load(dir: string): { desc: Desc; feeds: Record<string, ort.Tensor>[] } {
  const desc = JSON.parse(readFileSync(path.join(dir, 'inputs.json'), 'utf8')) as Desc;
  const feeds = desc.samples.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => {
    const buf = readFileSync(path.join(dir, v.file));
    return [k, new ort.Tensor('float32', new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), v.shape)];
  })));
  return { desc, feeds };
}

const session = (file: string) => ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });

/** Percentile p (0..100) of a sorted Float32Array. */
const pct = (s: Float32Array, p: number) => s[Math.min(s.length - 1, Math.max(0, Math.round((p / 100) * (s.length - 1))))]!;

async function calibrate(calib: string, dir: string, out: string): Promise<void> {
  const { feeds } = load(dir);
  const sess = await session(calib);
  const extra = sess.outputNames;  // the model's own outputs and every Conv input / output (trainer/int8.py)
  const cap = 1 << 20;
  const pools = new Map<string, { vals: Float32Array; n: number; seen: number }>();
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const [i, f] of feeds.entries()) {
    const res = await sess.run(f);
    for (const name of extra) {
      const data = res[name]!.data as Float32Array;
      const pool = pools.get(name) ?? { vals: new Float32Array(cap), n: 0, seen: 0 };
      pools.set(name, pool);
      const step = Math.max(1, Math.floor(data.length / (cap / feeds.length)));
      for (let j = Math.floor(rand() * step); j < data.length; j += step) {  // strided sample, reservoir when full
        pool.seen++;
        if (pool.n < cap) pool.vals[pool.n++] = data[j]!;
        else { const r = Math.floor(rand() * pool.seen); if (r < cap) pool.vals[r] = data[j]!; }
      }
    }
    process.stdout.write(`[calibrate] ${i + 1}/${feeds.length}\r`);
  }
  const stats: Record<string, { lo: number; hi: number; min: number; max: number }> = {};
  for (const [name, p] of pools) {
    const s = p.vals.slice(0, p.n).sort();
    stats[name] = { lo: pct(s, 0.01), hi: pct(s, 99.99), min: s[0]!, max: s[s.length - 1]! };
  }
  writeFileSync(out, JSON.stringify({ percentiles: [0.01, 99.99], inputs: feeds.length, stats }, null, 1));
  console.log(`\n[calibrate] ${Object.keys(stats).length} tensors -> ${out}`);
}

function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) { const d = Math.max(-1, Math.min(1, a[i]!)) - Math.max(-1, Math.min(1, b[i]!)); se += d * d; }
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10(4 / mse);
}

async function compare(fp: string, q: string, dir: string, out: string): Promise<void> {
  const { desc, feeds } = load(dir);
  const [a, b] = [await session(fp), await session(q)];
  const targets = desc.targets?.map((t) => { const buf = readFileSync(path.join(dir, t.file)); return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4); });
  const rows: Record<string, number>[] = [];
  for (const [i, f] of feeds.entries()) {
    const times = async (s: ort.InferenceSession) => {
      let res = await s.run(f);
      const t: number[] = [];
      for (let k = 0; k < 5; k++) { const t0 = performance.now(); res = await s.run(f); t.push(performance.now() - t0); }
      return { ms: quantile(t, 0.5), out: res[s.outputNames[0]!]!.data as Float32Array };
    };
    const ra = await times(a), rb = await times(b);
    // the two outputs, for the task's own scores (trainer onnx int8-record: hue agreement, inpaint detail)
    const outDir = out.replace(/\.json$/, '-outputs');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, `${String(i).padStart(3, '0')}-fp32.f32`), Buffer.from(ra.out.buffer, ra.out.byteOffset, ra.out.byteLength));
    writeFileSync(path.join(outDir, `${String(i).padStart(3, '0')}-int8.f32`), Buffer.from(rb.out.buffer, rb.out.byteOffset, rb.out.byteLength));
    const row: Record<string, number> = { fp32_ms: +ra.ms.toFixed(1), int8_ms: +rb.ms.toFixed(1), ratio: +(rb.ms / ra.ms).toFixed(3), psnr_int8_vs_fp32: +psnr(rb.out, ra.out).toFixed(2) };
    if (targets) { row.psnr_fp32 = +psnr(ra.out, targets[i]!).toFixed(3); row.psnr_int8 = +psnr(rb.out, targets[i]!).toFixed(3); }
    rows.push(row);
    console.log(`[compare] ${i + 1}/${feeds.length} ${JSON.stringify(row)}`);
  }
  const med = (k: string) => quantile(rows.map((r) => r[k]!), 0.5);
  const mean = (k: string) => rows.reduce((s, r) => s + r[k]!, 0) / rows.length;
  const summary: Record<string, number> = { ratio_median: med('ratio'), fp32_ms_median: med('fp32_ms'), int8_ms_median: med('int8_ms'), psnr_int8_vs_fp32_mean: +mean('psnr_int8_vs_fp32').toFixed(2) };
  if (targets) { summary.psnr_fp32_mean = +mean('psnr_fp32').toFixed(3); summary.psnr_int8_mean = +mean('psnr_int8').toFixed(3); summary.psnr_loss_db = +(summary.psnr_fp32_mean - summary.psnr_int8_mean).toFixed(3); }
  writeFileSync(out, JSON.stringify({ summary, rows }, null, 1));
  console.log(`[compare] ${JSON.stringify(summary)}`);
}

function trainer(args: string[]): void {
  console.log(`[int8] python3 -m trainer ${args.join(' ')}`);
  const r = spawnSync('/usr/bin/python3', ['-m', 'trainer', ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`python3 -m trainer ${args[0]} ${args[1]} failed (${r.status})`);
}

async function build(name: string, side: string, speedSide: string): Promise<void> {
  const model = path.join('models', name);
  const work = path.join('out', 'int8', name);
  mkdirSync(work, { recursive: true });
  trainer(['onnx', 'int8-prepare', model, '--work', work, '--side', side, '--speed-side', speedSide]);
  await calibrate(path.join(work, 'calib.onnx'), path.join(work, 'calib'), path.join(work, 'stats.json'));
  trainer(['onnx', 'int8-quantize', model, '--stats', path.join(work, 'stats.json')]);
  await compare(path.join(model, 'model.onnx'), path.join(model, 'model.int8.onnx'), path.join(work, 'test'), path.join(work, 'quality.json'));
  await compare(path.join(model, 'model.onnx'), path.join(model, 'model.int8.onnx'), path.join(work, 'speed'), path.join(work, 'speed.json'));
  trainer(['onnx', 'int8-record', model, '--stats', path.join(work, 'stats.json'), '--quality', path.join(work, 'quality.json'),
    '--speed', path.join(work, 'speed.json'), '--work', work]);
}

const [verb, ...rest] = process.argv.slice(2);
const opt = (k: string, d: string) => (rest.includes(k) ? rest[rest.indexOf(k) + 1]! : d);
if (verb === 'build' && rest[0]) await build(rest[0], opt('--side', '128'), opt('--speed-side', '512'));
else if (verb === 'calibrate' && rest.length === 3) await calibrate(rest[0]!, rest[1]!, rest[2]!);
else if (verb === 'compare' && rest.length === 4) await compare(rest[0]!, rest[1]!, rest[2]!, rest[3]!);
else { console.error('usage: tsx scripts/int8.ts build NAME [--side N] [--speed-side N] | calibrate CALIB.onnx INPUTS_DIR OUT.json | compare FP32.onnx INT8.onnx INPUTS_DIR OUT.json'); process.exit(2); }
