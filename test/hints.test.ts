/**
 * Colour hints on `POST /v1/translate` (issue 29) with the real hinted model (`colorize-hints`): points and the
 * equivalent RGBA image give the same bytes; the output's luma is the input's; a hinted spot moves towards the
 * hinted hue; without hints the hinted model is the automatic colorizer; each bad hint gets its 422. The default
 * translator (`colorize-pono` 3.1.0, issue 42): hints without a `model` field, the hinted pixels get the hinted
 * chroma, and a hint's colour stops at a strong luma edge.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { BT601 } from '../src/imaging/decode.js';
import { buildReadyApp, colourPhoto, multipart, raw } from './helper.js';

let app: FastifyInstance;
let gray: Buffer;
const W = 320, H = 208;
before(async () => {
  app = await buildReadyApp();
  gray = await sharp(await colourPhoto()).resize(W, H, { fit: 'fill' }).grayscale().png().toBuffer();
});
after(async () => app?.close());

const translate = (fields: Record<string, string>, files: Record<string, Buffer> = {}) =>
  app.inject({ method: 'POST', url: '/v1/translate', ...multipart(Object.fromEntries([['image', { data: gray }], ...Object.entries(files).map(([k, v]) => [k, { data: v }])]), fields) });

/** Mean Lab-ish blue-yellow (B − (R+G)/2) over a square of the output. */
async function blueness(png: Buffer, cx: number, cy: number, r: number): Promise<number> {
  const { data } = await raw(png);
  let s = 0, n = 0;
  for (let y = cy - r; y <= cy + r; y++) for (let x = cx - r; x <= cx + r; x++) {
    const i = 3 * (y * W + x);
    s += data[i + 2]! - (data[i]! + data[i + 1]!) / 2;
    n++;
  }
  return s / n;
}

describe('colour hints', () => {
  test('hint_points and the equivalent RGBA image give identical bytes; luma kept; the spot turns to the hinted hue', async () => {
    const points = [{ x: 160, y: 60, color: '#2255ee', radius: 3 }, { x: 40, y: 180, color: '#22aa33' }];
    const byPoints = await translate({ model: 'colorize-hints', hint_points: JSON.stringify(points) });
    assert.equal(byPoints.statusCode, 200, byPoints.body.slice(0, 300));
    assert.ok(Number(byPoints.headers['x-hints']) > 0);
    const rgba = Buffer.alloc(W * H * 4);
    for (const p of points) {
      const r = p.radius ?? 2;
      const c = [1, 3, 5].map((k) => parseInt(p.color.slice(k, k + 2), 16));
      for (let y = p.y - r; y <= p.y + r; y++) for (let x = p.x - r; x <= p.x + r; x++) rgba.set([c[0]!, c[1]!, c[2]!, 255], 4 * (y * W + x));
    }
    const hintPng = await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toBuffer();
    const byImage = await translate({ model: 'colorize-hints' }, { hints: hintPng });
    assert.equal(byImage.statusCode, 200);
    assert.ok(byImage.rawPayload.equals(byPoints.rawPayload), 'same bytes');
    // the luma is the input's
    const out = await raw(byPoints.rawPayload);
    const ref = await sharp(gray).extractChannel(0).raw().toBuffer();
    let off = 0;
    for (let i = 0; i < W * H; i++) {
      const y = BT601[0] * out.data[3 * i]! + BT601[1] * out.data[3 * i + 1]! + BT601[2] * out.data[3 * i + 2]!;
      if (Math.abs(y - ref[i]!) > 1.5) off++;
    }
    assert.ok(off / (W * H) < 0.01, `luma off on ${off} pixels`);
    // without hints, the same model: the hinted spot is bluer with the blue hint
    const none = await translate({ model: 'colorize-hints' });
    assert.equal(none.statusCode, 200);
    assert.equal(none.headers['x-hints'], undefined);
    const withHint = await blueness(byPoints.rawPayload, 160, 60, 3);
    const without = await blueness(none.rawPayload, 160, 60, 3);
    assert.ok(withHint > without + 5, `blueness ${without.toFixed(1)} -> ${withHint.toFixed(1)}`);
  });

  test('JSON body: hint_points as a list, hints as base64', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/translate', payload: { image: gray.toString('base64'), model: 'colorize-hints', hint_points: [{ x: 10, y: 10, color: '#ff0000' }] } });
    assert.equal(r.statusCode, 200, r.body.slice(0, 300));
    assert.ok(Number(r.headers['x-hints']) > 0);
  });

  test('bad hints get 422 problem+json', async () => {
    const rgbaWrong = await sharp({ create: { width: 10, height: 10, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 1 } } }).png().toBuffer();
    const opaque = await sharp({ create: { width: W, height: H, channels: 3, background: '#0000ff' } }).png().toBuffer();
    const cases: [Record<string, string>, Record<string, Buffer>, RegExp][] = [
      [{ model: 'colorize-pono-auto', hint_points: '[{"x":1,"y":1,"color":"#ff0000"}]' }, {}, /does not take colour hints/], // no hints input
      [{ hint_points: `[{"x":1,"y":${H},"color":"#ff0000"}]` }, {}, /outside/], // the default model takes hints
      [{ model: 'colorize-hints', hint_points: 'nope' }, {}, /JSON list/],
      [{ model: 'colorize-hints', hint_points: '{"x":1}' }, {}, /JSON list/],
      [{ model: 'colorize-hints', hint_points: `[{"x":${W},"y":1,"color":"#ff0000"}]` }, {}, /outside/],
      [{ model: 'colorize-hints', hint_points: '[{"x":1,"y":1,"color":"red"}]' }, {}, /#rrggbb/],
      [{ model: 'colorize-hints', hint_points: '[{"x":1,"y":1,"color":"#ff0000","radius":99}]' }, {}, /radius/],
      [{ model: 'colorize-hints' }, { hints: rgbaWrong }, /must be the input's size/],
      [{ model: 'colorize-hints' }, { hints: opaque }, /RGBA/],
      // (`[]` is no hints at all: the form's example)
      [{ model: 'colorize-hints', hint_points: '[{"x":1,"y":1,"color":"#ff0000"}]' }, { hints: rgbaWrong }, /not both/],
    ];
    for (const [fields, files, pattern] of cases) {
      const r = await translate(fields, files);
      assert.equal(r.statusCode, 422, `${JSON.stringify(fields)} → ${r.statusCode} ${r.body.slice(0, 200)}`);
      assert.match(String(r.headers['content-type']), /problem\+json/);
      assert.match(r.json().detail, pattern);
    }
    assert.equal((await translate({})).statusCode, 200, 'the server keeps serving');
  });
});

