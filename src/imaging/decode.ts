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

/** The raster formats the image routes accept (multi-frame GIF, WebP and TIFF: the first frame is used). */
export const RASTER_FORMATS = ['PNG', 'JPEG', 'WebP', 'GIF', 'TIFF', 'AVIF'] as const;

/**
 * The raster format of a file from its magic number (first bytes), or undefined for anything else
 * (SVG, PDF, HEIC, text, …): PNG `89 50 4E 47 0D 0A 1A 0A`, JPEG `FF D8 FF`, GIF `GIF87a`/`GIF89a`,
 * WebP `RIFF····WEBP`, TIFF `II*\0`/`MM\0*`, AVIF an ISO-BMFF `ftyp` box whose major or a compatible
 * brand is `avif` or `avis`.
 */
export function rasterFormat(b: Buffer): typeof RASTER_FORMATS[number] | undefined {
  const ascii = (start: number, end: number) => b.subarray(start, end).toString('latin1');
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'PNG';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'GIF';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (b.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'TIFF';
  if (b.length >= 16 && ascii(4, 8) === 'ftyp') {
    const end = Math.min(b.length, Math.max(16, b.readUInt32BE(0)));
    const brands = [ascii(8, 12)];
    for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(i, i + 4));
    if (brands.some((x) => x === 'avif' || x === 'avis')) return 'AVIF';
  }
  return undefined;
}

/**
 * Read an upload's header: format, display size (after EXIF orientation) and channels.
 * @throws HttpProblem 415 for bytes that are not a raster image ({@link rasterFormat}; before sharp reads them)
 *   or that sharp cannot read, 413 above `maxPixels`.
 */
export async function probe(bytes: Buffer, maxPixels: number): Promise<ImageInfo> {
  if (!rasterFormat(bytes)) {
    // Decided from the bytes, never from the filename or the part's content type, and before sharp sees
    // them: vector and document formats (SVG, PDF, …) can reference files and URLs and expand without bound.
    throw new HttpProblem(415, 'Unsupported Media Type', `the upload is not a raster image: accepted are ${RASTER_FORMATS.join(', ')} (decided from the file's first bytes)`, 'not-raster');
  }
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
 * Smallest side the networks are run at, in px: a thinner image (1×N, N×1, …) is padded up to it and
 * the result cropped back (the networks' reflection paddings need a few pixels at their coarsest scale).
 */
export const MIN_SIDE = 16;

/** `n` px padded to a multiple of `multiple`, and to at least {@link MIN_SIDE}. */
export function padTo(n: number, multiple: number): number {
  return Math.ceil(Math.max(n, MIN_SIDE) / multiple) * multiple;
}

/** Mirror padding, or edge copying where a pad is not smaller than the side it extends (mirroring needs that). */
export function extendFor(width: number, height: number, right: number, bottom: number): 'mirror' | 'copy' {
  return right >= width || bottom >= height ? 'copy' : 'mirror';
}

/**
 * Decode to BT.601 luma, one uint8 channel, EXIF orientation applied, alpha flattened onto white,
 * padded on the right and bottom by mirroring to multiples of `multiple` (the model's size multiple) and
 * to at least {@link MIN_SIDE} px.
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
    const padRight = padTo(width, multiple) - width;
    const padBottom = padTo(height, multiple) - height;
    const padded = await sharp(rgb.data, { raw: { width, height, channels: rgb.info.channels } })
      .recomb([[...BT601], [...BT601], [...BT601]])
      .extend({ right: padRight, bottom: padBottom, extendWith: extendFor(width, height, padRight, padBottom) })
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { luma: { data: padded.data, width: padded.info.width, height: padded.info.height, channels: 1 }, width, height };
  } catch (err) {
    if (err instanceof HttpProblem) throw err;
    throw new HttpProblem(415, 'Unsupported Media Type', `the image could not be decoded (${(err as Error).message})`, 'unsupported-image');
  }
}

/**
 * Decode to sRGB, three uint8 channels, EXIF orientation applied, alpha flattened onto white, padded on the
 * right and bottom by mirroring to multiples of `multiple` and to at least {@link MIN_SIDE} px (the upscaler's
 * input; {@link decodeLuma} is the same for one channel).
 * @returns the padded H' x W' x 3 pixels and the unpadded display size.
 * @throws HttpProblem 415 when decoding fails part-way (truncated file).
 */
export async function decodeRgbPadded(bytes: Buffer, maxPixels: number, multiple: number): Promise<{ rgb: RawImage; width: number; height: number }> {
  try {
    const rgb = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient().flatten({ background: '#ffffff' }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const { width, height } = rgb.info;
    const padRight = padTo(width, multiple) - width;
    const padBottom = padTo(height, multiple) - height;
    if (padRight === 0 && padBottom === 0 && rgb.info.channels === 3) return { rgb: { data: rgb.data, width, height, channels: 3 }, width, height };
    const padded = await sharp(rgb.data, { raw: { width, height, channels: rgb.info.channels } })
      .extend({ right: padRight, bottom: padBottom, extendWith: extendFor(width, height, padRight, padBottom) })
      .raw().toBuffer({ resolveWithObject: true });
    return { rgb: { data: padded.data, width: padded.info.width, height: padded.info.height, channels: 3 }, width, height };
  } catch (err) {
    if (err instanceof HttpProblem) throw err;
    throw new HttpProblem(415, 'Unsupported Media Type', `the image could not be decoded (${(err as Error).message})`, 'unsupported-image');
  }
}

/**
 * A model's reduced copy of a decoded image (`img`: H x W x C uint8, C = 1 or 3, possibly padded by the decoder):
 * its top-left `width` x `height` (the image proper), resized to `size` with Lanczos-3, then padded on the right
 * and bottom by mirroring to multiples of `multiple` (and to at least {@link MIN_SIDE} px). Channels are kept.
 * Used where a photo runs at a working size below its own (translate's large photos, explain passes).
 * @returns H' x W' x C uint8 with H' = padTo(size.height), W' = padTo(size.width).
 */
export async function workingRaster(img: RawImage, width: number, height: number, size: { width: number; height: number }, multiple: number): Promise<RawImage> {
  const right = padTo(size.width, multiple) - size.width;
  const bottom = padTo(size.height, multiple) - size.height;
  let s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 } })
    .extract({ left: 0, top: 0, width, height })
    .resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' })
    .extend({ right, bottom, extendWith: extendFor(size.width, size.height, right, bottom) });
  if (img.channels === 1) s = s.extractChannel(0);
  const out = await s.raw().toBuffer({ resolveWithObject: true });
  return { data: out.data, width: out.info.width, height: out.info.height, channels: img.channels };
}
