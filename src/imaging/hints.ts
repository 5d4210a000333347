/**
 * Colour hints for the colorizer (issue 29; Zhang et al. 2017, "Real-Time User-Guided Image Colorization with
 * Learned Deep Priors"): what the user says about a few places, turned into the model's `hints` input.
 *
 * Two ways to give them, with one meaning:
 * - `hints`: an RGBA image of the input's size; pixels with alpha ≥ 128 are hints and their RGB is the
 *   colour wanted there (only its chroma is used: the output's luma stays the input's);
 * - `hint_points`: `[{ "x", "y", "color": "#rrggbb", "radius"? }]` in the input's pixels, each a filled
 *   square of side 2·radius + 1 (radius 0–64, default 2: a 5 × 5 patch, as the trainer's evaluation hints)
 *   painted into such an image.
 *
 * The model's input `hints` is float32 NCHW 1 × 3 × H' × W' at the working size (padded to the model's size
 * multiple): `(a* ÷ 110, b* ÷ 110, m)` where `m` = 1 at hinted pixels. At a reduced working size each working pixel
 * gets the mean colour of the hinted full-resolution pixels whose centres fall in it (exact float means, so a
 * 1-pixel hint survives a 4× reduction); sRGB → CIE Lab (D65) is sharp's `toColourspace('lab')`.
 */
import sharp from 'sharp';
import { HttpProblem } from '../problem.js';
import { probe } from './decode.js';

/** One hint point, in the input image's pixels. */
export interface HintPoint { x: number; y: number; color: string; radius?: number }

/** Hints at full resolution: premultiplied RGB (`rgb`, w·h·3) and the hint mask (`mask`, w·h, 255 = hint). */
export interface HintImage { rgb: Buffer; mask: Buffer; width: number; height: number }

export const MAX_HINT_POINTS = 1000;
/**
 * The longest `hint_points` text: MAX_HINT_POINTS points written out with spaces and a radius
 * (`{"x": 12345, "y": 12345, "color": "#aabbcc", "radius": 64}, ` is 62 bytes) with room to spare. The
 * multipart plugin's field size is this, so a multipart form takes as many points as a JSON body.
 */
export const MAX_HINT_POINTS_BYTES = MAX_HINT_POINTS * 96;
export const MAX_HINT_RADIUS = 64;
const AB_SCALE = 110;

/**
 * Parse and check `hint_points` (a JSON list) against the image size.
 * @throws HttpProblem 422 for bad JSON, a non-list, more than {@link MAX_HINT_POINTS} points, a point outside
 *   the image, a colour that is not `#rrggbb`, or a radius outside 0–{@link MAX_HINT_RADIUS}.
 */
export function parseHintPoints(text: string, width: number, height: number): HintPoint[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpProblem(422, 'Unprocessable Content', '`hint_points` must be a JSON list like [{"x": 10, "y": 20, "color": "#3366cc"}]', 'invalid-hints');
  }
  if (!Array.isArray(value)) throw new HttpProblem(422, 'Unprocessable Content', '`hint_points` must be a JSON list of {x, y, color, radius?}', 'invalid-hints');
  if (value.length > MAX_HINT_POINTS) throw new HttpProblem(422, 'Unprocessable Content', `at most ${MAX_HINT_POINTS} hint points`, 'invalid-hints');
  return value.map((p, i) => {
    const bad = (why: string) => new HttpProblem(422, 'Unprocessable Content', `hint_points[${i}]: ${why}`, 'invalid-hints');
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw bad('must be an object {x, y, color, radius?}');
    const { x, y, color, radius } = p as Record<string, unknown>;
    if (!Number.isInteger(x) || !Number.isInteger(y)) throw bad('x and y must be integers (pixels)');
    if ((x as number) < 0 || (y as number) < 0 || (x as number) >= width || (y as number) >= height) throw bad(`(${x}, ${y}) is outside the ${width}×${height} image`);
    if (typeof color !== 'string' || !/^#[0-9a-fA-F]{6}$/.test(color)) throw bad('color must be "#rrggbb"');
    if (radius !== undefined && (!Number.isInteger(radius) || (radius as number) < 0 || (radius as number) > MAX_HINT_RADIUS)) throw bad(`radius must be an integer 0–${MAX_HINT_RADIUS}`);
    return { x: x as number, y: y as number, color, ...(radius !== undefined ? { radius: radius as number } : {}) };
  });
}

/** Paint points into a hint image of `width` × `height` (later points over earlier ones). */
export function rasterizePoints(points: HintPoint[], width: number, height: number): HintImage {
  const rgb = Buffer.alloc(width * height * 3);
  const mask = Buffer.alloc(width * height);
  for (const p of points) {
    const r = p.radius ?? 2;
    const c = [1, 3, 5].map((k) => parseInt(p.color.slice(k, k + 2), 16));
    for (let y = Math.max(0, p.y - r); y <= Math.min(height - 1, p.y + r); y++) {
      for (let x = Math.max(0, p.x - r); x <= Math.min(width - 1, p.x + r); x++) {
        const i = y * width + x;
        mask[i] = 255;
        rgb[3 * i] = c[0]!; rgb[3 * i + 1] = c[1]!; rgb[3 * i + 2] = c[2]!;
      }
    }
  }
  return { rgb, mask, width, height };
}

