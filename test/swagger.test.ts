/**
 * Swagger UI's "Try it out" in a real browser (issue 44): Playwright driving Debian's Chromium through every
 * operation of `/docs` as a new user does — expand it, "Try it out", choose a file where the operation takes
 * one, fill a path parameter that must name something real (a job id), "Execute" — and each answer is 2xx.
 * The server runs with API_KEYS, so the user first clicks "Authorize" and pastes a key (the admin reload
 * needs one). This replays what the browser sends (every form field, the empty ones included), not our
 * examples. Skipped, with the reason printed, only when no Chromium is installed.
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
import { buildReadyApp, colourPhoto, formData, grayPhoto, maskPng, repoRoot } from './helper.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (bash scripts/setup.sh --trainer installs Debian's chromium)`;
if (skip) console.log(`# swagger tests skipped: ${skip}`);
const TIMEOUT_MS = 120_000;
const KEY = 'swagger-test-key';

describe('Swagger UI "Try it out" in Chromium', { skip }, () => {
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let page: Page;
  let dir: string;
  const files: Record<string, string> = {};
  before(async () => {
    app = await buildReadyApp({ API_KEYS: KEY, MAX_EVENT_LOOP_DELAY_MS: '0', JOB_CONCURRENCY: '1' });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-swagger-'));
    await mkdir(path.join(repoRoot, 'test-results'), { recursive: true });
    const colour = await sharp(await colourPhoto()).resize(160, 106).png().toBuffer();
    files.image = path.join(dir, 'photo.png');
    await writeFile(files.image, colour);
    files.mask = path.join(dir, 'mask.png');
    await writeFile(files.mask, await maskPng(160, 106, [[40, 30, 32, 24, 255]]));
    page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    await page.goto(`${base}/docs`);
    await page.waitForSelector('.opblock');
    // Authorize: paste the key once
    await page.click('button.authorize');
    await page.fill('.auth-container input', KEY);
    await page.click('.auth-btn-wrapper button.authorize');
    await page.click('.auth-btn-wrapper button.btn-done');
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A job id that exists (GET) or is still queued (DELETE): two async upscales, the second waits behind the first. */
  async function queuedJob(): Promise<string> {
    const big = await sharp(await colourPhoto()).resize(640, 426).png().toBuffer();
    const submit = async (data: Buffer) => {
      const res = await fetch(`${base}/v1/upscale`, { method: 'POST', body: formData({ image: { data, type: 'image/png' } }), headers: { prefer: 'respond-async', authorization: `Bearer ${KEY}` } });
      assert.equal(res.status, 202);
      return (await res.json() as { id: string }).id;
    };
    await submit(big);
    return submit(await grayPhoto());
  }

  test('every operation answers 2xx', async () => {
    const ops = await page.$$eval('.opblock', (els) => els.map((e) => e.id));
    assert.ok(ops.length >= 21, `operations: ${ops.length}`);
    const results: Record<string, string> = {};
    for (const id of ops) {
      const op = page.locator(`#${id}`);
      const method = (await op.locator('.opblock-summary-method').textContent())!.trim();
      const route = (await op.locator('.opblock-summary-path').getAttribute('data-path'))!;
      await op.locator('.opblock-summary').first().click();
      await op.locator('.try-out__btn').click();
      if (route.includes('{id}')) {
        const job = await queuedJob();
        await op.locator('tr[data-param-name="id"] input').fill(job);
      }
      // the image (the first file input) and an inpaint mask (the second); the hints file stays empty, and
      // explain's example model (fashion-an) takes none
      if (route !== '/v1/explain') {
        const inputs = op.locator('input[type=file]');
        const n = await inputs.count();
        if (n > 0) await inputs.nth(0).setInputFiles(files.image!);
        if (n > 1 && route === '/v1/inpaint') await inputs.nth(1).setInputFiles(files.mask!);
      }
      await op.locator('button.execute').click();
      const status = op.locator('.live-responses-table tr.response .response-col_status').first();
      await status.waitFor().catch(async (err) => {
        // what the user would see (test-results/ is git-ignored), and the operations that passed before
        await page.screenshot({ path: path.join(repoRoot, 'test-results', 'swagger-failed.png') }).catch(() => undefined);
        throw new Error(`${method} ${route}: no response shown (${(err as Error).message}); before it: ${JSON.stringify(results)}`);
      });
      const code = (await status.textContent())!.trim();
      results[`${method} ${route}`] = code;
      await op.locator('.opblock-summary').first().click(); // collapse
    }
    const failed = Object.entries(results).filter(([, c]) => !/^2\d\d/.test(c));
    assert.deepEqual(failed, [], `not 2xx: ${JSON.stringify(failed)} (all: ${JSON.stringify(results)})`);
  });
});
