/**
 * The benchmark workloads `npm run bench:peer` times and `npm run bench:model-memory -- --components` measures
 * memory with, defined once: translate 256² and 512² (a gray PNG of the held-out china photo, centre-cropped),
 * upscale 256² → 1024² (the colour photo, one tile), inpaint 512² with a 64² box in the middle, generate ×64
 * (Fashion-MNIST "Sneaker", seed 1). Each names the model that serves it (`model`); `body(withModel)` is the
 * request body (multipart, or JSON for generate) with the `model` field only when `withModel` is true (a server
 * whose repository holds that one model as its task's default needs none).
 */
import path from 'node:path';
import sharp from 'sharp';
import { multipart } from './multipart.js';

export interface Workload { label: string; path: string; model: string; body: (withModel: boolean) => { body: Buffer; type: string } }

/** The workloads (their images encoded once). */
export async function workloads(root: string): Promise<Workload[]> {
  const china = path.join(root, 'test', 'fixtures', 'china-small.jpg');
  const photo = async (side: number) => sharp(china).resize(side, side, { fit: 'cover' }).png().toBuffer();
  const gray = async (side: number) => sharp(await photo(side)).grayscale().png().toBuffer();
  const box = await sharp({ create: { width: 512, height: 512, channels: 3, background: '#000' } })
    .composite([{ input: { create: { width: 64, height: 64, channels: 3, background: '#fff' } }, left: 224, top: 224 }]).png().toBuffer();
  const [g256, g512, p256, p512] = await Promise.all([gray(256), gray(512), photo(256), photo(512)]);
  const form = (model: string, files: Record<string, Buffer>) => (withModel: boolean) => multipart(files, withModel ? { model } : {});
  const generate = (withModel: boolean) => ({ body: Buffer.from(JSON.stringify({ class: 'Sneaker', seed: 1, count: 64, ...(withModel ? { model: 'fashion-an' } : {}) })), type: 'application/json' });
  return [
    { label: 'translate 256²', path: '/v1/translate', model: 'colorize-pono-auto', body: form('colorize-pono-auto', { image: g256 }) },
    { label: 'translate 512²', path: '/v1/translate', model: 'colorize-pono-auto', body: form('colorize-pono-auto', { image: g512 }) },
    { label: 'upscale 256² → 1024²', path: '/v1/upscale', model: 'upscale-pono', body: form('upscale-pono', { image: p256 }) },
    { label: 'inpaint 512², 64² box', path: '/v1/inpaint', model: 'inpaint-an', body: form('inpaint-an', { image: p512, mask: box }) },
    { label: 'generate ×64', path: '/v1/generate', model: 'fashion-an', body: generate },
  ];
}
