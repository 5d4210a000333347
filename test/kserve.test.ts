/**
 * KServe v2 / Open Inference Protocol routes, with requests written by hand from the protocol's spec:
 * health, model metadata and readiness, and inference in FP32 (checked against the PyTorch parity
 * fixture) and UINT8, plus the protocol's `{ error }` replies for bad requests.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, repoRoot } from './helper.js';

let app: FastifyInstance;
before(async () => { app = await buildReadyApp({ MODELS: 'colorize-pono-auto' }); }); // the single-input colorizer, opened at start
after(async () => app.close());

async function f32(file: string): Promise<number[]> {
  const b = await readFile(file);
  return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

describe('KServe v2 protocol', () => {
  test('health and model metadata/readiness', async () => {
    assert.deepEqual((await app.inject('/v2/health/live')).json(), { live: true });
    assert.deepEqual((await app.inject('/v2/health/ready')).json(), { ready: true });
    const meta = await app.inject('/v2/models/colorize-pono-auto');
    assert.equal(meta.statusCode, 200);
    const m = meta.json();
    assert.equal(m.name, 'colorize-pono-auto');
    assert.equal(m.platform, 'onnxruntime_onnx');
    assert.deepEqual(m.inputs, [{ name: 'gray', datatype: 'FP32', shape: [-1, 1, -1, -1] }]);
    assert.deepEqual(m.outputs[0], { name: 'rgb', datatype: 'FP32', shape: [-1, 3, -1, -1] });
    // issue 34: the explain maps are listed as further outputs
    assert.deepEqual(m.outputs.slice(1).map((o: { name: string }) => o.name), ['pono1_mu', 'pono1_sigma', 'pono2_mu', 'pono2_sigma']);
    assert.deepEqual((await app.inject('/v2/models/colorize-pono-auto/ready')).json(), { name: 'colorize-pono-auto', ready: true });
    const missing = await app.inject('/v2/models/nope');
    assert.equal(missing.statusCode, 404);
    assert.match(missing.json().error, /unknown model/);
  });

  test('FP32 inference reproduces the PyTorch fixture', async () => {
    const dir = path.join(repoRoot, 'models', 'colorize-pono-auto', 'fixture');
    const fx = JSON.parse(await readFile(path.join(dir, 'fixture.json'), 'utf8'));
    const body = { id: 'req-1', inputs: [{ name: 'gray', shape: fx.input.dims, datatype: 'FP32', data: await f32(path.join(dir, fx.input.file)) }] };
    const res = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: body });
    assert.equal(res.statusCode, 200, res.body);
    const r = res.json();
    assert.equal(r.model_name, 'colorize-pono-auto');
    assert.equal(r.id, 'req-1');
    assert.equal(r.outputs[0].name, 'rgb');
    assert.equal(r.outputs[0].datatype, 'FP32');
    assert.deepEqual(r.outputs[0].shape, fx.output.dims);
    const want = await f32(path.join(dir, fx.output.file));
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(r.outputs[0].data[i] - want[i]!));
    assert.ok(max <= 1e-4, `max abs diff ${max}`);
  });

  test('UINT8 inputs map to the declared range: a UINT8 one-hot y equals the FP32 one', async () => {
    const z = Array.from({ length: 2 * 128 }, (_, i) => Math.sin(i));
    const yF = [[0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]];
    const yU = yF.map((row) => row.map((v) => v * 255));
    const run = (y: number[][], datatype: string) => app.inject({
      method: 'POST', url: '/v2/models/fashion-an/infer',
      payload: { inputs: [{ name: 'z', shape: [2, 128], datatype: 'FP32', data: z }, { name: 'y', shape: [2, 10], datatype, data: y }] },
    });
    const a = await run(yF, 'FP32');
    const b = await run(yU, 'UINT8');
    assert.equal(a.statusCode, 200, a.body);
    assert.deepEqual(a.json().outputs[0].shape, [2, 1, 28, 28]);
    assert.deepEqual(a.json().outputs[0].data, b.json().outputs[0].data);
  });

  test('explain outputs by name (issue 34): PONO mu of the fixture at H/2, equal to the channel mean the explain graph reports; unknown output 400', async () => {
    const dir = path.join(repoRoot, 'models', 'colorize-pono-auto', 'fixture');
    const fx = JSON.parse(await readFile(path.join(dir, 'fixture.json'), 'utf8'));
    const body = { inputs: [{ name: 'gray', shape: fx.input.dims, datatype: 'FP32', data: await f32(path.join(dir, fx.input.file)) }], outputs: [{ name: 'rgb' }, { name: 'pono1_mu' }] };
    const res = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: body });
    assert.equal(res.statusCode, 200, res.body);
    const [rgb, mu] = res.json().outputs;
    assert.deepEqual(rgb.shape, fx.output.dims);
    const want = await f32(path.join(dir, fx.output.file));
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(rgb.data[i] - want[i]!));
    assert.ok(max <= 1e-4, `rgb through the explain graph: max abs diff ${max}`);
    assert.equal(mu.name, 'pono1_mu');
    assert.deepEqual(mu.shape, [fx.input.dims[0], 1, fx.input.dims[2] / 2, fx.input.dims[3] / 2]);
    assert.ok(Math.max(...mu.data) > Math.min(...mu.data));
    const bad = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: { ...body, outputs: [{ name: 'pono9_mu' }] } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().error, /not served/);
  });

  test('bad requests get 400 with { error }', async () => {
    const post = (payload: unknown) => app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: payload as object });
    const cases: [unknown, RegExp][] = [
      [{ inputs: [{ name: 'gray', shape: [1, 3, 8, 8], datatype: 'FP32', data: new Array(192).fill(0) }] }, /does not match/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: [1, 2] }] }, /2 values/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'INT64', data: new Array(64).fill(0) }] }, /not supported/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 6, 8], datatype: 'FP32', data: new Array(48).fill(0) }] }, /multiples of 4/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'UINT8', data: new Array(64).fill(300) }] }, /0-255/],
      [{ inputs: [] }, /non-empty array/],
      [{ nothing: true }, /inputs/],
    ];
    for (const [payload, pattern] of cases) {
      const r = await post(payload);
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.json().error, pattern);
    }
  });

  test('limits (issue 28): declared size checked before data, float32 overflow, deep nesting, envelope, body size', async () => {
    const post = (payload: unknown) => app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: payload as object });
    const cases: [unknown, RegExp][] = [
      // 3072² declared: refused from the shape, before the (absent) data is read
      [{ inputs: [{ name: 'gray', shape: [1, 1, 3072, 3072], datatype: 'FP32', data: [] }] }, /KSERVE_MAX_PIXELS/],
      [{ inputs: [{ name: 'gray', shape: [2, 1, 256, 256], datatype: 'FP32', data: [] }] }, /KSERVE_MAX_PIXELS/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: [1e39, ...new Array(63).fill(0)] }] }, /overflows float32/],
      // (8×8: the smallest size the model takes; a 4×4 is refused from its shape first)
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: [[Array.from({ length: 8 }, (_, r) => (r === 7 ? [[0], 0, 0, 0, 0, 0, 0, 0] : new Array(8).fill(0)))]] }] }, /nested deeper/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: new Array(65).fill(0) }] }, /more values than/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: new Array(64).fill(0) }], outputs: 5 }, /`outputs` must be an array/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: new Array(64).fill(0) }], outputs: [7] }, /each output/],
      [{ inputs: [null] }, /each input must be an object/],
      [{ inputs: [{ name: 'gray', shape: [1, 1, 8, 8], datatype: 'FP32', data: new Array(64).fill(0) }], id: { x: 1 } }, /`id` must be a string/],
    ];
    for (const [payload, pattern] of cases) {
      const r = await post(payload);
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.json().error, pattern);
      assert.doesNotMatch(r.json().error, /is not a function|call stack|undefined|TypeError/);
    }
    // 200,000-deep nesting: a clean 400, no stack overflow
    const deep = `{"inputs":[{"name":"gray","shape":[1,1,8,8],"datatype":"FP32","data":${'['.repeat(200_000)}${']'.repeat(200_000)}}]}`;
    const d = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: deep, headers: { 'content-type': 'application/json' } });
    assert.equal(d.statusCode, 400, d.body.slice(0, 200));
    assert.doesNotMatch(d.body, /call stack/);
    // a body over the route's limit (4 M values of a 2048² tensor) is 413 before it is parsed
    const big = `{"inputs":[{"name":"gray","shape":[1,1,2048,2048],"datatype":"FP32","data":[${'0,'.repeat(4_000_000)}0]}]}`;
    const b = await app.inject({ method: 'POST', url: '/v2/models/colorize-pono-auto/infer', payload: big, headers: { 'content-type': 'application/json' } });
    assert.equal(b.statusCode, 413);
  });
});
