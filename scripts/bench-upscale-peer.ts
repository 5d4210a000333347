/**
 * `npm run bench:upscale-peer`: normgen's `/v1/upscale` against the ×4 models a JavaScript user would install
 * instead, UpscalerJS's ESRGAN-thick and ESRGAN-slim (npm `@upscalerjs/esrgan-thick` / `-slim` 1.0.0, run on
 * `@tensorflow/tfjs` 4.11 with the WASM backend, loaded from the packages' own model files), on the 8 held-out
 * test photos, as `python3 -m trainer upscale evaluate` scores them: HR = the photo (cropped to multiples of 16),
 * LR = bicubic ×4 down ("clean") or bicubic ×4 down + JPEG 50 + Gaussian noise σ 5/255 ("degraded"); Y-PSNR and
 * SSIM with a 4 px border (trainer/metrics.py `sr_scores`), baselines bicubic and Lanczos (PIL).
 *
 * Each contender runs in its own child process (`--run NAME`), one image after another, after one warm-up pass:
 * normgen as the real app on a real HTTP server (loopback, multipart upload, PNG reply, WORKERS=1), the ESRGANs
 * in tfjs. Reported: ms per image (median), the process's peak RSS (MiB, `process.resourceUsage().maxRSS`).
 * A benchmark, not a test: minutes (ESRGAN-thick is slow on a CPU); optional in CI. Writes
 * out/upscale-peer/results.json and prints a Markdown table.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { quantile } from './stats.js';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, 'out', 'upscale-peer');
const PY = '/usr/bin/python3';

/** The test photos as PNGs: NAME-hr.png, NAME-clean.png, NAME-degraded.png (the trainer's own protocol). */
function dumpPhotos(): string[] {
  mkdirSync(dir, { recursive: true });
  const code = `
import sys; sys.path.insert(0, ${JSON.stringify(root)})
from PIL import Image
from trainer.upscale.pairs import photo_set
from trainer.upscale import degrade
for i, (name, hr) in enumerate(photo_set("test").items()):
    Image.fromarray(hr).save(f"${dir}/{name}-hr.png")
    Image.fromarray(degrade.bicubic_down(hr)).save(f"${dir}/{name}-clean.png")
    Image.fromarray(degrade.eval_degraded(hr, seed=i)).save(f"${dir}/{name}-degraded.png")
    print(name)
`;
  const r = spawnSync(PY, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dumping the test photos failed: ${r.stderr}`);
  return r.stdout.trim().split('\n');
}

type Runner = (png: Buffer) => Promise<Buffer>;

async function normgen(): Promise<{ run: Runner; close: () => Promise<void> }> {
  const { buildApp } = await import('../src/app.js');
  const { loadConfig } = await import('../src/config.js');
  const app = await buildApp(loadConfig({ ...process.env, LOG_LEVEL: 'silent', WORKERS: '1', MODELS: 'upscale-pono', MAX_OUTPUT_PIXELS: String(4096 * 4096) }), false);
  await app.listen({ port: 0, host: '127.0.0.1' });
  await app.models.load();
  const port = (app.server.address() as { port: number }).port;
  return {
    run: async (png) => {
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'lr.png');
      form.append('output_format', 'png');
      const res = await fetch(`http://127.0.0.1:${port}/v1/upscale`, { method: 'POST', body: form });
      if (!res.ok) throw new Error(`/v1/upscale ${res.status}: ${await res.text()}`);
      return Buffer.from(await res.arrayBuffer());
    },
    close: () => app.close(),
  };
}

async function esrgan(size: 'thick' | 'slim'): Promise<{ run: Runner; close: () => Promise<void> }> {
  const tf = await import('@tensorflow/tfjs');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
  await tf.setBackend('wasm');
  await tf.ready();
  const pkg = path.join(root, 'node_modules', '@upscalerjs', `esrgan-${size}`);
  const def = (await import(`@upscalerjs/esrgan-${size}/4x`)).default as { setup?: (t: unknown) => void; inputRange: [number, number] };
  def.setup?.(tf);
  const json = JSON.parse(readFileSync(path.join(pkg, 'models', 'x4', 'model.json'), 'utf8'));
  const bins = (json.weightsManifest as { paths: string[]; weights: unknown[] }[]).flatMap((g) => g.paths.map((p) => readFileSync(path.join(pkg, 'models', 'x4', p))));
  const all = Buffer.concat(bins);
  const model = await tf.loadLayersModel({
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
      weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) }),
  });
  const top = def.inputRange[1];
  return {
    run: async (png) => {
      const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const out = tf.tidy(() => {
        const x = tf.tensor4d(Float32Array.from(data, (v) => (v / 255) * top), [1, info.height, info.width, 3]);
        return (model.predict(x) as import('@tensorflow/tfjs').Tensor).mul(255 / top).round().clipByValue(0, 255);
      });
      const pixels = Uint8Array.from(await out.data());
      out.dispose();
      return sharp(Buffer.from(pixels), { raw: { width: info.width * 4, height: info.height * 4, channels: 3 } }).png().toBuffer();
    },
    close: async () => { model.dispose(); },
  };
}

