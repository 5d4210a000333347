/**
 * Image encoding with sharp: crop raw pixels back to the display size and encode them.
 */
import sharp, { type Sharp } from 'sharp';
import type { RawImage } from './decode.js';

export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const CONTENT_TYPES: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/**
 * Crop `img` to its top-left `width` x `height` and encode it (PNG lossless, JPEG q90, WebP q90).
 * @throws RangeError if the crop is larger than the image.
 */
export async function encode(img: RawImage, width: number, height: number, format: OutputFormat): Promise<Buffer> {
  if (width > img.width || height > img.height) throw new RangeError(`crop ${width}x${height} exceeds ${img.width}x${img.height}`);
  let s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 2 | 3 | 4 } });
  if (width !== img.width || height !== img.height) s = s.extract({ left: 0, top: 0, width, height });
  return encodeWith(s, format);
}

/** Finish a sharp pipeline in `format` with this API's settings (PNG lossless, JPEG q90, WebP q90). */
export function encodeWith(s: Sharp, format: OutputFormat): Promise<Buffer> {
  switch (format) {
    case 'png': return s.png().toBuffer();
    case 'jpeg': return s.jpeg({ quality: 90 }).toBuffer();
    case 'webp': return s.webp({ quality: 90 }).toBuffer();
  }
}