/**
 * Decode a hints file (any raster format sharp reads; EXIF orientation applied) into a hint image.
 * @throws HttpProblem 422 when its size is not `width` × `height` (the input's) or it has no alpha channel;
 *   413 when its header declares more than `maxPixels` pixels (checked before decoding); 415 when it is not an image.
 */
export async function decodeHintImage(bytes: Buffer, width: number, height: number, maxPixels: number): Promise<HintImage> {
  // raster check, pixel count, oriented size and alpha from the header first, as for the image (a pixel bomb is
  // 413, not 415); the decode below then gives exactly that size
  const info = await probe(bytes, maxPixels);
  if (info.width !== width || info.height !== height) {
    throw new HttpProblem(422, 'Unprocessable Content', `\`hints\` is ${info.width}×${info.height}; it must be the input's size, ${width}×${height}`, 'invalid-hints');
  }
  if (!info.hasAlpha) throw new HttpProblem(422, 'Unprocessable Content', '`hints` must be an RGBA image: opaque pixels (alpha ≥ 128) are the hints, transparent elsewhere', 'invalid-hints');
  let out;
  try {
    out = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' }).autoOrient().toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new HttpProblem(415, 'Unsupported Media Type', `\`hints\` is not an image sharp can decode (${(err as Error).message})`, 'unsupported-image');
  }
  const n = width * height;
  const rgb = Buffer.alloc(n * 3);
  const mask = Buffer.alloc(n);
  const d = out.data;
  for (let i = 0; i < n; i++) {
    if (d[4 * i + 3]! >= 128) {
      mask[i] = 255;
      rgb[3 * i] = d[4 * i]!; rgb[3 * i + 1] = d[4 * i + 1]!; rgb[3 * i + 2] = d[4 * i + 2]!;
    }
  }
  return { rgb, mask, width, height };
}

/**
 * The model's `hints` tensor for a hint image, at the working size `work` padded to `padded`.
 *
 * At a reduced working size each full-resolution hint pixel falls into the working pixel that contains its
 * centre; a working pixel that receives any is a hint, its colour the exact mean of the hint colours it
 * received (summed in floating point). The trainer's evaluation does the same (`colorize_at`, area means of
 * the hinted part). (A premultiplied uint8 resize of colour and mask, the earlier way, divided rounded
 * averages by tiny coverages at a hint's fringe and turned a blue brush into gray and dark hints.)
 * @returns float32 data of dims [1, 3, padded.height, padded.width] and the number of hinted working pixels.
 */
export async function hintsTensor(h: HintImage, work: { width: number; height: number }, padded: { width: number; height: number }): Promise<{ data: Float32Array; dims: [number, number, number, number]; count: number }> {
  const n = work.width * work.height;
  const sum = new Float64Array(n * 3);
  const hits = new Uint32Array(n);
  const sx = work.width / h.width, sy = work.height / h.height;
  for (let y = 0; y < h.height; y++) {
    const wy = Math.min(work.height - 1, Math.floor((y + 0.5) * sy)) * work.width;
    for (let x = 0; x < h.width; x++) {
      const i = y * h.width + x;
      if (h.mask[i]! < 128) continue;
      const j = wy + Math.min(work.width - 1, Math.floor((x + 0.5) * sx));
      hits[j]!++;
      sum[3 * j] = sum[3 * j]! + h.rgb[3 * i]!; sum[3 * j + 1] = sum[3 * j + 1]! + h.rgb[3 * i + 1]!; sum[3 * j + 2] = sum[3 * j + 2]! + h.rgb[3 * i + 2]!;
    }
  }
  const colour = Buffer.alloc(n * 3);
  let count = 0;
  for (let j = 0; j < n; j++) {
    if (hits[j] === 0) continue;
    count++;
    for (let c = 0; c < 3; c++) colour[3 * j + c] = Math.round(sum[3 * j + c]! / hits[j]!);
  }
  const lab = await sharp(colour, { raw: { width: work.width, height: work.height, channels: 3 } })
    .toColourspace('lab').raw({ depth: 'float' }).toBuffer();
  const labF = new Float32Array(lab.buffer, lab.byteOffset, lab.byteLength / 4);
  const plane = padded.width * padded.height;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < work.height; y++) {
    for (let x = 0; x < work.width; x++) {
      const i = y * work.width + x;
      if (hits[i] === 0) continue;
      const o = y * padded.width + x;
      data[o] = labF[3 * i + 1]! / AB_SCALE;
      data[plane + o] = labF[3 * i + 2]! / AB_SCALE;
      data[2 * plane + o] = 1;
    }
  }
  return { data, dims: [1, 3, padded.height, padded.width], count };
}
