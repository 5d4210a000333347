/**
 * The try-it page (`GET /`, public/) in a real browser: Playwright (playwright-core from npm) driving
 * Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH) against the real app listening on a port.
 * For each panel (colorize, hints, inpaint, upscale, generate) it does what a person does (choose a file, paint a stroke with mouse events, click or
 * use the keyboard), waits for the result and checks the displayed image: its size, and that it differs
 * from the input where it should (colour added; inpainted only inside the painted hole). Also: problem
 * details shown in words, "busy, retrying" on a 503 with Retry-After, the API token field with
 * API_KEYS, and a narrow (mobile) window. Screenshots go to test-results/ (git-ignored).
 * Skipped, with the reason printed, only when no Chromium is installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildReadyApp, fixturesDir, repoRoot } from './helper.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (bash scripts/setup.sh --trainer installs Debian's chromium)`;
if (skip) console.log(`# browser tests skipped: ${skip}`);
const ARTIFACTS = path.join(repoRoot, 'test-results');
// CI shares 2 cores with image builds and model runs: wait generously for pages and results.
const TIMEOUT_MS = 120_000;

/** Pixel statistics of an <img> as the page shows it (decoded by the browser). */
async function pixels(page: Page, selector: string): Promise<{ w: number; h: number; data: number[] }> {
  return page.$eval(selector, (img) => {
    const el = img as HTMLImageElement;
    const c = document.createElement('canvas');
    c.width = el.naturalWidth;
    c.height = el.naturalHeight;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(el, 0, 0);
    return { w: c.width, h: c.height, data: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) };
  });
}

async function newPage(browser: Browser, options?: Parameters<Browser['newPage']>[0]): Promise<Page> {
  const page = await browser.newPage(options);
  page.setDefaultTimeout(TIMEOUT_MS);
  return page;
}

const chroma = (d: number[]) => { let s = 0; for (let i = 0; i < d.length; i += 4) s += Math.abs(d[i]! - d[i + 1]!) + Math.abs(d[i + 1]! - d[i + 2]!); return s / (d.length / 4); };