describe('hints at a reduced working size (colorize-hints serves at 192 px)', () => {
  test('each hinted working pixel holds the hint colour exactly (no dark or gray fringe), unhinted pixels stay empty', async () => {
    const { hintsTensor, rasterizePoints } = await import('../src/imaging/hints.js');
    const w = 451, h = 300;
    const pts = [{ x: 135, y: 90, color: '#1144ff' }, { x: 300, y: 200, color: '#22aa33', radius: 0 }];
    const img = rasterizePoints(pts, w, h);
    const full = await hintsTensor(img, { width: w, height: h }, { width: w, height: h });
    const small = await hintsTensor(img, { width: 192, height: 128 }, { width: 192, height: 128 });
    assert.equal(full.count, 25 + 1);
    // a 5×5 patch at 192/451 covers 2–3 working pixels a side; the 1-px hint survives as one
    assert.ok(small.count >= 1 + 4 && small.count <= 1 + 9, `count ${small.count}`);
    const plane = 192 * 128;
    const labOf = (t: { data: Float32Array }, P: number, i: number) => [t.data[i]!, t.data[P + i]!];
    const blue = labOf(full, w * h, 90 * w + 135), green = labOf(full, w * h, 200 * w + 300);
    let seen = 0;
    for (let i = 0; i < plane; i++) {
      if (small.data[2 * plane + i] === 0) { assert.equal(small.data[i], 0); assert.equal(small.data[plane + i], 0); continue; }
      seen++;
      const [a, b] = labOf(small, plane, i);
      const d = Math.min(Math.hypot(a! - blue[0]!, b! - blue[1]!), Math.hypot(a! - green[0]!, b! - green[1]!));
      assert.ok(d < 0.01, `working pixel ${i}: a,b ${a},${b} is neither hint colour`);
    }
    assert.equal(seen, small.count);
  });
});

