/** Config validation, the uint8 ⇄ NCHW float32 tensor conversions, and the inpainting working-size rule. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config.js';
import { fromNCHW, maskToNCHW, toNCHW, toUint8 } from '../src/imaging/tensor.js';
import { holeFraction, pasteHole, workingCopy, workingSize } from '../src/imaging/mask.js';
import { quantile } from '../scripts/stats.js';

describe('config', () => {
  test('defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.maxPixels, 50_000_000);
    assert.equal(c.workers, 1);
  });
  test('every bad variable is named in one ConfigError', () => {
    assert.throws(() => loadConfig({ PORT: 'eighty', WORKERS: '0', MAX_PIXELS: '-5', LOG_LEVEL: 'loud' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const v of ['PORT', 'WORKERS', 'MAX_PIXELS', 'LOG_LEVEL']) assert.match(err.message, new RegExp(v));
      return true;
    });
  });
});

describe('tensor', () => {
  test('HWC uint8 → NCHW [-1, 1] → HWC uint8 is lossless and planar', () => {
    const data = Buffer.from([0, 10, 20, 127, 128, 129, 250, 254, 255, 1, 2, 3]); // 2×2×3
    const t = toNCHW({ data, width: 2, height: 2, channels: 3 });
    assert.deepEqual(t.dims, [1, 3, 2, 2]);
    assert.equal(t.data[0], -1); // pixel 0, channel 0
    assert.ok(Math.abs(t.data[4]! - (10 / 127.5 - 1)) < 1e-7); // channel 1 plane starts at 4
    const back = fromNCHW(t.data, t.dims);
    assert.deepEqual([...back.data], [...data]);
  });
  test('toUint8 rounds half up, clamps and maps NaN to 0, and fromNCHW quantizes exactly as it does', () => {
    assert.deepEqual([-1, 1, 0, -2, 2, NaN, -0.5, 0.5].map(toUint8), [0, 255, 128, 0, 255, 0, 64, 191]);
    const xs = Float32Array.from({ length: 4099 }, (_, i) => (i === 7 ? NaN : (i / 4098) * 2.2 - 1.1 + (i % 3) * 1e-7));
    assert.deepEqual([...fromNCHW(xs, [1, 1, 1, xs.length]).data], [...xs].map(toUint8));
  });
  test('fromNCHW clamps out-of-range values and picks the batch item', () => {
    const d = new Float32Array([5, -5, 0, 1, /* n=1 */ 0.5, 0.5, 0.5, 0.5]);
    assert.deepEqual([...fromNCHW(d, [2, 1, 2, 2], 0).data], [255, 0, 128, 255]);
    assert.deepEqual([...fromNCHW(d, [2, 1, 2, 2], 1).data], [191, 191, 191, 191]);
    assert.throws(() => fromNCHW(d, [2, 1, 2, 2], 2), RangeError);
  });
  test('fromNCHW rounds exactly as clamp(Math.round((x + 1) · 127.5)) at every rounding boundary; toNCHW as v / 127.5 − 1', () => {
    // the 129 float32 values around each boundary (q + 0.5) / 127.5 − 1, q = −2 … 257, plus the non-finite ones
    const vals: number[] = [NaN, Infinity, -Infinity, -0, 3e9, -3e9];
    const f = new Float32Array(1), bits = new Int32Array(f.buffer);
    for (let q = -2; q <= 257; q++) {
      f[0] = (q + 0.5) / 127.5 - 1;
      const b = bits[0]!;
      for (let d = -64; d <= 64; d++) { bits[0] = b + d; vals.push(f[0]!); }
    }
    const data = Float32Array.from(vals);
    const want = vals.map((x) => { const v = Math.round((Math.fround(x) + 1) * 127.5); return Number.isNaN(v) || v <= 0 ? 0 : v > 255 ? 255 : v; }); // (−0 → 0)
    assert.deepEqual([...fromNCHW(data, [1, 1, 1, data.length]).data], want);
    const rgb = Buffer.from(Array.from({ length: 3 * 256 }, (_, i) => (i * 37) % 256));
    const t = toNCHW({ data: rgb, width: 16, height: 16, channels: 3 });
    for (let i = 0; i < 256; i++) for (let k = 0; k < 3; k++) assert.equal(t.data[k * 256 + i], Math.fround(rgb[3 * i + k]! / 127.5 - 1));
    const gray = toNCHW({ data: rgb.subarray(0, 256), width: 16, height: 16, channels: 1 });
    assert.deepEqual([...gray.data], [...rgb.subarray(0, 256)].map((v) => Math.fround(v / 127.5 - 1)));
  });
});

