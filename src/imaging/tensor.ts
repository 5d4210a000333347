/**
 * HWC uint8 ⇄ NCHW float32 conversions (the only place pixels become tensors and back).
 *
 * Value map: uint8 `v` ⇄ float `v / 127.5 − 1` in [−1, 1]; back with rounding and clamping,
 * `clamp(round((x + 1) · 127.5), 0, 255)` (the trainer's `to_u8`).
 */
import { tensorBuffers } from '../inference/buffers.js';
import type { RawImage } from './decode.js';

/** uint8 `v` → float32 `v / 127.5 − 1` (the same float32 values as computing it per pixel). */
const TO_FLOAT = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);

/**
 * Interleaved uint8 H x W x C → float32 NCHW 1 x C x H x W in [−1, 1] (a buffer of its own, safe to transfer;
 * recycled from earlier runs' inputs when one of the size is free: `inference/buffers.ts`).
 * @throws RangeError if `img.data.length !== width * height * channels`.
 */
export function toNCHW(img: RawImage): { data: Float32Array; dims: [number, number, number, number] } {
  const { width: w, height: h, channels: c } = img;
  if (img.data.length !== w * h * c) throw new RangeError(`raw image has ${img.data.length} bytes, expected ${w}×${h}×${c}`);
  const out = tensorBuffers.take(c * h * w); // every element is written below
  const plane = h * w;
  const d = img.data;
  if (c === 3) { // the common case, one pass (issue 32: the generic loop cost ~10 ms at 512²)
    for (let i = 0, j = 0; i < plane; i++, j += 3) {
      out[i] = TO_FLOAT[d[j]!]!;
      out[plane + i] = TO_FLOAT[d[j + 1]!]!;
      out[2 * plane + i] = TO_FLOAT[d[j + 2]!]!;
    }
  } else {
    for (let k = 0; k < c; k++) {
      for (let i = 0, j = k; i < plane; i++, j += c) out[k * plane + i] = TO_FLOAT[d[j]!]!;
    }
  }
  return { data: out, dims: [1, c, h, w] };
}

/**
 * float32 `x` in [−1, 1] → uint8 `clamp(round((x + 1) · 127.5), 0, 255)` (NaN → 0): the service's one output
 * quantization (the trainer's `to_u8`). Exact for every float32 x: (x + 1) · 127.5 has ≤ 32 significant bits, so
 * + 0.5 is exact and truncation is the floor inside (0, 255).
 */
export function toUint8(x: number): number {
  const u = (x + 1) * 127.5 + 0.5;
  return u >= 255 ? 255 : u > 0 ? u | 0 : 0;
}

/**
 * float32 NCHW (batch index `n`) in [−1, 1] → interleaved uint8 H x W x C (rounded, clamped).
 * @param dims [N, C, H, W].
 * @throws RangeError if `data` is shorter than the dims say or `n` is out of range.
 */
export function fromNCHW(data: Float32Array, dims: readonly number[], n = 0): RawImage {
  const [N, c, h, w] = dims as [number, number, number, number];
  if (dims.length !== 4 || n < 0 || n >= N || data.length < N * c * h * w) throw new RangeError(`bad NCHW dims ${JSON.stringify(dims)} for ${data.length} values`);
  const plane = h * w;
  const base = n * c * plane;
  const out = Buffer.allocUnsafe(plane * c);
  for (let k = 0; k < c; k++) { // channel-major: sequential reads of each plane
    const from = base + k * plane;
    for (let i = 0, j = k; i < plane; i++, j += c) {
      // toUint8, written out: the call costs ~8 % of this loop (3.9 vs 3.6 ms at 512²); a unit test holds the two equal
      const u = (data[from + i]! + 1) * 127.5 + 0.5;
      out[j] = u >= 255 ? 255 : u > 0 ? u | 0 : 0;
    }
  }
  return { data: out, width: w, height: h, channels: c };
}

/**
 * Binary uint8 mask H x W x 1 (255 = hole) → float32 NCHW 1 x 1 x H x W in {0, 1} (1 where > 127),
 * the inpainter's `mask` input (a buffer of its own, possibly recycled, like {@link toNCHW}'s).
 * @throws RangeError if the image has more than one channel or the wrong byte count.
 */
export function maskToNCHW(mask: RawImage): { data: Float32Array; dims: [number, number, number, number] } {
  const { width: w, height: h } = mask;
  if (mask.channels !== 1 || mask.data.length !== w * h) throw new RangeError(`mask must be ${w}×${h}×1 bytes, got ${mask.data.length} bytes with ${mask.channels} channels`);
  const out = tensorBuffers.take(w * h);
  for (let i = 0; i < out.length; i++) out[i] = mask.data[i]! > 127 ? 1 : 0;
  return { data: out, dims: [1, 1, h, w] };
}
