/**
 * Test helpers: build the real app on the bundled models (or a given MODELS_DIR), wait until its
 * models are loaded, and make real test images with sharp from Debian's held-out sample photos.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type OutputInfo } from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');

/** Build the app with `env` overrides (silent logs), load its models, and return it ready. */
export async function buildReadyApp(env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildApp(loadConfig({ WORKERS: '1', ...env }), false);
  await app.ready();
  await app.models.load();
  return app;
}

/** A multipart/form-data body with file parts (`{ name: { data, filename, type } }`) and text fields. */
export function multipart(files: Record<string, { data: Buffer; filename?: string; type?: string }>, fields: Record<string, string> = {}): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----normgen${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const [name, f] of Object.entries(files)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${f.filename ?? name}"\r\nContent-Type: ${f.type ?? 'application/octet-stream'}\r\n\r\n`));
    chunks.push(f.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** The real grayscale test photo (skimage's chelsea, 451×300, held out from training) as PNG. */
export async function grayPhoto(): Promise<Buffer> {
  return readFile(path.join(fixturesDir, 'chelsea-gray.png'));
}

/** The same photo in colour as JPEG (sklearn's china.jpg, resized to 320×213 by the fixture script). */
export async function colourPhoto(): Promise<Buffer> {
  return readFile(path.join(fixturesDir, 'china-small.jpg'));
}

/** Decode any image to raw pixels with sharp. */
export async function raw(img: Buffer): Promise<{ data: Buffer; info: OutputInfo }> {
  return sharp(img).raw().toBuffer({ resolveWithObject: true });
}

/** A `w`×`h` gray mask PNG (white > 127 = hole): background `bg`, rectangles [left, top, width, height, value]. */
export async function maskPng(w: number, h: number, rects: [number, number, number, number, number][], bg = 0): Promise<Buffer> {
  const data = Buffer.alloc(w * h, bg);
  for (const [l, t, rw, rh, v] of rects) for (let y = t; y < t + rh; y++) data.fill(v, y * w + l, y * w + l + rw);
  return sharp(data, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
}

/** Differing RGB pixels of two raw 3-channel buffers, counted inside and outside a hole predicate (pixel index). */
export function diffCounts(a: Buffer, b: Buffer, hole: (i: number) => boolean): { inside: number; outside: number } {
  let inside = 0, outside = 0;
  for (let i = 0; i < a.length / 3; i++) {
    const d = a[3 * i] !== b[3 * i] || a[3 * i + 1] !== b[3 * i + 1] || a[3 * i + 2] !== b[3 * i + 2];
    if (hole(i)) inside += +d; else outside += +d;
  }
  return { inside, outside };
}

/** A fetch() multipart body: file parts (`{ name: { data, type } }`) and text fields (the HTTP twin of `multipart`). */
export function formData(files: Record<string, { data: Buffer; type: string }>, fields: Record<string, string> = {}): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  for (const [k, f] of Object.entries(files)) fd.append(k, new Blob([new Uint8Array(f.data)], { type: f.type }), `${k}.bin`);
  return fd;
}

/** A PNG whose IHDR claims width × height (CRC fixed), with a tiny IDAT: a pixel bomb header. */
export function pngBomb(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (b: Buffer) => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr[8] = 8; ihdr[9] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

