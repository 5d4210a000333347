/**
 * Image decoding with sharp: header checks before any pixel is decoded, then EXIF-oriented,
 * alpha-flattened pixels.
 *
 * Errors are {@link HttpProblem}s: 415 when sharp cannot read the bytes as an image, 413 when the
 * header announces more than `maxPixels` pixels (checked before decoding, so a decompression bomb
 * is refused without being inflated).
 */
import sharp, { type Metadata } from 'sharp';
import { HttpProblem } from '../problem.js';

/** BT.601 luma weights, as in trainer/color.py (`Y = 0.299 R + 0.587 G + 0.114 B`). */
export const BT601 = [0.299, 0.587, 0.114] as const;

export interface ImageInfo { width: number; height: number; format: string; channels: number; hasAlpha: boolean }

/** Raw interleaved uint8 pixels: `data.length === width * height * channels`. */
export interface RawImage { data: Buffer; width: number; height: number; channels: number }

/**
 * Read an upload's header: format, display size (after EXIF orientation) and channels.
 * @throws HttpProblem 415 for bytes sharp cannot read as an image, 413 above `maxPixels`.
 */
export async function probe(bytes: Buffer, maxPixels: number): Promise<ImageInfo> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, failOn: 'error' }).metadata();
  } catch (err) {
    throw new HttpProblem(415, 'Unsupported Media Type', `the upload is not an image sharp can decode (${(err as Error).message})`, 'unsupported-image');
  }
  if (!meta.width || !meta.height || !meta.format) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'the upload has no readable image dimensions', 'unsupported-image');
  }
  const swap = (meta.orientation ?? 1) >= 5;
  const width = swap ? meta.height : meta.width;
  const height = swap ? meta.width : meta.height;
  if (width * height > maxPixels) {
    throw new HttpProblem(413, 'Image Too Large', `the image has ${width}×${height} = ${width * height} pixels; the limit is MAX_PIXELS = ${maxPixels}`, 'too-many-pixels', { width, height, max_pixels: maxPixels });
  }
  return { width, height, format: meta.format, channels: meta.channels ?? 3, hasAlpha: meta.hasAlpha ?? false };
}

/**
 * Decode to BT.601 luma, one uint8 channel, EXIF orientation applied, alpha flattened onto white,
 * padded on the right and bottom by mirroring to multiples of `multiple` (the model's size multiple).
 * A colour image goes through sRGB and sharp's `recomb` with the BT.601 weights (libvips truncates,
 * so values can be up to 1 level below a rounded luma); a gray image keeps its values.
 * @returns the padded H' x W' x 1 pixels and the unpadded display size.
 * @throws HttpProblem 415 when decoding fails part-way (truncated file).
 */
export async function decodeLuma(bytes: Buffer, maxPixels: number, multiple: number): Promise<{ luma: RawImage; width: number; height: number }> {
  try {
    const rgb = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const { width, height } = rgb.info;
    const padRight = (multiple - (width % multiple)) % multiple;
    const padBottom = (multiple - (height % multiple)) % multiple;
    const padded = await sharp(rgb.data, { raw: { width, height, channels: rgb.info.channels } })
      .recomb([[...BT601], [...BT601], [...BT601]])
      .extend({ right: padRight, bottom: padBottom, extendWith: 'mirror' })
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { luma: { data: padded.data, width: padded.info.width, height: padded.info.height, channels: 1 }, width, height };
  } catch (err) {
    if (err instanceof HttpProblem) throw err;
    throw new HttpProblem(415, 'Unsupported Media Type', `the image could not be decoded (${(err as Error).message})`, 'unsupported-image');
  }
}
