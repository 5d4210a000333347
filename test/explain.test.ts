/**
 * Issue 34, "see what the network sees": each bundled model's `explain.onnx` and `POST /v1/explain`.
 *
 * Graph level (onnxruntime-node directly, on each model's committed parity fixture):
 * - the explain graph carries the model's own nodes and weights: its first output equals `model.onnx`'s
 *   (≤ 1e-6), its checksum is the manifest's and `model_sha256` names that `model.onnx`;
 * - PONO maps are what they say: `mu` = the channel mean of that layer's activations (`pono{k}_x`), `sigma` =
 *   sqrt(biased variance + 1e-5), at 1e-4; AN layouts are soft assignments (≥ 0, summing to 1 over the
 *   entities);
 * - PyTorch parity where the exported checkpoint is at hand (`fixture/explain.json`, written by
 *   `python3 -m trainer explain fixture` with forward hooks): every map within 1e-4.
 * Route level (the real app): every model with maps answers with the layers' maps at their sizes, the same
 * input gives the same maps, the contact sheet is an image, a model without PONO or AN layers is 422, and
 * the explain graph is not opened until asked (the task routes never run it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, maskPng, multipart, repoRoot } from './helper.js';
import { gridSamplingPoints, heatmap, layoutImage, viridis } from '../src/imaging/explain.js';

const modelsDir = path.join(repoRoot, 'models');
async function f32(file: string): Promise<Float32Array> {
  const b = await readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
type TensorFile = { name: string; dims: number[]; file: string };

for (const name of (await readdir(modelsDir)).sort()) {
  const dir = path.join(modelsDir, name);
  if (!existsSync(path.join(dir, 'manifest.json'))) continue;
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
  if (!manifest.explain) continue;
  describe(`${name}: explain.onnx`, () => {
    test('same weights as model.onnx; PONO mu/sigma are the channel mean / std of the layer; AN layouts are soft assignments; PyTorch parity', async () => {
      const { createHash } = await import('node:crypto');
      const bytes = await readFile(path.join(dir, manifest.explain.file));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), manifest.explain.sha256);
      assert.equal(manifest.explain.model_sha256, manifest.onnx.sha256);
      const fixture = JSON.parse(await readFile(path.join(dir, 'fixture', 'fixture.json'), 'utf8'));
      const inputs: TensorFile[] = fixture.inputs ?? [fixture.input];
      const feeds = async () => {
        const f: Record<string, ort.Tensor> = {};
        for (const i of inputs) f[i.name] = new ort.Tensor('float32', await f32(path.join(dir, 'fixture', i.file)), i.dims);
        return f;
      };
      const main = await ort.InferenceSession.create(path.join(dir, manifest.onnx.file));
      const ex = await ort.InferenceSession.create(path.join(dir, manifest.explain.file));
      const outName = manifest.outputs[0].name;
      const a = (await main.run(await feeds()))[outName]!.data as Float32Array;
      const parity: string[] = manifest.explain.parity_outputs ?? [];
      const mapNames: string[] = manifest.explain.maps.map((m: { output: string }) => m.output);
      const out = await ex.run(await feeds(), [outName, ...mapNames, ...parity]);
      const b = out[outName]!.data as Float32Array;
      let d = 0;
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
      assert.ok(d <= 1e-6, `explain graph output differs from model.onnx by ${d}`);
      for (const xName of parity) {
        const k = xName.replace(/_x$/, '');
        const x = out[xName]!, mu = out[`${k}_mu`]!, sigma = out[`${k}_sigma`]!;
        const [B, C, h, w] = x.dims as number[];
        assert.deepEqual([...mu.dims], [B, 1, h, w]);
        assert.deepEqual([...sigma.dims], [B, 1, h, w]);
        const xs = x.data as Float32Array, ms = mu.data as Float32Array, ss = sigma.data as Float32Array;
        let worst = 0;
        for (let n = 0; n < B!; n++) for (let p = 0; p < h! * w!; p++) {
          let s = 0, s2 = 0;
          for (let c = 0; c < C!; c++) s += xs[(n * C! + c) * h! * w! + p]!;
          const m = s / C!;
          for (let c = 0; c < C!; c++) s2 += (xs[(n * C! + c) * h! * w! + p]! - m) ** 2;
          worst = Math.max(worst, Math.abs(ms[n * h! * w! + p]! - m), Math.abs(ss[n * h! * w! + p]! - Math.sqrt(s2 / C! + 1e-5)));
        }
        assert.ok(worst <= 1e-4, `${k}: mu/sigma differ from the activations' channel mean/std by ${worst}`);
      }
      for (const m of manifest.explain.maps.filter((m: { kind: string }) => m.kind === 'an_layout')) {
        const t = out[m.output]!;
        const [B, K, h, w] = t.dims as number[];
        assert.equal(K, m.entities);
        const s = t.data as Float32Array;
        for (let n = 0; n < B!; n++) for (let p = 0; p < h! * w!; p += 7) {
          let sum = 0;
          for (let k = 0; k < K!; k++) { const v = s[(n * K! + k) * h! * w! + p]!; assert.ok(v >= 0); sum += v; }
          assert.ok(Math.abs(sum - 1) < 1e-4, `layout sums to ${sum}`);
        }
      }
      const pyPath = path.join(dir, 'fixture', 'explain.json');
      if (existsSync(pyPath)) {
        const py = JSON.parse(await readFile(pyPath, 'utf8')) as { outputs: TensorFile[]; tolerance_max_abs: number };
        assert.ok(py.tolerance_max_abs <= 1e-4);
        assert.deepEqual(py.outputs.map((o) => o.name).sort(), [...mapNames].sort());
        for (const o of py.outputs) {
          const want = await f32(path.join(dir, 'fixture', o.file));
          const got = out[o.name]!;
          assert.deepEqual([...got.dims], o.dims);
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs((got.data as Float32Array)[i]! - want[i]!));
          assert.ok(worst <= py.tolerance_max_abs, `${o.name}: onnxruntime vs PyTorch ${worst}`);
        }
      }
      await main.release();
      await ex.release();
    });
  });
}

describe('POST /v1/explain', () => {
  let app: FastifyInstance;
  let photo: Buffer;
  before(async () => { app = await buildReadyApp(); photo = await colourPhoto(); });
  after(async () => app.close());

  const post = (model: string, files: Record<string, { data: Buffer; type: string }>, fields: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/explain', ...multipart(files, { model, ...fields }) });

  test('the explain graph is opened on the first request, not at start; the task routes do not open it', async () => {
    const entry = app.models.get('colorize-pono-auto')!;
    assert.equal(entry.explainLoad, undefined);
    const t = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: photo, type: 'image/jpeg' } }) });
    assert.equal(t.statusCode, 200);
    assert.equal(entry.explainLoad, undefined);
    const res = await post('colorize-pono-auto', { image: { data: photo, type: 'image/jpeg' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(entry.explainLoad);
  });

  test('a translator: PONO mu and sigma of each PONO layer, at H/2 and H/4 of the input, as PNG heatmaps; same input, same maps', async () => {
    const res = await post('colorize-pono-auto', { image: { data: photo, type: 'image/jpeg' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['x-model']), /^colorize-pono-auto@/);
    const doc = res.json();
    assert.deepEqual([doc.width, doc.height], [320, 213]);
    assert.deepEqual(doc.maps.map((m: { kind: string }) => m.kind), ['pono_mu', 'pono_sigma', 'pono_mu', 'pono_sigma']);
    const padded = [320, 216]; // the model's size multiple (4)
    for (const [i, m] of doc.maps.entries()) {
      const f = i < 2 ? 2 : 4;
      assert.deepEqual([m.width, m.height], [padded[0]! / f, padded[1]! / f]);
      const meta = await sharp(Buffer.from(m.b64_png, 'base64')).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['png', m.width, m.height]);
      assert.ok(m.range[1] > m.range[0]);
      if (m.kind === 'pono_sigma') assert.ok(m.range[0] > 0);
    }
    const again = await post('colorize-pono-auto', { image: { data: photo, type: 'image/jpeg' } });
    assert.equal(again.body, res.body);
  });

  test('the inpainter: its AN layout over the input, with the entities\' shares; the generator: layout + grid sampling points', async () => {
    const mask = await maskPng(320, 213, [[100, 80, 60, 40, 255]]);
    const res = await post('inpaint-an', { image: { data: photo, type: 'image/jpeg' }, mask: { data: mask, type: 'image/png' } });
    assert.equal(res.statusCode, 200, res.body);
    const [lay] = res.json().maps;
    assert.equal(lay.kind, 'an_layout');
    assert.equal(lay.shares.length, 16);
    assert.ok(Math.abs(lay.shares.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-3);
    assert.ok(lay.regions >= 1 && lay.regions <= 16);
    const gen = await app.inject({ method: 'POST', url: '/v1/explain', payload: { model: 'fashion-an', class: 'Sneaker', seed: 3 } });
    assert.equal(gen.statusCode, 200, gen.body);
    const kinds = gen.json().maps.map((m: { kind: string }) => m.kind);
    assert.deepEqual(kinds, ['an_layout', 'an_sampling']);
    const s = gen.json().maps[1];
    const l = gen.json().maps[0];
    assert.deepEqual(s.points, gridSamplingPoints(l.height, l.width, 16));
    assert.deepEqual([s.width, s.height], [l.width * s.scale, l.height * s.scale]);
    assert.equal(gen.json().seed, 3);
  });

  test('output_format gives one contact sheet; a model without PONO or AN layers is 422; missing inputs are 400; unknown model 404', async () => {
    const sheet = await post('colorize-pono-auto', { image: { data: photo, type: 'image/jpeg' } }, { output_format: 'png' });
    assert.equal(sheet.statusCode, 200);
    assert.equal(sheet.headers['content-type'], 'image/png');
    const meta = await sharp(sheet.rawPayload).metadata();
    assert.ok(meta.width! > 300);
    const problem = (r: Awaited<ReturnType<typeof post>>, status: number, slug: string) => {
      assert.equal(r.statusCode, status, r.body);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      assert.match(r.json().type, new RegExp(`${slug}$`));
    };
    problem(await app.inject({ method: 'POST', url: '/v1/explain', payload: { model: 'fashion-noan', class: 1 } }), 422, 'no-maps');
    problem(await post('colorize-pono-auto', {}), 400, 'missing-image');
    problem(await post('inpaint-an', { image: { data: photo, type: 'image/jpeg' } }), 400, 'missing-mask');
    problem(await app.inject({ method: 'POST', url: '/v1/explain', payload: { model: 'fashion-an' } }), 400, 'missing-class');
    problem(await app.inject({ method: 'POST', url: '/v1/explain', payload: { image: photo.toString('base64') } }), 400, 'missing-model');
    problem(await post('nope', { image: { data: photo, type: 'image/jpeg' } }), 404, 'unknown-model');
    problem(await post('colorize-pono-auto', { image: { data: photo, type: 'image/jpeg' } }, { output_format: 'gif' }), 422, 'invalid-field');
  });
});

describe('explain pictures', () => {
  test('viridis runs dark purple → yellow; a heatmap is min–max scaled; a layout colours the winning entity', () => {
    assert.deepEqual(viridis(0), [68, 1, 84]);
    assert.deepEqual(viridis(1), [253, 231, 37]);
    const hm = heatmap(new Float32Array([2, 4, 6, 8]), [1, 1, 2, 2]);
    assert.deepEqual(hm.range, [2, 8]);
    assert.deepEqual([...hm.image.data.subarray(0, 3)], viridis(0));
    assert.deepEqual([...hm.image.data.subarray(9, 12)], viridis(1));
    // 2 entities on 1 x 2 positions: entity 1 wins the first, entity 0 the second
    const lay = layoutImage(new Float32Array([0.2, 0.9, 0.8, 0.1]), [1, 2, 1, 2]);
    assert.deepEqual(lay.shares, [0.5, 0.5]);
    assert.equal(lay.regions, 2);
    assert.notDeepEqual([...lay.image.data.subarray(0, 3)], [...lay.image.data.subarray(3, 6)]);
  });

  test('grid sampling points: n evenly spaced flat indices of the 2 × 2 pooled map, first and last pooled cells included', () => {
    const pts = gridSamplingPoints(28, 28, 16);
    assert.equal(pts.length, 16);
    assert.deepEqual(pts[0], [0.5, 0.5]);
    assert.deepEqual(pts[15], [26.5, 26.5]);
    for (const [x, y] of pts) assert.ok(x >= 0 && x < 28 && y >= 0 && y < 28);
  });
});

test('each map says what it shows in words (caption), and the contact sheet is labelled with them', async () => {
  const { buildReadyApp } = await import('./helper.js');
  const app = await buildReadyApp({ MODELS: 'fashion-an' });
  try {
    const res = await app.inject({ method: 'POST', url: '/v1/explain', payload: { model: 'fashion-an', class: 'Bag', seed: 1 } });
    assert.equal(res.statusCode, 200, res.body.slice(0, 200));
    const maps = res.json().maps as { kind: string; layer: string; caption: string }[];
    assert.ok(maps.length > 0);
    for (const m of maps) {
      assert.match(m.caption, m.kind.startsWith('an_') ? /Attentive Normalization/ : /PONO/);
      assert.ok(m.caption.includes(m.layer), m.caption);
    }
  } finally {
    await app.close();
  }
});
