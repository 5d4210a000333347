/**
 * Pictures of a network's internal maps (issue 34, `POST /v1/explain`), made with sharp from the float32 NCHW
 * tensors of a model's `explain.onnx`:
 *
 * - {@link heatmap}: one B x 1 x h x w map (PONO `mu` or `sigma`, Li et al. 2019 eq. 2) of batch item `n` as
 *   an RGB image in the viridis colormap (perceptually uniform; van der Walt & Smith 2015), min–max scaled
 *   per map (the range is returned: the colours are relative);
 * - {@link layoutImage}: one AN soft layout (B x k x h x w, Wang et al. 2020 eq. 4) as the winning entity's
 *   colour per position, blended 50 % over a backdrop (the input at the map's size), with the share of
 *   positions each entity wins (a flat layout, one entity everywhere, is a finding, not a failure to draw);
 * - {@link gridSamplingPoints}: the positions AN's self-sampling uses at inference in `grid` mode
 *   (trainer/normalization.py `grid_positions`: evenly spaced flat indices of the 2 × 2 max-pooled map),
 *   in the map's pixels, and {@link markPoints} to draw them;
 * - {@link contactSheet}: every map nearest-upscaled to one height, in a row-wrapped grid with its name.
 */
import sharp, { type OverlayOptions } from 'sharp';
import type { RawImage } from './decode.js';

/** viridis at 9 evenly spaced stops (matplotlib's table), linearly interpolated between them. */
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]] as const;

/** viridis colour of `t` in [0, 1] (clamped): [r, g, b] uint8. */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i]!, b = VIRIDIS[i + 1]!;
  return [0, 1, 2].map((k) => Math.round(a[k]! + f * (b[k]! - a[k]!))) as [number, number, number];
}

/**
 * Map `n` of a B x 1 x h x w tensor as a viridis RGB image, min–max scaled (a constant map is all the
 * lowest colour). @returns the image and the map's [min, max] in its own units.
 * @throws RangeError when dims are not B x 1 x h x w or `n` is out of range.
 */
export function heatmap(data: Float32Array, dims: readonly number[], n = 0): { image: RawImage; range: [number, number] } {
  const [B, C, h, w] = dims as [number, number, number, number];
  if (dims.length !== 4 || C !== 1 || n < 0 || n >= B || data.length < B * h * w) throw new RangeError(`heatmap: bad dims ${JSON.stringify(dims)}`);
  const plane = data.subarray(n * h * w, (n + 1) * h * w);
  let lo = Infinity, hi = -Infinity;
  for (const v of plane) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = hi - lo;
  const out = Buffer.allocUnsafe(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = viridis(span > 0 ? (plane[i]! - lo) / span : 0);
    out[3 * i] = r; out[3 * i + 1] = g; out[3 * i + 2] = b;
  }
  return { image: { data: out, width: w, height: h, channels: 3 }, range: [lo, hi] };
}

/** 16 distinct colours (Kelly's / tab20-like), one per AN entity (repeating past 16). */
export const ENTITY_COLOURS = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
  [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195]] as const;

/**
 * Layout `n` of a B x k x h x w soft assignment: each position gets its winning entity's colour, blended 50 %
 * over `backdrop` (h x w, 1 or 3 channels; gray when omitted). @returns the image, the share of positions
 * each entity wins (length k) and how many entities win at least 1 % of them.
 * @throws RangeError for bad dims or a backdrop of another size.
 */
export function layoutImage(data: Float32Array, dims: readonly number[], n = 0, backdrop?: RawImage): { image: RawImage; shares: number[]; regions: number } {
  const [B, k, h, w] = dims as [number, number, number, number];
  if (dims.length !== 4 || n < 0 || n >= B || data.length < B * k * h * w) throw new RangeError(`layoutImage: bad dims ${JSON.stringify(dims)}`);
  if (backdrop && (backdrop.width !== w || backdrop.height !== h)) throw new RangeError(`layoutImage: backdrop ${backdrop.width}x${backdrop.height} is not ${w}x${h}`);
  const plane = h * w;
  const base = n * k * plane;
  const wins = new Array<number>(k).fill(0);
  const out = Buffer.allocUnsafe(plane * 3);
  for (let i = 0; i < plane; i++) {
    let best = 0, bv = -Infinity;
    for (let j = 0; j < k; j++) { const v = data[base + j * plane + i]!; if (v > bv) { bv = v; best = j; } }
    wins[best]!++;
    const c = ENTITY_COLOURS[best % ENTITY_COLOURS.length]!;
    for (let ch = 0; ch < 3; ch++) {
      const under = backdrop ? backdrop.data[i * backdrop.channels + (backdrop.channels === 1 ? 0 : ch)]! : 128;
      out[3 * i + ch] = Math.round(0.5 * c[ch]! + 0.5 * under);
    }
  }
  const shares = wins.map((v) => v / plane);
  return { image: { data: out, width: w, height: h, channels: 3 }, shares, regions: shares.filter((s) => s >= 0.01).length };
}

