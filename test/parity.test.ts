/**
 * ONNX parity: onnxruntime-node on the exported model reproduces PyTorch's output for the
 * committed fixture (a real photo's luma, batch 2, 48×60: dynamic batch/height/width) within 1e-4.
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
  let fixture: { input: { name: string; dims: number[]; file: string }; output: { name: string; dims: number[]; file: string }; tolerance_max_abs: number };
  try {
    fixture = JSON.parse(await readFile(path.join(fixtureDir, 'fixture.json'), 'utf8'));
  } catch {
    continue;
  }
  test(`${name}: onnxruntime-node matches PyTorch to ≤ ${fixture.tolerance_max_abs} max abs diff`, async () => {
    assert.ok(fixture.tolerance_max_abs <= 1e-4);
    const manifest = JSON.parse(await readFile(path.join(modelsDir, name, 'manifest.json'), 'utf8'));
    const session = await ort.InferenceSession.create(path.join(modelsDir, name, manifest.onnx.file));
    const input = await f32(path.join(fixtureDir, fixture.input.file));
    const expected = await f32(path.join(fixtureDir, fixture.output.file));
    const out = await session.run({ [fixture.input.name]: new ort.Tensor('float32', input, fixture.input.dims) });
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
