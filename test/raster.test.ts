/**
 * Raster-only inputs (issue 19): the image routes accept PNG, JPEG, WebP, GIF (first frame), TIFF and
 * AVIF, decided from the bytes; SVG, PDF and other non-raster uploads are 415 problem+json before sharp
 * reads them, whatever the filename or part content type says.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { rasterFormat } from '../src/imaging/decode.js';
import { buildReadyApp, grayPhoto, multipart } from './helper.js';

let app: FastifyInstance;
let gray: Buffer;
before(async () => { app = await buildReadyApp(); gray = await grayPhoto(); });
after(async () => app.close());

describe('raster formats', () => {
  test('each raster format is recognised from its bytes and colorized at its size', async () => {
    const base = sharp(gray).resize(64, 48);
    const files: [string, Buffer][] = [
      ['PNG', await base.clone().png().toBuffer()], ['JPEG', await base.clone().jpeg().toBuffer()],
      ['WebP', await base.clone().webp().toBuffer()], ['GIF', await base.clone().gif().toBuffer()],
      ['TIFF', await base.clone().tiff().toBuffer()], ['AVIF', await base.clone().avif().toBuffer()],
    ];
    for (const [format, data] of files) {
      assert.equal(rasterFormat(data), format);
      const r = await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data, filename: 'x.svg', type: 'image/svg+xml' } }) });
      assert.equal(r.statusCode, 200, `${format}: ${r.body}`);
      const meta = await sharp(r.rawPayload).metadata();
      assert.deepEqual([meta.width, meta.height], [64, 48]);
    }
  });

  test('SVG (with an external reference), PDF, HEIC-like and text uploads are 415 before decoding, even named .png', async () => {
    const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64"><image xlink:href="file:///etc/passwd" width="64" height="64"/></svg>');
    const bad: [string, Buffer][] = [
      ['svg', svg], ['svg without the xml prolog', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')],
      ['pdf', Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF')],
      ['heic', Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheicmif1heic'), Buffer.alloc(8)])],
      ['text', Buffer.from('hello, not an image')],
    ];
    for (const [kind, data] of bad) {
      assert.equal(rasterFormat(data), undefined, kind);
      for (const url of ['/v1/translate', '/v1/inpaint']) {
        const r = await app.inject({ method: 'POST', url, ...multipart({ image: { data, filename: 'photo.png', type: 'image/png' } }) });
        assert.equal(r.statusCode, 415, `${kind} on ${url}: ${r.body}`);
        assert.match(String(r.headers['content-type']), /problem\+json/);
        assert.match(r.json().detail, /not a raster image/);
      }
    }
    const svgMask = await app.inject({ method: 'POST', url: '/v1/inpaint', ...multipart({ image: { data: gray }, mask: { data: svg } }) });
    assert.equal(svgMask.statusCode, 415, 'an SVG mask too');
    assert.equal((await app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: gray } }) })).statusCode, 200);
  });
});
