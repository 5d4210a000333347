/**
 * Inpainting pixels with sharp: the RGB image and its binary hole mask, the reduced working copy
 * the model sees, and the full-resolution paste of the generated hole.
 *
 * Mask convention (white = fill): a pixel is a hole when its mask luma is > 127 (sharp's
 * `threshold(128)`: ≥ 128 → 255, else 0). A mask with alpha is flattened onto black first (a
 * transparent mask pixel keeps). Without a mask, an image's transparent pixels (alpha < 128) are
 * the hole (the convention of OpenAI's image-edit API).
 *
 * Errors are {@link HttpProblem}s: 415 for undecodable bytes, 422 for a mask whose size differs.
 */
import sharp, { type OutputInfo } from 'sharp';
import { HttpProblem } from '../problem.js';
import { extendFor, padTo, type RawImage } from './decode.js';
import { fromNCHW, toUint8 } from './tensor.js';

/** A decoded inpainting input: RGB pixels (H x W x 3 uint8 sRGB) and, if the image had one, its alpha (H x W x 1). */
export interface RgbWithAlpha { rgb: RawImage; alpha: RawImage | null }

function undecodable(what: string, err: unknown): HttpProblem {
  return new HttpProblem(415, 'Unsupported Media Type', `the ${what} could not be decoded (${(err as Error).message})`, 'unsupported-image');
}

/**
 * Decode an image to sRGB uint8 (EXIF orientation applied; gray expanded to 3 channels) and keep
 * its alpha channel apart. The RGB values are the file's own (alpha is not flattened into them),
 * so the pixels outside a hole can be returned exactly.
 * @throws HttpProblem 415 when decoding fails (truncated or corrupt file).
 */
export async function decodeRgb(bytes: Buffer, maxPixels: number): Promise<RgbWithAlpha> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const { width, height, channels } = info;
    if (channels === 3) return { rgb: { data, width, height, channels: 3 }, alpha: null };
    const raw = { raw: { width, height, channels } } as const;
    const [rgb, alpha] = await Promise.all([
      sharp(data, raw).removeAlpha().raw().toBuffer(),
      sharp(data, raw).extractChannel(channels === 4 ? 3 : 1).raw().toBuffer(),
    ]);
    return { rgb: { data: rgb, width, height, channels: 3 }, alpha: { data: alpha, width, height, channels: 1 } };
  } catch (err) {
    throw err instanceof HttpProblem ? err : undecodable('image', err);
  }
}

/**
 * Decode an uploaded mask (any format sharp reads, gray or RGB, EXIF orientation applied, alpha
 * flattened onto black) to a binary H x W x 1 uint8 mask: 255 = hole (luma > 127), 0 = keep. Its size is
 * checked against the image's by {@link checkMaskSize} (apart, so that image and mask can decode at once).
 * @throws HttpProblem 415 undecodable.
 */
export async function decodeMask(bytes: Buffer, maxPixels: number): Promise<RawImage> {
  try {
    const out = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient().flatten({ background: '#000000' }).threshold(128).extractChannel(0)
      .raw().toBuffer({ resolveWithObject: true });
    return { data: out.data, width: out.info.width, height: out.info.height, channels: 1 };
  } catch (err) {
    throw undecodable('mask', err);
  }
}

/**
 * The decoded mask, when it is `width` x `height` (the oriented image's size).
 * @throws HttpProblem 422 `mask-size-mismatch` naming both sizes.
 */
export function checkMaskSize(mask: RawImage, width: number, height: number): RawImage {
  if (mask.width !== width || mask.height !== height) {
    // a mask drawn on a phone photo's stored pixels, not on the photo as shown (its EXIF orientation applied)
    const turned = mask.width === height && mask.height === width && width !== height;
    throw new HttpProblem(422, 'Unprocessable Content', `the mask is ${mask.width}×${mask.height} but the image is ${width}×${height} (as displayed, its EXIF orientation applied); they must be the same size${turned ? ': this mask looks drawn on the photo\'s stored, unrotated pixels — draw it on the photo as it is displayed, or rotate it the same way' : ''}`, 'mask-size-mismatch', { image: { width, height }, mask: { width: mask.width, height: mask.height } });
  }
  return mask;
}

/** The hole of an image without a mask: 255 where alpha < 128 (transparent), else 0. H x W x 1 uint8. */
export async function maskFromAlpha(alpha: RawImage): Promise<RawImage> {
  const data = await sharp(alpha.data, { raw: { width: alpha.width, height: alpha.height, channels: 1 } })
    .negate().threshold(128).extractChannel(0).raw().toBuffer();
  return { data, width: alpha.width, height: alpha.height, channels: 1 };
}

/**
 * Fraction of hole pixels of a binary mask (H x W x 1, 0 or 255), in [0, 1]. A count over the bytes: sharp's
 * `stats()` gave the same number through a whole pipeline (~10 ms at 512², issue 32).
 */
export function holeFraction(mask: RawImage): number {
  const d = mask.data;
  let holes = 0;
  for (let i = 0; i < d.length; i++) holes += d[i]! >>> 7; // 255 → 1, 0 → 0
  return holes / d.length;
}

/**
 * The working size rule: an image whose longer side exceeds `maxSide` is inpainted at a reduced
 * size, longer side `maxSide`, aspect ratio kept (rounded, at least 1 px); else at its own size.
 */
