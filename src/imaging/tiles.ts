/**
 * Overlapping tiles for the upscaler (issue 33): memory per pass is bounded by the tile, not the photo.
 *
 * The image (W x H input px, padded to the model's size multiple) is cut into a grid of cores of side
 * `tile − 2·overlap` at multiples of `multiple`; each pass runs on its core extended by `overlap` px on each
 * side (clamped to the image, so a tile at the image's border sees the same border the whole image would),
 * and only the core's part of the output is kept. With `overlap` at least the network's reach (its receptive
 * field's radius, measured by the trainer's export) every output pixel is computed from the same input pixels
 * as in one whole-image pass, so the tiles join without seams. All sizes in input px; `scale` maps them to
 * the output.
 */
import type { RawImage } from './decode.js';

/** One tile: the input region a pass runs on (`x`, `y`, `width`, `height`) and the core it gives (`core*`). */
export interface Tile { x: number; y: number; width: number; height: number; coreX: number; coreY: number; coreWidth: number; coreHeight: number }

/**
 * The tiles covering a `width` x `height` image (both multiples of `multiple`). One tile when both sides fit
 * `tile`. @throws RangeError when `tile − 2·overlap` is below `multiple` or a size is not a multiple of it.
 */
export function planTiles(width: number, height: number, tile: number, overlap: number, multiple: number): Tile[] {
  if (width % multiple || height % multiple) throw new RangeError(`planTiles: ${width}x${height} is not a multiple of ${multiple}`);
  if (width <= tile && height <= tile) return [{ x: 0, y: 0, width, height, coreX: 0, coreY: 0, coreWidth: width, coreHeight: height }];
  const core = Math.floor((tile - 2 * overlap) / multiple) * multiple;
  if (core < multiple) throw new RangeError(`planTiles: tile ${tile} leaves no core with overlap ${overlap}`);
  const starts = (n: number) => { const s: number[] = []; for (let v = 0; v < n; v += core) s.push(v); return s; };
  const tiles: Tile[] = [];
  for (const cy of starts(height)) {
    for (const cx of starts(width)) {
      const cw = Math.min(core, width - cx), ch = Math.min(core, height - cy);
      const x = Math.max(0, cx - overlap), y = Math.max(0, cy - overlap);
      const x1 = Math.min(width, cx + cw + overlap), y1 = Math.min(height, cy + ch + overlap);
      tiles.push({ x, y, width: x1 - x, height: y1 - y, coreX: cx, coreY: cy, coreWidth: cw, coreHeight: ch });
    }
  }
  return tiles;
}

/** Copy a region of an interleaved uint8 image (no bounds beyond the image; a fresh buffer). */
export function crop(img: RawImage, x: number, y: number, width: number, height: number): RawImage {
  const c = img.channels;
  const out = Buffer.allocUnsafe(width * height * c);
  for (let r = 0; r < height; r++) img.data.copy(out, r * width * c, ((y + r) * img.width + x) * c, ((y + r) * img.width + x + width) * c);
  return { data: out, width, height, channels: c };
}

/**
 * Paste the core of one tile's output (`out`: the tile's region × `scale`) into `dest` (the whole output,
 * image × `scale`, same channels).
 */
export function pasteCore(dest: RawImage, out: RawImage, t: Tile, scale: number): void {
  const c = dest.channels;
  const sx = (t.coreX - t.x) * scale, sy = (t.coreY - t.y) * scale;
  const w = t.coreWidth * scale, h = t.coreHeight * scale;
  for (let r = 0; r < h; r++) {
    const src = ((sy + r) * out.width + sx) * c;
    out.data.copy(dest.data, ((t.coreY * scale + r) * dest.width + t.coreX * scale) * c, src, src + w * c);
  }
}
