/**
 * ONNX parity: onnxruntime-node on each exported model reproduces PyTorch's output for its
 * committed fixture (real photo crops; e.g. the colorizer's luma at batch 2, 48×60, the inpainter's
 * RGB crop + seeded mask at 64×80: dynamic batch/height/width) within 1e-4. A fixture has one
 * `input` or several `inputs` (name, dims, file of little-endian float32).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { repoRoot } from './helper.js';

async function f32(file: string): Promise<Float32Array> {
  const b = await readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const modelsDir = path.join(repoRoot, 'models');
for (const name of (await readdir(modelsDir)).sort()) {
  const fixtureDir = path.join(modelsDir, name, 'fixture');
  type TensorFile = { name: string; dims: number[]; file: string };
  let fixture: { input?: TensorFile; inputs?: TensorFile[]; output: { name: string; dims: number[]; file: string }; tolerance_max_abs: number; tolerance_reason?: string };
  try {
    fixture = JSON.parse(await readFile(path.join(fixtureDir, 'fixture.json'), 'utf8'));
  } catch {
    continue;
  }
  test(`${name}: onnxruntime-node matches PyTorch to ≤ ${fixture.tolerance_max_abs} max abs diff`, async () => {
    // 1e-4 for a plain forward pass; an iterative solve in the graph (colorize-pono's) may say why it needs up to 1e-3
    assert.ok(fixture.tolerance_max_abs <= (fixture.tolerance_reason ? 1e-3 : 1e-4), `tolerance ${fixture.tolerance_max_abs}`);
    const manifest = JSON.parse(await readFile(path.join(modelsDir, name, 'manifest.json'), 'utf8'));
    const session = await ort.InferenceSession.create(path.join(modelsDir, name, manifest.onnx.file));
    const inputs = fixture.inputs ?? (fixture.input ? [fixture.input] : []);
    assert.deepEqual(inputs.map((i) => i.name).sort(), [...session.inputNames].sort());
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of inputs) feeds[i.name] = new ort.Tensor('float32', await f32(path.join(fixtureDir, i.file)), i.dims);
    const expected = await f32(path.join(fixtureDir, fixture.output.file));
    const out = await session.run(feeds);
    const got = out[fixture.output.name]!;
    assert.deepEqual([...got.dims], fixture.output.dims);
    const data = got.data as Float32Array;
    let maxAbs = 0;
    for (let i = 0; i < expected.length; i++) maxAbs = Math.max(maxAbs, Math.abs(data[i]! - expected[i]!));
    assert.ok(maxAbs <= fixture.tolerance_max_abs, `max abs diff ${maxAbs}`);
    // The fixture is not trivial: PyTorch's output varies (a constant output would make parity vacuous).
    let min = Infinity, max = -Infinity;
    for (const v of expected) { min = Math.min(min, v); max = Math.max(max, v); }
    assert.ok(max - min > 0.5);
    await session.release();
  });
}

// PONO-DMS (the PONO paper's Dynamic Moment Shortcut; no bundled model uses it yet): a seeded random upscaler with
// multi-channel DMS, exported by the trainer (python3 -m trainer.tests.upscale.dms_fixture), and PyTorch's output.
test('PONO-DMS graph (test/fixtures/pono-dms): onnxruntime-node matches PyTorch to ≤ 1e-4', async () => {
  const dir = path.join(repoRoot, 'test', 'fixtures', 'pono-dms');
  const fx = JSON.parse(await readFile(path.join(dir, 'fixture.json'), 'utf8')) as { model: string; input: { name: string; dims: number[]; file: string }; output: { name: string; dims: number[]; file: string }; tolerance_max_abs: number };
  const session = await ort.InferenceSession.create(path.join(dir, fx.model));
  const out = await session.run({ [fx.input.name]: new ort.Tensor('float32', await f32(path.join(dir, fx.input.file)), fx.input.dims) });
  const got = out[fx.output.name]!;
  assert.deepEqual([...got.dims], fx.output.dims);
  const expected = await f32(path.join(dir, fx.output.file));
  const data = got.data as Float32Array;
  let maxAbs = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(data[i]! - expected[i]!));
    min = Math.min(min, expected[i]!); max = Math.max(max, expected[i]!);
  }
  assert.ok(maxAbs <= fx.tolerance_max_abs, `max abs diff ${maxAbs}`);
  assert.ok(max - min > 0.5, 'a fixture whose output varies');
  await session.release();
});