export function workingSize(width: number, height: number, maxSide: number): { width: number; height: number; scale: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  if (scale === 1) return { width, height, scale };
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)), scale };
}

/**
 * The model's copy: image and mask resized to `size` (image: Lanczos-3; mask: bilinear then any
 * non-zero → hole, so the reduced hole covers every full-resolution hole pixel) and padded on the
 * right and bottom by mirroring to multiples of `multiple`.
 * @returns padded H' x W' x 3 image and H' x W' x 1 binary mask (255 = hole); `rgb` and `mask` themselves (not
 *   copies) when no resize and no padding is needed.
 */
export async function workingCopy(rgb: RawImage, mask: RawImage, size: { width: number; height: number }, multiple: number): Promise<{ image: RawImage; mask: RawImage }> {
  const right = padTo(size.width, multiple) - size.width;
  const bottom = padTo(size.height, multiple) - size.height;
  const extendWith = extendFor(size.width, size.height, right, bottom);
  const resize = size.width !== rgb.width || size.height !== rgb.height;
  // already the working size and a multiple: the model's copy is the decoded image and mask themselves
  if (!resize && right === 0 && bottom === 0) return { image: rgb, mask };
  let img = sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } });
  let msk = sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 } });
  if (resize) {
    img = sharp(await img.resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer(), { raw: { ...size, channels: 3 } });
    msk = sharp(await msk.resize(size.width, size.height, { fit: 'fill', kernel: 'linear' }).threshold(1).extractChannel(0).raw().toBuffer(), { raw: { ...size, channels: 1 } });
  }
  const [i, m] = await Promise.all([
    img.extend({ right, bottom, extendWith }).raw().toBuffer({ resolveWithObject: true }),
    msk.extend({ right, bottom, extendWith }).extractChannel(0).raw().toBuffer({ resolveWithObject: true }),
  ]);
  return {
    image: { data: i.data, width: i.info.width, height: i.info.height, channels: 3 },
    mask: { data: m.data, width: m.info.width, height: m.info.height, channels: 1 },
  };
}

/**
 * Paste the generated hole into the original: crop `generated` (the model's padded output, H' x W' x 3
 * uint8, or the model's output tensor itself, float32 NCHW 1 x 3 x H' x W' in [−1, 1]) to `size`, resize it
 * to the original's size if it was reduced (Lanczos-3), and take it where the full-resolution binary `mask`
 * (H x W x 1, 0 or 255) is a hole. Pixels where the mask is 0 are exactly `rgb`'s; where it is 255, exactly
 * the (resized) generated pixels, a tensor's quantized by {@link toUint8}. A tensor at the original's
 * size is read at the hole's pixels only (issue 32: converting the whole 512² output cost ~4 ms for a small hole).
 * @returns H x W x 3 uint8, the original's size.
 * @throws RangeError for a tensor that is not 1 x 3 x H' x W' with H' ≥ H, W' ≥ W.
 */
export async function pasteHole(rgb: RawImage, mask: RawImage, generated: RawImage | { data: Float32Array; dims: readonly number[] }, size: { width: number; height: number }): Promise<RawImage> {
  const sameSize = size.width === rgb.width && size.height === rgb.height;
  if ('dims' in generated) {
    const [n, c, gh, gw] = generated.dims as [number, number, number, number];
    if (generated.dims.length !== 4 || n !== 1 || c !== 3 || gh < size.height || gw < size.width || generated.data.length < 3 * gh * gw) {
      throw new RangeError(`pasteHole: expected a 1 x 3 x H' x W' tensor covering ${size.width}x${size.height}, got ${JSON.stringify(generated.dims)}`);
    }
    if (!sameSize) return pasteHole(rgb, mask, fromNCHW(generated.data, generated.dims), size);
    const out = Buffer.from(rgb.data);
    const m = mask.data, g = generated.data, W = rgb.width, plane = gh * gw;
    for (let y = 0; y < rgb.height; y++) {
      for (let x = 0, i = y * W; x < W; x++, i++) {
        if (m[i]! > 127) {
          const s = y * gw + x;
          for (let k = 0; k < 3; k++) out[3 * i + k] = toUint8(g[k * plane + s]!);
        }
      }
    }
    return { data: out, width: rgb.width, height: rgb.height, channels: 3 };
  }
  let gen = generated;
  if (!sameSize) {
    const data = await sharp(generated.data, { raw: { width: generated.width, height: generated.height, channels: 3 } })
      .extract({ left: 0, top: 0, width: size.width, height: size.height })
      .resize(rgb.width, rgb.height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
    gen = { data, width: rgb.width, height: rgb.height, channels: 3 };
  }
  // A binary mask makes the composite a per-pixel select: the hole's pixels from `gen` (whose rows may be
  // wider: the model's padding), the others stay `rgb`'s bytes. (sharp's composite of the same took two
  // pipelines, ~14 ms at 512², issue 32.)
  const out = Buffer.from(rgb.data);
  const m = mask.data, g = gen.data, W = rgb.width, GW = gen.width;
  for (let y = 0; y < rgb.height; y++) {
    for (let x = 0, i = y * W; x < W; x++, i++) {
      if (m[i]! > 127) {
        const o = 3 * i, s = 3 * (y * GW + x);
        out[o] = g[s]!; out[o + 1] = g[s + 1]!; out[o + 2] = g[s + 2]!;
      }
    }
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 3 };
}
