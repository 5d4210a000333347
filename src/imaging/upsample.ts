/**
 * Colour at a working size, detail at full size (issues 28 and 31): a colorizer runs on a reduced copy
 * of a large photo and its chroma is upsampled onto the photo's own full-resolution luma, so memory and
 * time per request are bounded by the working size while the output keeps every pixel of the input's
 * detail. Zhang, Isola & Efros 2016 predict ab at ¼ resolution for the same reason: chroma is smooth.
 *
 * Colour model: BT.601 YCbCr (as `trainer/color.py` and `decode.ts`): `Y = 0.299 R + 0.587 G + 0.114 B`,
 * `Cb = (B − Y) / 1.772`, `Cr = (R − Y) / 1.402`, all in uint8 levels (0–255).
 */
import sharp from 'sharp';
import { BT601 } from './decode.js';
import type { RawImage } from './decode.js';

/**
 * Full-resolution RGB from a working-size colour result and the full-resolution luma.
 *
 * 1. The working result's chroma (Cb, Cr per pixel, from its own RGB and luma) is stored with a +128
 *    offset in a 3-channel uint8 image and resized with sharp (bilinear-like `linear` kernel: no ringing)
 *    to `width` x `height`.
 * 2. Each full-resolution pixel gets `R = Y + 1.402 Cr`, `G = Y − 0.344136 Cb − 0.714136 Cr`,
 *    `B = Y + 1.772 Cb` with its own `Y`; where that leaves [0, 255] the chroma is scaled down until it
 *    fits (desaturated, never clipped), so the output's luma is the input's up to rounding (≤ 1 level).
 *
 * @param colour working-size RGB, `colour.width` x `colour.height` x 3 uint8 (already cropped to the image).
 * @param luma full-resolution luma, `width * height` uint8 values, row-major.
 * @returns `width` x `height` x 3 uint8 RGB.
 * @throws RangeError when `luma` does not hold `width * height` values or `colour` is not 3-channel.
 */
export async function chromaOntoLuma(colour: RawImage, luma: Buffer, width: number, height: number): Promise<RawImage> {
  if (colour.channels !== 3) throw new RangeError(`colour must have 3 channels, got ${colour.channels}`);
  if (luma.length !== width * height) throw new RangeError(`luma has ${luma.length} values for ${width}x${height}`);
  const n = colour.width * colour.height;
  const chroma = Buffer.alloc(n * 3, 128);
  const src = colour.data;
  for (let i = 0; i < n; i++) {
    const r = src[3 * i]!, g = src[3 * i + 1]!, b = src[3 * i + 2]!;
    const y = BT601[0] * r + BT601[1] * g + BT601[2] * b;
    chroma[3 * i] = Math.max(0, Math.min(255, Math.round((b - y) / 1.772 + 128)));
    chroma[3 * i + 1] = Math.max(0, Math.min(255, Math.round((r - y) / 1.402 + 128)));
  }
  const up = await sharp(chroma, { raw: { width: colour.width, height: colour.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  const out = Buffer.alloc(width * height * 3);
  for (let i = 0, m = width * height; i < m; i++) {
    const y = luma[i]!;
    const cb = up[3 * i]! - 128, cr = up[3 * i + 1]! - 128;
    let dr = 1.402 * cr, dg = -0.344136 * cb - 0.714136 * cr, db = 1.772 * cb;
    // the largest s in [0, 1] with y + s·d inside [0, 255] for every channel
    let s = 1;
    for (const d of [dr, dg, db]) {
      if (y + d > 255) s = Math.min(s, (255 - y) / d);
      else if (y + d < 0) s = Math.min(s, -y / d);
    }
    if (s < 1) { dr *= s; dg *= s; db *= s; }
    out[3 * i] = Math.round(y + dr);
    out[3 * i + 1] = Math.round(y + dg);
    out[3 * i + 2] = Math.round(y + db);
  }
  return { data: out, width, height, channels: 3 };
}
