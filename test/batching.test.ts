/**
 * Dynamic batching and the bounded queue, on the real colorizer with a real photo: N concurrent
 * requests run as fewer forward passes with byte-identical results to unbatched serving; a full
 * queue answers 503 problem+json with Retry-After; a request past its queue deadline answers 504;
 * each model is warmed up before it turns ready.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, grayPhoto, multipart, repoRoot } from './helper.js';

const apps: FastifyInstance[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A models dir holding only the colorizer, with `batching` written into its manifest. */
async function colorizerWith(batching: Record<string, number>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-batch-'));
  dirs.push(dir);
  await cp(path.join(repoRoot, 'models', 'colorize-pono-auto'), path.join(dir, 'colorize-pono-auto'), { recursive: true });
  const mf = path.join(dir, 'colorize-pono-auto', 'manifest.json');
  const m = JSON.parse(await readFile(mf, 'utf8'));
  m.serving.batching = batching;
  await writeFile(mf, JSON.stringify(m));
  return dir;
}

async function start(env: Record<string, string>): Promise<FastifyInstance> {
  const app = await buildReadyApp(env);
  apps.push(app);
  return app;
}

/** Eight different 96x64 crops of the real photo, as PNG. */
async function crops(): Promise<Buffer[]> {
  const photo = await grayPhoto();
  return Promise.all(Array.from({ length: 8 }, (_, i) => sharp(photo).extract({ left: 20 * i, top: 10 * i, width: 96, height: 64 }).png().toBuffer()));
}

const translate = (app: FastifyInstance, img: Buffer) => app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: img } }) });