describe('the default translator takes hints (colorize-pono 3.1: network prior + edge-aware propagation)', () => {
  // a synthetic photo: two flat regions (luma 100 | 200) split by a vertical edge at x = 96, with mild texture
  const w = 192, h = 128, edge = 96;
  let twoRegions: Buffer;
  before(async () => {
    const g = Buffer.alloc(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) g[y * w + x] = (x < edge ? 100 : 200) + ((x * 7 + y * 13) % 5) - 2;
    twoRegions = await sharp(g, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
  });
  const post = (fields: Record<string, string>) =>
    app.inject({ method: 'POST', url: '/v1/translate', ...multipart({ image: { data: twoRegions } }, fields) });
  /** CIE a*, b* of one sRGB colour, as the service encodes hints (its `hints` tensor holds them ÷ 110). */
  async function lab(r: number, g: number, b: number): Promise<[number, number]> {
    const { hintsTensor, rasterizePoints } = await import('../src/imaging/hints.js');
    const hex = '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
    const t = await hintsTensor(rasterizePoints([{ x: 0, y: 0, color: hex, radius: 0 }], 1, 1), { width: 1, height: 1 }, { width: 1, height: 1 });
    return [t.data[0]! * 110, t.data[1]! * 110];
  }

  test('one hint, no model field: 200, exact luma, the hinted pixels get the hinted chroma, the colour stops at the edge', async () => {
    const hint = { x: 40, y: 64, color: '#3060c0', radius: 2 }; // a blue of luma ≈ 93, near the left region's 100
    const r = await post({ hint_points: JSON.stringify([hint]) });
    assert.equal(r.statusCode, 200, r.body.slice(0, 300));
    assert.match(String(r.headers['x-model']), /^colorize-pono@3\./);
    assert.equal(r.headers['x-hints'], '25');
    const out = await raw(r.rawPayload);
    const src = await sharp(twoRegions).extractChannel(0).raw().toBuffer();
    const px = (x: number, y: number) => [...out.data.subarray(3 * (y * w + x), 3 * (y * w + x) + 3)] as [number, number, number];
    let worst = 0;
    for (let i = 0; i < w * h; i++) {
      const yv = BT601[0] * out.data[3 * i]! + BT601[1] * out.data[3 * i + 1]! + BT601[2] * out.data[3 * i + 2]!;
      worst = Math.max(worst, Math.abs(yv - src[i]!));
    }
    assert.ok(worst <= 1.5, `luma off by ${worst.toFixed(2)}`);
    const want = await lab(0x30, 0x60, 0xc0);
    const got = await lab(...px(hint.x, hint.y));
    assert.ok(Math.hypot(got[0] - want[0], got[1] - want[1]) < 6, `hinted pixel a*b* ${got.map((v) => v.toFixed(1))} vs ${want.map((v) => v.toFixed(1))}`);
    // the hint's effect (its a*b* minus the no-hint output's): 50 px away in its region still strong, just across
    // the edge (60 px away) under a third of it (reach across the edge ≈ 0.07, the blend doubles it, the prior adds some)
    const none = await raw((await post({})).rawPayload);
    const effect = async (x: number) => {
      const [a1, b1] = await lab(...px(x, hint.y));
      const i = 3 * (hint.y * w + x);
      const [a0, b0] = await lab(none.data[i]!, none.data[i + 1]!, none.data[i + 2]!);
      return Math.hypot(a1 - a0, b1 - b0);
    };
    const near = await effect(90), far = await effect(edge + 4);
    console.log(`# hint effect (CIE ab): ${near.toFixed(1)} in its region, ${far.toFixed(1)} across the edge`);
    assert.ok(near > 15, `same region: effect ${near.toFixed(1)}`);
    assert.ok(far < near / 3, `across the edge: effect ${far.toFixed(1)} vs ${near.toFixed(1)} before it`);
  });

  test('without hints it keeps the translate contract (same size, exact luma) and is the confidence-weighted network', async () => {
    const a = await post({});
    const b = await post({ hint_points: '[]' });
    assert.equal(a.statusCode, 200);
    assert.ok(a.rawPayload.equals(b.rawPayload), '`[]` is no hints');
    const meta = await sharp(a.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height], [w, h]);
  });
});
