/**
 * Generated-sample layout with sharp: each sample (H x W x 1 uint8 gray, e.g. 28 x 28) is resized to
 * the display size and the samples are tiled row-major into one grid image, or encoded one by one.
 */
import sharp from 'sharp';
import type { RawImage } from './decode.js';
import { encodeWith, type OutputFormat } from './encode.js';

/** Columns of the grid of `count` samples: ceil(sqrt(count)) (a single row for interpolations is asked explicitly). */
export function gridColumns(count: number): number {
  return Math.ceil(Math.sqrt(count));
}

/** Resize one gray sample to `size` x `size` (Lanczos-3; unchanged when already that size). H x W x 1 → size x size x 1. */
export async function resizeTile(tile: RawImage, size: number): Promise<RawImage> {
  if (tile.width === size && tile.height === size) return tile;
  const data = await sharp(tile.data, { raw: { width: tile.width, height: tile.height, channels: 1 } })
    .resize(size, size, { fit: 'fill', kernel: 'lanczos3' }).extractChannel(0).raw().toBuffer();
  return { data, width: size, height: size, channels: 1 };
}

/** Encode one gray tile as a grayscale image. */
export async function encodeTile(tile: RawImage, format: OutputFormat): Promise<Buffer> {
  return encodeWith(sharp(tile.data, { raw: { width: tile.width, height: tile.height, channels: 1 } }).toColourspace('b-w'), format);
}

/**
 * Tile equally sized gray samples row-major into `columns` columns (black where the last row is
 * short) and encode the grid as a grayscale image of (columns · w) x (rows · h) pixels.
 * @throws RangeError when `tiles` is empty or the tiles differ in size.
 */
export async function encodeGrid(tiles: RawImage[], columns: number, format: OutputFormat): Promise<Buffer> {
  if (tiles.length === 0) throw new RangeError('no tiles');
  const { width: w, height: h } = tiles[0]!;
  if (tiles.some((t) => t.width !== w || t.height !== h || t.channels !== 1)) throw new RangeError('tiles differ in size');
  const rows = Math.ceil(tiles.length / columns);
  // One buffer (row copies; black where the last row is short) and one encode (issue 32: 64 sharp
  // composites and a second pass cost tens of ms).
  const W = columns * w;
  const grid = Buffer.alloc(W * rows * h);
  tiles.forEach((t, i) => {
    const left = (i % columns) * w, top = Math.floor(i / columns) * h;
    for (let y = 0; y < h; y++) t.data.copy(grid, (top + y) * W + left, y * w, (y + 1) * w);
  });
  return encodeWith(sharp(grid, { raw: { width: W, height: rows * h, channels: 1 } }).toColourspace('b-w'), format);
}