describe('inpainting pixels', () => {
  test('holeFraction counts the 255 pixels; pasteHole takes exactly the hole from the generated (padded) image', async () => {
    const mask = { data: Buffer.from([0, 255, 255, 0, 0, 0]), width: 3, height: 2, channels: 1 as const };
    assert.equal(holeFraction(mask), 2 / 6);
    const rgb = { data: Buffer.from(Array.from({ length: 18 }, (_, i) => i)), width: 3, height: 2, channels: 3 as const };
    // generated at the model's padded size 4 x 2 (one extra column)
    const gen = { data: Buffer.from(Array.from({ length: 24 }, (_, i) => 100 + i)), width: 4, height: 2, channels: 3 as const };
    const out = await pasteHole(rgb, mask, gen, { width: 3, height: 2 });
    assert.deepEqual([...out.data], [0, 1, 2, 103, 104, 105, 106, 107, 108, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
  });
  test('pasteHole from the output tensor gives the same bytes as from its uint8 image, at the same size and reduced', async () => {
    const rnd = (n: number, seed: number) => { let x = seed; return Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)); };
    for (const [W, H, PW, PH, size] of [[37, 21, 40, 24, { width: 37, height: 21 }], [37, 21, 24, 16, { width: 22, height: 13 }]] as const) {
      const rgb = { data: Buffer.from(rnd(W * H * 3, 1).map((v) => Math.floor(v * 256))), width: W, height: H, channels: 3 as const };
      const mask = { data: Buffer.from(rnd(W * H, 2).map((v) => (v > 0.6 ? 255 : 0))), width: W, height: H, channels: 1 as const };
      // values beyond [-1, 1] and NaN too: the quantization clamps as fromNCHW does
      const t = { data: Float32Array.from(rnd(3 * PW * PH, 3).map((v, i) => (i % 97 === 0 ? NaN : v * 2.4 - 1.2))), dims: [1, 3, PH, PW] };
      const fromTensor = await pasteHole(rgb, mask, t, size);
      const fromImage = await pasteHole(rgb, mask, fromNCHW(t.data, t.dims), size);
      assert.ok(fromTensor.data.equals(fromImage.data), `${W}x${H} from ${PW}x${PH}`);
      for (let i = 0; i < W * H; i++) if (mask.data[i] === 0) assert.deepEqual([...fromTensor.data.subarray(3 * i, 3 * i + 3)], [...rgb.data.subarray(3 * i, 3 * i + 3)]);
    }
    await assert.rejects(pasteHole({ data: Buffer.alloc(12), width: 2, height: 2, channels: 3 }, { data: Buffer.alloc(4), width: 2, height: 2, channels: 1 }, { data: new Float32Array(4), dims: [1, 1, 2, 2] }, { width: 2, height: 2 }), RangeError);
  });
  test('maskToNCHW: > 127 is a hole (1), else 0; shape 1x1xHxW', () => {
    const t = maskToNCHW({ data: Buffer.from([0, 127, 128, 255, 200, 1]), width: 3, height: 2, channels: 1 });
    assert.deepEqual(t.dims, [1, 1, 2, 3]);
    assert.deepEqual([...t.data], [0, 0, 1, 1, 1, 0]);
    assert.throws(() => maskToNCHW({ data: Buffer.alloc(12), width: 2, height: 2, channels: 3 }), RangeError);
  });
  test('workingSize: longer side capped, aspect kept, small images untouched', () => {
    assert.deepEqual(workingSize(320, 213, 512), { width: 320, height: 213, scale: 1 });
    assert.deepEqual(workingSize(1280, 852, 512), { width: 512, height: 341, scale: 0.4 });
    assert.deepEqual(workingSize(300, 3000, 512), { width: 51, height: 512, scale: 512 / 3000 });
  });
  test('workingCopy: a reduced hole still covers every full-resolution hole pixel; padded to the multiple', async () => {
    const w = 101, h = 60;
    const rgb = { data: Buffer.alloc(w * h * 3, 90), width: w, height: h, channels: 3 };
    const mask = { data: Buffer.alloc(w * h, 0), width: w, height: h, channels: 1 };
    mask.data[30 * w + 50] = 255; // a single hole pixel
    const size = workingSize(w, h, 50);
    const wc = await workingCopy(rgb, mask, size, 4);
    assert.deepEqual([wc.image.width, wc.image.height, wc.mask.width, wc.mask.height], [52, 32, 52, 32]);
    assert.ok(wc.mask.data.some((v) => v === 255), 'the one-pixel hole vanished when reduced');
    assert.ok(wc.mask.data.every((v) => v === 0 || v === 255));
  });
});

describe('benchmark order statistics (scripts/stats.ts)', () => {
  test('quantile: median and p90 by rank floor(q·n), unsorted input left alone, bad input refused', () => {
    const xs = [5, 1, 4, 2, 3];
    assert.equal(quantile(xs, 0.5), 3);
    assert.deepEqual(xs, [5, 1, 4, 2, 3]);
    assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 10);
    assert.equal(quantile([4, 1, 3, 2], 0.5), 3);
    assert.equal(quantile([7], 1), 7);
    assert.throws(() => quantile([], 0.5), RangeError);
    assert.throws(() => quantile([1], 1.5), RangeError);
  });
});

describe('TensorBuffers (issue 32)', () => {
  test('take reuses a given-back buffer of the same size; bounds and detached buffers are refused', async () => {
    const { TensorBuffers } = await import('../src/inference/buffers.js');
    const tb = new TensorBuffers({ minBytes: 16, maxBytes: 64, perSize: 2, totalBytes: 100 });
    const a = tb.take(8); // 32 bytes, fresh
    assert.deepEqual(tb.stats, { reused: 0, fresh: 1 });
    assert.equal(tb.give(a.buffer as ArrayBuffer), true);
    assert.equal(tb.give(a.buffer as ArrayBuffer), false, 'the same buffer twice');
    assert.equal(tb.heldBytes, 32);
    const b = tb.take(8);
    assert.equal(b.buffer, a.buffer);
    assert.equal(tb.heldBytes, 0);
    assert.notEqual(tb.take(4).buffer, a.buffer, 'another size is fresh');
    assert.equal(tb.give(new ArrayBuffer(8)), false, 'below minBytes');
    assert.equal(tb.give(new ArrayBuffer(128)), false, 'above maxBytes');
    assert.equal(tb.give(new ArrayBuffer(48)), true);
    assert.equal(tb.give(new ArrayBuffer(48)), true);
    assert.equal(tb.give(new ArrayBuffer(48)), false, 'over totalBytes (and perSize)');
    const moved = new ArrayBuffer(32);
    structuredClone(moved, { transfer: [moved] }); // detached: byteLength 0
    assert.equal(tb.give(moved), false);
    assert.throws(() => tb.take(-1), RangeError);
    tb.clear();
    assert.equal(tb.heldBytes, 0);
  });
});