describe('dynamic batching', () => {
  test('8 concurrent same-size requests run in fewer passes, with results identical to unbatched', async () => {
    const imgs = await crops();
    const batched = await start({ MODELS_DIR: await colorizerWith({ max_batch_size: 8, max_queue_delay_ms: 50 }) });
    const plain = await start({ MODELS_DIR: await colorizerWith({}), BATCHING: '0' });
    const bEntry = batched.models.get('colorize-pono-auto')!;
    const pEntry = plain.models.get('colorize-pono-auto')!;
    assert.ok(bEntry.warmupMs !== undefined && bEntry.warmupMs >= 0, 'warm-up ran before ready');
    const runs0 = bEntry.batcher!.runs;
    const got = await Promise.all(imgs.map((i) => translate(batched, i)));
    const batchRuns = bEntry.batcher!.runs - runs0;
    const prun0 = pEntry.batcher!.runs;
    const want = [];
    for (const i of imgs) want.push(await translate(plain, i));
    assert.equal(pEntry.batcher!.runs - prun0, 8);
    assert.ok(batchRuns < 8, `batched: ${batchRuns} runs for 8 requests`);
    for (let k = 0; k < 8; k++) {
      assert.equal(got[k]!.statusCode, 200, got[k]!.body);
      const [a, b] = await Promise.all([sharp(got[k]!.rawPayload).raw().toBuffer(), sharp(want[k]!.rawPayload).raw().toBuffer()]);
      // same pixels up to float summation order inside a larger batch: at most 1 level, almost everywhere equal
      let maxDiff = 0, diff = 0;
      for (let j = 0; j < a.length; j++) { const d = Math.abs(a[j]! - b[j]!); maxDiff = Math.max(maxDiff, d); diff += +(d > 0); }
      assert.ok(maxDiff <= 1 && diff / a.length < 0.01, `request ${k}: max diff ${maxDiff}, ${diff} samples differ`);
    }
  });

  test('max_batch_pixels caps the pixels of one pass: 8 concurrent requests in passes of at most 2 images', async () => {
    const imgs = await crops();
    const app = await start({ MODELS_DIR: await colorizerWith({ max_batch_size: 8, max_batch_pixels: 2 * 96 * 64, max_queue_delay_ms: 50 }) });
    const entry = app.models.get('colorize-pono-auto')!;
    assert.equal(entry.batcher!.config.maxBatchPixels, 2 * 96 * 64);
    const runs0 = entry.batcher!.runs;
    const got = await Promise.all(imgs.map((i) => translate(app, i)));
    for (const r of got) assert.equal(r.statusCode, 200, r.body);
    const runs = entry.batcher!.runs - runs0;
    assert.ok(runs >= 4 && runs < 8, `${runs} passes for 8 requests of 1/2 the pixel budget each`);
    const metrics = (await app.inject('/metrics')).body;
    const num = (re: RegExp) => Number(metrics.match(re)?.[1]);
    const total = num(/^normgen_batch_size_count\{model="colorize-pono-auto"\} (\d+)/m);
    const upTo2 = num(/^normgen_batch_size_bucket\{le="2",model="colorize-pono-auto"\} (\d+)/m);
    assert.ok(total >= runs && upTo2 === total, `every pass held at most 2 images: ${upTo2} of ${total}`);
  });

  test('a full queue answers 503 problem+json with Retry-After; the server keeps serving', async () => {
    const app = await start({ MODELS_DIR: await colorizerWith({ max_batch_size: 1, max_queue: 2 }) });
    const imgs = await crops();
    const res = await Promise.all(imgs.map((i) => translate(app, i)));
    const codes = res.map((r) => r.statusCode);
    assert.ok(codes.includes(503), `codes ${codes}`);
    assert.ok(codes.includes(200), `codes ${codes}`);
    const full = res.find((r) => r.statusCode === 503)!;
    assert.match(String(full.headers['content-type']), /problem\+json/);
    assert.match(String(full.headers['retry-after']), /^\d+$/);
    assert.match(full.json().type, /queue-full$/);
    assert.equal((await translate(app, imgs[0]!)).statusCode, 200);
  });

  test('a request still queued at its deadline answers 504', async () => {
    const app = await start({ MODELS_DIR: await colorizerWith({ max_batch_size: 1, timeout_ms: 1 }) });
    const imgs = await crops();
    const res = await Promise.all(imgs.map((i) => translate(app, i)));
    const codes = res.map((r) => r.statusCode);
    assert.ok(codes.includes(504), `codes ${codes}`);
    const late = res.find((r) => r.statusCode === 504)!;
    assert.match(late.json().type, /queue-timeout$/);
    assert.match(String(late.headers['retry-after']), /^[1-9]\d*$/);
  });

  test('overload is shed at once: 503 with Retry-After from the expected wait, not 504 after the deadline', async () => {
    const app = await start({ MODELS_DIR: await colorizerWith({ max_batch_size: 1, max_queue: 64, timeout_ms: 4000 }) });
    // 512²: 30 passes take well past the 4 s deadline (at 256² colorize-pono-auto 2.1.1 runs them all in ~2 s)
    const photo = await sharp(await grayPhoto()).resize(512, 512, { fit: 'fill' }).png().toBuffer();
    assert.equal((await translate(app, photo)).statusCode, 200); // times one pass: the batcher now knows its cost
    const batcher = app.models.get('colorize-pono-auto')!.batcher!;
    assert.ok(batcher.msPerMp! > 0);
    const t0 = performance.now();
    const res = await Promise.all(Array.from({ length: 30 }, () => translate(app, photo).then((r) => ({ r, ms: performance.now() - t0 }))));
    const codes = res.map((x) => x.r.statusCode);
    const shed = res.filter((x) => x.r.statusCode === 503);
    assert.ok(codes.filter((c) => c === 200).length >= 2, `codes ${codes}`);
    assert.ok(shed.length >= 10, `codes ${codes}`);
    assert.ok(codes.filter((c) => c === 504).length <= 3, `codes ${codes}`);
    for (const { r } of shed) {
      assert.match(r.json().type, /queue-full$/);
      assert.ok(Number(r.headers['retry-after']) >= 1, String(r.headers['retry-after']));
    }
    // the shed requests were answered before the queue drained
    const lastOk = Math.max(...res.filter((x) => x.r.statusCode === 200).map((x) => x.ms));
    assert.ok(Math.min(...shed.map((x) => x.ms)) < lastOk);
    assert.ok(batcher.shed >= shed.length);
  });
});

describe('batches stay on the arena session (issue 32)', () => {
  test('batchingOf caps a batch at ARENA_MAX_PIXELS; 0 (always the arena) leaves the manifest\'s cap', async () => {
    const { batchingOf } = await import('../src/models/repository.js');
    const { DEFAULT_BATCHING } = await import('../src/inference/batcher.js');
    const manifest = JSON.parse(await readFile(path.join(repoRoot, 'models', 'colorize-pono-auto', 'manifest.json'), 'utf8'));
    assert.equal(batchingOf(manifest, true, 512 * 512).maxBatchPixels, Math.min(DEFAULT_BATCHING.maxBatchPixels, 512 * 512));
    assert.equal(batchingOf(manifest, true, 0).maxBatchPixels, DEFAULT_BATCHING.maxBatchPixels);
    const own = { ...manifest, serving: { ...manifest.serving, batching: { max_batch_pixels: 100_000 } } };
    assert.equal(batchingOf(own, true, 512 * 512).maxBatchPixels, 100_000);
  });
});