/**
 * The positions AN's grid self-sampling reads (trainer/normalization.py `grid_positions` on the `pool` ×
 * `pool` max-pooled map, ceil mode): `n` flat indices `round(i (P − 1) / (n − 1))` (half to even, as torch)
 * of the P = ceil(h/pool)·ceil(w/pool) pooled positions, returned as [x, y] at the centre of each pooled cell
 * in the h × w map's pixels.
 */
export function gridSamplingPoints(h: number, w: number, n: number, pool = 2): [number, number][] {
  const ph = Math.ceil(h / pool), pw = Math.ceil(w / pool), P = ph * pw;
  const roundHalfEven = (v: number) => { const f = Math.floor(v); const d = v - f; return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f; };
  const pts: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const idx = n === 1 ? 0 : roundHalfEven((i * (P - 1)) / (n - 1));
    pts.push([Math.min(w - 1, (idx % pw) * pool + (pool - 1) / 2), Math.min(h - 1, Math.floor(idx / pw) * pool + (pool - 1) / 2)]);
  }
  return pts;
}

/** Copy of `img` (3 channels) with a 3 × 3 white-ringed black dot at each [x, y] (rounded). */
export function markPoints(img: RawImage, points: readonly [number, number][]): RawImage {
  const out = Buffer.from(img.data);
  const set = (x: number, y: number, v: number) => {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    out.fill(v, 3 * (y * img.width + x), 3 * (y * img.width + x) + 3);
  };
  for (const [px, py] of points) {
    const x = Math.round(px), y = Math.round(py);
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(x + dx, y + dy, Math.max(Math.abs(dx), Math.abs(dy)) === 2 ? 255 : 0);
  }
  return { ...img, data: out };
}

/** PNG of a raw image. */
export function png(img: RawImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 } }).png().toBuffer();
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * One image of every map: each nearest-upscaled to `height` px (at most 4× its own width in cells), laid out
 * in rows of `columns`, its name written above it. Returns raw RGB for the caller to encode.
 */
/**
 * What a map shows, in words a newcomer reads (issue 44): `short` labels a contact-sheet cell, `long` is the
 * JSON's `caption`. @param kind the map's kind. @param layer the layer it was taken at.
 */
export function caption(kind: string, layer: string): { short: string; long: string } {
  switch (kind) {
    case 'pono_mu': return { short: `mean · ${layer}`, long: `PONO μ at ${layer}: the mean of the layer's features at each pixel (bright = high); the photo's structure as the network encodes it` };
    case 'pono_sigma': return { short: `spread · ${layer}`, long: `PONO σ at ${layer}: how much the layer's features vary at each pixel (bright = edges and texture)` };
    case 'pono_dms_beta': return { short: `DMS shift · ${layer}`, long: `PONO-DMS β at ${layer}: the shift a small ConvNet made from μ and σ for the decoder (mean over channels)` };
    case 'pono_dms_gamma': return { short: `DMS scale · ${layer}`, long: `PONO-DMS γ at ${layer}: the scale a small ConvNet made from μ and σ for the decoder (mean over channels)` };
    case 'an_layout': return { short: `regions · ${layer}`, long: `Attentive Normalization at ${layer}: the regions the layer groups pixels into, each normalized on its own (one colour per region)` };
    case 'an_sampling': return { short: `AN samples · ${layer}`, long: `Attentive Normalization at ${layer}: the positions it samples to shape its regions, marked on them` };
    default: return { short: `${kind} · ${layer}`, long: `${kind} at ${layer}` };
  }
}

export async function contactSheet(maps: { name: string; image: RawImage }[], height = 160, columns = 4): Promise<RawImage> {
  const label = 16, pad = 6;
  const cells = await Promise.all(maps.map(async (m) => {
    const width = Math.max(1, Math.round((m.image.width * height) / m.image.height));
    const data = await sharp(m.image.data, { raw: { width: m.image.width, height: m.image.height, channels: m.image.channels as 1 | 3 } })
      .resize(width, height, { kernel: 'nearest', fit: 'fill' }).removeAlpha().toColourspace('srgb').raw().toBuffer();
    return { name: m.name, width, data };
  }));
  const rows: typeof cells[] = [];
  for (let i = 0; i < cells.length; i += columns) rows.push(cells.slice(i, i + columns));
  const W = Math.max(...rows.map((r) => r.reduce((s, c) => s + c.width + pad, pad)));
  const H = rows.length * (height + label + pad) + pad;
  const composites: OverlayOptions[] = [];
  const texts: string[] = [];
  rows.forEach((row, ri) => {
    let x = pad;
    const y = pad + ri * (height + label + pad);
    for (const c of row) {
      composites.push({ input: c.data, raw: { width: c.width, height, channels: 3 }, left: x, top: y + label });
      texts.push(`<text x="${x + 2}" y="${y + 12}" font-family="sans-serif" font-size="12" fill="#000">${escapeXml(c.name)}</text>`);
      x += c.width + pad;
    }
  });
  composites.push({ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${texts.join('')}</svg>`), left: 0, top: 0 });
  const data = await sharp({ create: { width: W, height: H, channels: 3, background: '#ffffff' } }).composite(composites).removeAlpha().raw().toBuffer();
  return { data, width: W, height: H, channels: 3 };
}
