/** Config validation and the uint8 ⇄ NCHW float32 tensor conversions. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config.js';
import { fromNCHW, toNCHW } from '../src/imaging/tensor.js';

describe('config', () => {
  test('defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.maxPixels, 2048 * 2048);
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
  test('fromNCHW clamps out-of-range values and picks the batch item', () => {
    const d = new Float32Array([5, -5, 0, 1, /* n=1 */ 0.5, 0.5, 0.5, 0.5]);
    assert.deepEqual([...fromNCHW(d, [2, 1, 2, 2], 0).data], [255, 0, 128, 255]);
    assert.deepEqual([...fromNCHW(d, [2, 1, 2, 2], 1).data], [191, 191, 191, 191]);
    assert.throws(() => fromNCHW(d, [2, 1, 2, 2], 2), RangeError);
  });
});