describe('a batch of one is not copied (issue 32)', () => {
  test('a lone request\'s tensor goes to the worker as it is (transferred); batched requests are concatenated copies with the same outputs', async () => {
    const { InferencePool } = await import('../src/inference/pool.js');
    const { Batcher, DEFAULT_BATCHING } = await import('../src/inference/batcher.js');
    const pool = new InferencePool(1, 1);
    try {
      await pool.load('c', path.join(repoRoot, 'models', 'colorize-pono-auto', 'model.onnx'));
      const batcher = new Batcher(pool, 'c', undefined, { ...DEFAULT_BATCHING, maxQueueDelayMs: 50 }, 1);
      const gray = (v: number) => ({ data: new Float32Array(32 * 32).map((_, i) => Math.sin(i * v) * 0.8), dims: [1, 1, 32, 32] });
      const lone = gray(0.1);
      const alone = await batcher.run({ gray: lone });
      assert.equal(lone.data.length, 0, 'the lone request\'s buffer was transferred, not copied');
      assert.equal(alone.batchSize, 1);
      assert.equal(alone.data.length, 3 * 32 * 32);
      // three at once: the first runs alone (nothing was running), the next two wait and share a pass
      const [a, b, c] = [gray(0.1), gray(0.2), gray(0.3)];
      const [ra, rb, rc] = await Promise.all([batcher.run({ gray: a }), batcher.run({ gray: b }), batcher.run({ gray: c })]);
      assert.equal(ra.batchSize, 1);
      assert.equal(rb.batchSize, 2);
      assert.equal(b.data.length, 32 * 32, 'a batched request\'s own buffer stays (its rows were copied into the batch)');
      assert.equal(c.data.length, 32 * 32);
      assert.deepEqual(Array.from(ra.data), Array.from(alone.data), 'same input, same output, alone or not');
      const rerun = await batcher.run({ gray: gray(0.3) });
      assert.equal(rerun.batchSize, 1);
      // a request's slice of a batch = its lone run (float32; onnxruntime may split the batch's work differently)
      assert.ok(rc.data.every((v, i) => Math.abs(v - rerun.data[i]!) < 1e-5), 'batched slice vs lone run');
      assert.equal(rc.data.length, 3 * 32 * 32);
    } finally {
      await pool.close();
    }
  });
});

describe('the large-pass session is opened at load (issue 44: the first large photo)', () => {
  test('a model whose passes can exceed ARENA_MAX_PIXELS gets its arena-less twin at load, warmed; a bounded one does not, and large passes still run', async () => {
    const { largestPassPixels } = await import('../src/models/repository.js');
    const manifest = async (name: string) => JSON.parse(await readFile(path.join(repoRoot, 'models', name, 'manifest.json'), 'utf8'));
    const inpaint = await manifest('inpaint-an'), colorize = await manifest('colorize-pono'), upscale = await manifest('upscale-pono');
    const auto = await manifest('colorize-pono-auto'), fashion = await manifest('fashion-an');
    assert.equal(largestPassPixels(inpaint), inpaint.serving.working_max_side ** 2);
    assert.equal(largestPassPixels(colorize), colorize.serving.working_max_side ** 2);
    assert.equal(largestPassPixels(upscale), upscale.serving.tile ** 2);
    assert.equal(largestPassPixels(auto), Infinity, 'no working size: nothing bounds the pass');
    assert.equal(largestPassPixels(fashion), 0, 'class and noise vectors');
    const { InferencePool } = await import('../src/inference/pool.js');
    const pool = new InferencePool(1, 1, undefined, 64 * 64);
    try {
      const onnx = path.join(repoRoot, 'models', 'colorize-pono-auto', 'model.onnx');
      const warm = { gray: { data: new Float32Array(32 * 32), dims: [1, 1, 32, 32] } };
      assert.equal((await pool.load('big', onnx, warm, 1, 128 * 128)).largeTwin, true);
      assert.equal((await pool.load('small', onnx, warm, 1, 64 * 64)).largeTwin, false);
      const x = () => ({ gray: { data: new Float32Array(96 * 96).map((_, i) => Math.sin(i * 0.01)), dims: [1, 1, 96, 96] } });
      const [big, small] = [await pool.run('big', x()), await pool.run('small', x())];
      assert.deepEqual(Array.from(big.data), Array.from(small.data), 'the twin opened at load and the one opened on first use give the same pass');
    } finally {
      await pool.close();
    }
  });
});