describe('try-it page in Chromium', { skip }, () => {
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let dir: string;
  let photoPng: string;
  before(async () => {
    // Playwright runs in this process and moves large pixel arrays through it: load shedding on event-loop
    // delay would answer the page with 503 when that blocks the loop on a busy machine, so it is off here.
    app = await buildReadyApp({ MAX_EVENT_LOOP_DELAY_MS: '0' });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-browser-'));
    photoPng = path.join(dir, 'china.png'); // PNG: the browser decodes it bit-exactly, as the service does
    await writeFile(photoPng, await sharp(path.join(fixturesDir, 'china-small.jpg')).png().toBuffer());
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('Colorize: choose a colour photo, see it gray, colorize, compare, download', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.setInputFiles('#colorize-file', photoPng);
    await page.waitForFunction(() => (document.getElementById('colorize-input') as HTMLImageElement).naturalWidth > 0);
    const input = await pixels(page, '#colorize-input');
    assert.equal(chroma(input.data), 0, 'the chosen colour photo is shown gray first');
    await page.click('#colorize-run');
    await page.waitForFunction(() => (document.getElementById('colorize-output') as HTMLImageElement).naturalWidth > 0);
    const out = await pixels(page, '#colorize-output');
    const meta = await sharp(photoPng).metadata();
    assert.deepEqual([out.w, out.h], [meta.width, meta.height]);
    assert.ok(chroma(out.data) > 1, `the output has colour (mean |R−G|+|G−B| = ${chroma(out.data).toFixed(2)})`);
    assert.equal(await page.isVisible('#colorize-compare'), true);
    await page.fill('#colorize-slider', '20');
    assert.equal(await page.$eval('#colorize-compare-after', (e) => (e as HTMLElement).style.width), '20%');
    assert.match(String(await page.getAttribute('#colorize-download', 'href')), /^blob:/);
    assert.match(await page.textContent('#colorize-status') ?? '', /Done/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'colorize.png'), fullPage: true });
    await page.close();
  });

  test('What the network sees: under a colorize result, PONO mu/sigma maps; under generated samples, the AN regions and sampling points', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    assert.equal(await page.isVisible('#colorize-explain'), false, 'no panel before a result');
    await page.setInputFiles('#colorize-file', photoPng);
    await page.waitForFunction(() => !(document.getElementById('colorize-run') as HTMLButtonElement).disabled);
    await page.click('#colorize-run');
    await page.waitForFunction(() => (document.getElementById('colorize-compare-output') as HTMLImageElement).naturalWidth > 0);
    await page.click('#colorize-explain summary');
    await page.waitForFunction(() => document.querySelectorAll('#colorize-maps img').length === 4 || /Error/.test(document.getElementById('colorize-explain-status')!.textContent ?? ''));
    assert.doesNotMatch(await page.textContent('#colorize-explain-status') ?? '', /Error/);
    const kinds = await page.$$eval('#colorize-maps img', (imgs) => imgs.map((i) => (i as HTMLImageElement).dataset.kind));
    assert.deepEqual(kinds, ['pono_mu', 'pono_sigma', 'pono_mu', 'pono_sigma']);
    await page.waitForFunction(() => [...document.querySelectorAll('#colorize-maps img')].every((i) => (i as HTMLImageElement).naturalWidth > 0));
    const m = await pixels(page, '#colorize-maps img');
    assert.deepEqual([m.w, m.h], [160, 112], 'PONO 1 is at half the input size padded to 16 (the default colorizer\'s multiple)');
    assert.match(await page.textContent('#colorize-maps figcaption') ?? '', /PONO mean μ, down1, 160×112/);
    await page.click('#generate-run');
    await page.waitForFunction(() => (document.getElementById('generate-output') as HTMLImageElement).naturalWidth > 0);
    await page.click('#generate-explain summary');
    await page.waitForFunction(() => document.querySelectorAll('#generate-maps img').length === 2);
    const gk = await page.$$eval('#generate-maps img', (imgs) => imgs.map((i) => (i as HTMLImageElement).dataset.kind));
    assert.deepEqual(gk, ['an_layout', 'an_sampling']);
    assert.match(await page.textContent('#generate-explain-status') ?? '', /2 maps of fashion-an@/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'explain.png'), fullPage: true });
    await page.close();
  });

  test('Sample photos: one click loads a photo into each panel; the colorize result is shown once; a favicon, no 404', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    const missing: string[] = [];
    page.on('response', (r) => { if (r.status() === 404) missing.push(r.url()); });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.click('#colorize-sample');
    await page.waitForFunction(() => (document.getElementById('colorize-input') as HTMLImageElement).naturalWidth > 0);
    assert.equal(await page.isVisible('#colorize-output-figure'), true);
    await page.click('#colorize-run');
    await page.waitForFunction(() => (document.getElementById('colorize-compare-output') as HTMLImageElement).naturalWidth > 0);
    assert.equal(await page.isVisible('#colorize-compare'), true);
    assert.equal(await page.isVisible('#colorize-output-figure'), false, 'the result is not shown a second time');
    await page.click('#inpaint-sample');
    await page.waitForFunction(() => !(document.getElementById('inpaint-painter') as HTMLElement).hidden);
    assert.match(await page.textContent('#inpaint-status') ?? '', /china\.jpg/);
    assert.equal(await page.$eval('link[rel=icon]', (l) => (l as HTMLLinkElement).href.endsWith('/favicon.svg')), true);
    assert.equal((await page.request.get(`${base}/favicon.svg`)).status(), 200);
    assert.deepEqual(missing, []);
    await page.close();
  });

  test('Upscale: the sample JPEG, scale 4 then 2: the result is that many times the input, the slider compares, download', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.click('#upscale-sample');
    await page.waitForFunction(() => !(document.getElementById('upscale-run') as HTMLButtonElement).disabled);
    const input = await pixels(page, '#upscale-compare-before');
    await page.click('#upscale-run');
    await page.waitForFunction(() => (document.getElementById('upscale-compare-output') as HTMLImageElement).naturalWidth > 0);
    await page.waitForFunction(() => /Done/.test(document.getElementById('upscale-status')!.textContent ?? ''));
    const out = await pixels(page, '#upscale-compare-output');
    assert.deepEqual([out.w, out.h], [4 * input.w, 4 * input.h]);
    assert.match(await page.getAttribute('#upscale-run', 'data-model') ?? '', /^upscale-pono@/);
    assert.equal(await page.isVisible('#upscale-compare'), true);
    assert.equal(await page.isVisible('#upscale-download'), true);
    // the before image is shown at the result's size, so the two halves of the slider line up
    const sizes = await page.evaluate(() => [document.getElementById('upscale-compare-before')!.clientWidth, document.getElementById('upscale-compare-output')!.clientWidth]);
    assert.equal(sizes[0], sizes[1]);
    await page.fill('#upscale-slider', '80');
    const w = await page.$eval('#upscale-compare-after', (el) => (el as HTMLElement).style.width);
    assert.equal(w, '80%');
    await page.screenshot({ path: path.join(ARTIFACTS, 'upscale.png') });
    await page.selectOption('#upscale-scale', '2');
    await page.click('#upscale-run');
    await page.waitForFunction((w2) => (document.getElementById('upscale-compare-output') as HTMLImageElement).naturalWidth === w2, 2 * input.w);
    await page.close();
  });

  test('Colour hints: click the gray photo with a blue brush, the default colorizer answers and the spot is bluer', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.click('#colorize-sample');
    await page.waitForFunction(() => (document.getElementById('colorize-input') as HTMLImageElement).naturalWidth > 0);
    await page.click('#colorize-run'); // automatic first
    await page.waitForFunction(() => (document.getElementById('colorize-compare-output') as HTMLImageElement).naturalWidth > 0);
    const auto = await pixels(page, '#colorize-compare-output');
    assert.equal(await page.getAttribute('#colorize-run', 'data-hints'), '0');
    await page.$eval('#colorize-hint-colour', (el) => { (el as HTMLInputElement).value = '#1144ff'; });
    const box = (await page.locator('#colorize-hints').boundingBox())!;
    for (const [fx, fy] of [[0.3, 0.3], [0.35, 0.3], [0.3, 0.35]] as const) await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
    // keyboard: focus the picture, move, Space places one more
    await page.focus('#colorize-hints');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Space');
    assert.match(await page.textContent('#colorize-hint-count') ?? '', /^4 hints/);
    await page.$eval('#colorize-compare-output', (el) => (el as HTMLImageElement).removeAttribute('src'));
    await page.click('#colorize-run');
    await page.waitForFunction(() => (document.getElementById('colorize-compare-output') as HTMLImageElement).naturalWidth > 0);
    assert.match(String(await page.getAttribute('#colorize-run', 'data-model')), /^colorize-pono@3\./);
    assert.ok(Number(await page.getAttribute('#colorize-run', 'data-hints')) > 0);
    const hinted = await pixels(page, '#colorize-compare-output');
    const blue = (p: { w: number; data: number[] }, fx: number, fy: number) => {
      const x = Math.round(fx * p.w), y = Math.round(fy * (p.data.length / 4 / p.w));
      const i = 4 * (y * p.w + x);
      return p.data[i + 2]! - (p.data[i]! + p.data[i + 1]!) / 2;
    };
    assert.ok(blue(hinted, 0.31, 0.31) > blue(auto, 0.31, 0.31) + 5, `blueness ${blue(auto, 0.31, 0.31)} -> ${blue(hinted, 0.31, 0.31)}`);
    await page.close();
  });

  test('Inpaint: paint a stroke with the mouse, undo and clear work, the hole is filled and nothing else changes', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.setInputFiles('#inpaint-file', photoPng);
    await page.waitForSelector('#inpaint-painter:not([hidden])');
    const stroke = async (y: number) => {
      await page.locator('#inpaint-mask').scrollIntoViewIfNeeded();
      const box = (await page.locator('#inpaint-mask').boundingBox())!; // after any scroll a click caused
      await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * y);
      await page.mouse.down();
      for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width * (0.3 + 0.04 * i), box.y + box.height * y);
      await page.mouse.up();
    };
    await stroke(0.3);
    assert.equal(await page.isEnabled('#inpaint-run'), true);
    await page.click('#inpaint-undo');
    assert.equal(await page.isEnabled('#inpaint-run'), false, 'undo removed the only stroke');
    await stroke(0.3);
    await stroke(0.6);
    await page.click('#inpaint-clear');
    assert.equal(await page.isEnabled('#inpaint-run'), false, 'clear removed every stroke');
    await stroke(0.5);
    // the mask as painted (overlay alpha), read before the run
    const overlay = await page.$eval('#inpaint-mask', (c) => {
      const cv = c as HTMLCanvasElement;
      return Array.from(cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data).filter((_, i) => i % 4 === 3);
    });
    await page.click('#inpaint-run');
    await page.waitForFunction(() => (document.getElementById('inpaint-output') as HTMLImageElement).naturalWidth > 0);
    const out = await pixels(page, '#inpaint-output');
    const original = await page.evaluate(async (url) => {
      const img = new Image();
      img.src = url;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      c.getContext('2d')!.drawImage(img, 0, 0);
      return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
    }, `data:image/png;base64,${(await sharp(photoPng).png().toBuffer()).toString('base64')}`);
    const meta = await sharp(photoPng).metadata();
    assert.deepEqual([out.w, out.h], [meta.width, meta.height]);
    let inside = 0;
    let insideChanged = 0;
    let outsideChanged = 0;
    for (let p = 0; p < overlay.length; p++) {
      const differs = [0, 1, 2].some((k) => out.data[4 * p + k] !== original[4 * p + k]);
      if (overlay[p]! > 0) { inside++; if (differs) insideChanged++; } else if (differs) outsideChanged++;
    }
    assert.ok(inside > 100, `painted ${inside} px`);
    assert.equal(outsideChanged, 0, 'pixels outside the painted hole are the photo\'s own');
    assert.ok(insideChanged > inside * 0.5, `${insideChanged} of ${inside} hole pixels changed`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'inpaint.png'), fullPage: true });
    await page.close();
  });

  test('Inpaint with the keyboard only: focus the picture, arrows move the brush, Space paints, Enter fills', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.setInputFiles('#inpaint-file', photoPng);
    await page.waitForSelector('#inpaint-painter:not([hidden])');
    await page.focus('#inpaint-mask');
    for (const key of ['ArrowRight', 'ArrowRight', 'Space', 'ArrowDown', 'Space']) await page.keyboard.press(key);
    assert.equal(await page.isEnabled('#inpaint-run'), true);
    await page.focus('#inpaint-run');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (document.getElementById('inpaint-output') as HTMLImageElement).naturalWidth > 0);
    await page.close();
  });

  test('Generate: class names from /v1/models, seed shown for reproduction, interpolation row', async () => {
    const page = await newPage(browser, { viewport: { width: 1100, height: 900 } });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.waitForFunction(() => (document.getElementById('generate-class') as HTMLSelectElement).options.length === 10);
    assert.deepEqual((await page.$$eval('#generate-class option', (o) => o.map((x) => x.textContent))).slice(0, 2), ['T-shirt/top', 'Trouser']);
    await page.selectOption('#generate-class', { label: 'Sneaker' });
    await page.fill('#generate-count', '4');
    await page.fill('#generate-size', '32');
    await page.click('#generate-random');
    const seed = await page.inputValue('#generate-seed');
    assert.match(seed, /^\d+$/);
    await page.click('#generate-run');
    await page.waitForFunction(() => (document.getElementById('generate-output') as HTMLImageElement).naturalWidth > 0);
    const grid = await pixels(page, '#generate-output');
    assert.deepEqual([grid.w, grid.h], [64, 64]); // 4 samples of 32 px, 2 columns
    assert.match(await page.textContent('#generate-seed-used') ?? '', new RegExp(`seed ${seed}\\b`));
    await page.selectOption('#generate-to', { label: 'Ankle boot' });
    await page.fill('#generate-steps', '5');
    await page.click('#generate-run');
    await page.waitForFunction(() => (document.getElementById('generate-output') as HTMLImageElement).naturalWidth === 160);
    await page.screenshot({ path: path.join(ARTIFACTS, 'generate.png'), fullPage: true });
    await page.close();
  });

  test('API errors are shown in words; a busy server (503 + Retry-After) is retried once', async () => {
    const page = await newPage(browser);
    assert.equal((await page.goto(base))?.status(), 200);
    await page.waitForFunction(() => (document.getElementById('generate-class') as HTMLSelectElement).options.length === 10);
    await page.fill('#generate-size', '8'); // below the API's minimum of 16
    await page.click('#generate-run');
    await page.waitForFunction(() => /Error:/.test(document.getElementById('generate-status')!.textContent ?? ''));
    assert.match(await page.textContent('#generate-status') ?? '', /size/);
    await page.fill('#generate-size', '28');
    let calls = 0;
    await page.route('**/v1/generate', async (route) => {
      if (calls++ === 0) {
        await route.fulfill({ status: 503, headers: { 'retry-after': '1', 'content-type': 'application/problem+json' }, body: JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'queue full' }) });
      } else {
        await route.continue();
      }
    });
    await page.click('#generate-run');
    await page.waitForFunction(() => /busy, retrying in 1 s/.test(document.getElementById('generate-status')!.textContent ?? ''));
    await page.waitForFunction(() => /Done/.test(document.getElementById('generate-status')!.textContent ?? ''));
    assert.equal(calls, 2);
    await page.close();
  });

  test('with API_KEYS: without the token the page says so, with it the call succeeds', async () => {
    const secured = await buildReadyApp({ API_KEYS: 'page-token', MAX_EVENT_LOOP_DELAY_MS: '0' });
    const url = await secured.listen({ port: 0, host: '127.0.0.1' });
    try {
      const page = await newPage(browser);
      assert.equal((await page.goto(url))?.status(), 200);
      await page.waitForFunction(() => /API token/.test(document.getElementById('generate-status')!.textContent ?? ''));
      await page.click('#auth summary');
      await page.fill('#token', 'page-token');
      await page.reload();
      assert.equal(await page.inputValue('#token'), 'page-token', 'kept in sessionStorage');
      await page.waitForFunction(() => (document.getElementById('generate-class') as HTMLSelectElement).options.length === 10);
      await page.click('#generate-run');
      await page.waitForFunction(() => (document.getElementById('generate-output') as HTMLImageElement).naturalWidth > 0);
      await page.close();
    } finally {
      await secured.close();
    }
  });

  test('narrow (mobile) window: no horizontal scrolling, the panels stack', async () => {
    const page = await newPage(browser, { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
    assert.equal((await page.goto(base))?.status(), 200);
    await page.setInputFiles('#inpaint-file', photoPng);
    await page.waitForSelector('#inpaint-painter:not([hidden])');
    const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    assert.ok(scroll <= inner, `page is ${scroll} px wide in a ${inner} px window`);
    const box = (await page.locator('#inpaint-mask').boundingBox())!;
    assert.ok(box.width <= inner, 'the painting canvas fits the window');
    await page.screenshot({ path: path.join(ARTIFACTS, 'mobile.png'), fullPage: true });
    await page.close();
  });
});