/** Child mode: run one contender on every LR image, write its outputs and timings. */
async function runOne(name: string): Promise<void> {
  const c = name === 'normgen' ? await normgen() : await esrgan(name === 'esrgan-thick' ? 'thick' : 'slim');
  const lrs = readdirSync(dir).filter((f) => !f.includes('--') && /-(clean|degraded)\.png$/.test(f)).sort();
  const times: Record<string, number> = {};
  await c.run(readFileSync(path.join(dir, lrs[0]!)));  // warm-up
  for (const f of lrs) {
    const png = readFileSync(path.join(dir, f));
    const t0 = performance.now();
    const out = await c.run(png);
    times[f] = performance.now() - t0;
    writeFileSync(path.join(dir, `${name}--${f}`), out);
    console.error(`[${name}] ${f} ${times[f]!.toFixed(0)} ms`);
  }
  await c.close();
  process.stdout.write(JSON.stringify({ times, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024) }));
}

async function main(): Promise<void> {
  const photos = dumpPhotos();
  const contenders = (process.env.PEERS ?? 'normgen,esrgan-slim,esrgan-thick').split(',');
  const runs: Record<string, { times: Record<string, number>; peak_rss_mib: number }> = {};
  for (const name of contenders) {
    console.log(`[bench] ${name} on ${photos.length} photos x 2 inputs ...`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', 'bench-upscale-peer.ts'), '--run', name],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${name} failed (${r.status})`);
    runs[name] = JSON.parse(r.stdout);
  }
  // scores: the trainer's sr_scores on every output, plus PIL bicubic / Lanczos
  const code = `
import sys, json; sys.path.insert(0, ${JSON.stringify(root)})
import numpy as np
from PIL import Image
from trainer.metrics import sr_scores
from trainer.upscale.pairs import bicubic_up, lanczos_up
d = ${JSON.stringify(dir)}
out = {}
for name in ${JSON.stringify(photos)}:
    hr = np.asarray(Image.open(f"{d}/{name}-hr.png").convert("RGB"))
    for kind in ("clean", "degraded"):
        lr = np.asarray(Image.open(f"{d}/{name}-{kind}.png").convert("RGB"))
        row = {"bicubic": sr_scores(bicubic_up(lr), hr, 4), "lanczos": sr_scores(lanczos_up(lr), hr, 4)}
        for c in ${JSON.stringify(contenders)}:
            row[c] = sr_scores(np.asarray(Image.open(f"{d}/{c}--{name}-{kind}.png").convert("RGB")), hr, 4)
        out[f"{name}-{kind}"] = row
print(json.dumps(out))
`;
  const s = spawnSync(PY, ['-c', code], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (s.status !== 0) throw new Error(`scoring failed: ${s.stderr}`);
  const scores = JSON.parse(s.stdout) as Record<string, Record<string, [number, number]>>;
  const methods = ['bicubic', 'lanczos', ...contenders];
  const mean = (kind: string, m: string, i: 0 | 1) => {
    const v = Object.entries(scores).filter(([k]) => k.endsWith(`-${kind}`)).map(([, r]) => r[m]![i]);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  const median = (m: string) => quantile(Object.values(runs[m]!.times), 0.5);
  const summary: Record<string, unknown> = {};
  console.log(`\n| ${photos.length} test photos, Y-PSNR / SSIM (4 px border) | ${methods.join(' | ')} |\n|---|${methods.map(() => '---').join('|')}|`);
  for (const kind of ['clean', 'degraded']) {
    console.log(`| ${kind} | ${methods.map((m) => `${mean(kind, m, 0).toFixed(2)} / ${mean(kind, m, 1).toFixed(4)}`).join(' | ')} |`);
    summary[kind] = Object.fromEntries(methods.map((m) => [m, { psnr: +mean(kind, m, 0).toFixed(3), ssim: +mean(kind, m, 1).toFixed(4) }]));
  }
  console.log(`| ms per image (median, 16 inputs) | – | – | ${contenders.map((m) => median(m).toFixed(0)).join(' | ')} |`);
  console.log(`| peak RSS (MiB) | – | – | ${contenders.map((m) => runs[m]!.peak_rss_mib).join(' | ')} |`);
  summary.ms_median = Object.fromEntries(contenders.map((m) => [m, Math.round(median(m))]));
  summary.peak_rss_mib = Object.fromEntries(contenders.map((m) => [m, runs[m]!.peak_rss_mib]));
  writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ summary, scores, runs }, null, 1));
}

const i = process.argv.indexOf('--run');
if (i > 0) await runOne(process.argv[i + 1]!);
else await main();
