/**
 * Container integration tests (testcontainers 11, Ryuk disabled because it needs an image pull).
 *
 * Flow: build the real image offline (`scripts/docker-build.sh`: engine, debootstrap base, Dockerfile),
 * start a container, wait for `GET /readyz` = 200, exercise every task endpoint over the mapped port with
 * the real held-out photos and with bad inputs, compare the container's answers with the same requests
 * answered by the app in this process (same models, same libraries: translate/inpaint pixels within 2
 * levels, generate's PNG bytes identical), then SIGTERM the container while requests are in flight:
 * each gets its 200 before the container exits with code 0.
 *
 * With `CI=true` these tests always run (the build script installs and starts the engine). Elsewhere they
 * run when a Docker engine answers `docker info`, and are skipped with the reason printed otherwise.
 * Environment: IMAGE (default normgen:local), BASE_IMAGE (passed to the build script).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, colourPhoto, diffCounts, formData, grayPhoto, maskPng, multipart, raw, repoRoot } from '../helper.js';

process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const IMAGE = process.env.IMAGE ?? 'normgen:local';
const docker = ['/usr/bin/docker', 'docker'].find((d) => spawnSync(d, ['--version']).status === 0);

/** Why the suite is skipped, or false when it runs. CI never skips: a missing engine is started. */
function skipReason(): string | false {
  if (process.env.CI === 'true') return false;
  if (!docker) return 'no docker client on this machine (run: bash scripts/docker-build.sh, or set CI=true)';
  if (spawnSync(docker, ['info'], { stdio: 'ignore' }).status !== 0) {
    return 'no Docker engine answers `docker info` (start one with: bash scripts/docker-build.sh --engine, or set CI=true)';
  }
  return false;
}

const skip = skipReason();
if (skip) console.log(`# container integration tests skipped: ${skip}`);

/** Largest absolute difference between two same-size images' decoded pixels (0–255). */
async function maxDiff(a: Buffer, b: Buffer): Promise<number> {
  const [x, y] = [await raw(a), await raw(b)];
  assert.deepEqual([x.info.width, x.info.height, x.info.channels], [y.info.width, y.info.height, y.info.channels]);
  let m = 0;
  for (let i = 0; i < x.data.length; i++) m = Math.max(m, Math.abs(x.data[i]! - y.data[i]!));
  return m;
}

describe('the container image', { skip }, () => {
  type Started = import('testcontainers').StartedTestContainer;
  let container: Started;
  let base: string;
  let host: FastifyInstance;
  let logs = '';

  /** POST a multipart form to the container. */
  const post = (route: string, files: Record<string, { data: Buffer; type: string }>, fields: Record<string, string> = {}) =>
    fetch(`${base}${route}`, { method: 'POST', body: formData(files, fields) });
  /** The same multipart request answered by the app in this process. */
  const postHost = async (route: string, files: Record<string, { data: Buffer; type: string }>, fields: Record<string, string> = {}) => {
    const body = multipart(files, fields);
    return host.inject({ method: 'POST', url: route, payload: body.payload, headers: body.headers });
  };

  before(async () => {
    const build = spawnSync('bash', [path.join(repoRoot, 'scripts', 'docker-build.sh')], { cwd: repoRoot, env: { ...process.env, IMAGE }, encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(build.status, 0, `image build failed:\n${build.stderr.slice(-4000)}`);
    console.log(build.stderr.split('\n').filter((l) => l.startsWith('[docker-build]')).join('\n'));

    const { GenericContainer, Wait } = await import('testcontainers');
    const t0 = performance.now();
    container = await new GenericContainer(IMAGE)
      .withExposedPorts(8080)
      .withEnvironment({ WORKERS: '1', INTRA_OP_THREADS: '2', SHUTDOWN_TIMEOUT_MS: '60000' }) // a loaded CI machine: let running passes finish
      .withWaitStrategy(Wait.forHttp('/readyz', 8080).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start();
    console.log(`# container ${IMAGE}: start → /readyz 200 in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    (await container.logs()).on('data', (d: Buffer | string) => { logs += String(d); });
    base = `http://${container.getHost()}:${container.getMappedPort(8080)}`;
    host = await buildReadyApp();
  });

  after(async () => {
    await host?.close();
    if (container) await container.stop({ timeout: 1_000 }).catch(() => undefined);
  });

  test('readiness, health, model list, docs and the non-root user', async () => {
    const ready = await (await fetch(`${base}/readyz`)).json() as { status: string; models: Record<string, string> };
    assert.equal(ready.status, 'ready');
    // every model folder of the repository is in the image and loaded
    const bundled = readdirSync(path.join(repoRoot, 'models'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    assert.ok(bundled.includes('fashion-an') && bundled.includes('colorize-pono'), bundled.join());
    assert.deepEqual(Object.keys(ready.models).sort(), bundled);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const models = await (await fetch(`${base}/v1/models`)).json() as { models: { name: string; version: string }[] };
    assert.deepEqual(models.models.map((m) => m.name).sort(), bundled);
    assert.equal((await fetch(`${base}/openapi.json`)).status, 200);
    const docs = await fetch(`${base}/docs`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
    const id = await container.exec(['id', '-u']);
    assert.equal(id.output.trim(), '10001');
  });

  test('translate: a real photo → a colour image of its size, pixels equal to the host answer (≤ 2 levels)', async () => {
    const photo = await grayPhoto();
    const res = await post('/v1/translate', { image: { data: photo, type: 'image/png' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('x-model') ?? '', /^colorize-pono@\d+\.\d+\.\d+$/);
    const out = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format, meta.channels], [451, 300, 'png', 3]);
    const hostRes = await postHost('/v1/translate', { image: { data: photo, type: 'image/png' } });
    assert.equal(hostRes.statusCode, 200);
    assert.ok(await maxDiff(out, hostRes.rawPayload) <= 2);
  });

  test('inpaint: a real photo and mask → every pixel outside the hole is the input pixel; equal to the host', async () => {
    const photo = await sharp(await colourPhoto()).png().toBuffer();
    const { width: W, height: H } = await sharp(photo).metadata();
    const rect: [number, number, number, number, number] = [120, 70, 60, 50, 255];
    const mask = await maskPng(W!, H!, [rect]);
    const files = { image: { data: photo, type: 'image/png' }, mask: { data: mask, type: 'image/png' } };
    const res = await post('/v1/inpaint', files);
    assert.equal(res.status, 200);
    const out = Buffer.from(await res.arrayBuffer());
    const [o, i] = [await raw(out), await raw(photo)];
    assert.deepEqual([o.info.width, o.info.height], [W, H]);
    const inHole = (k: number) => { const x = k % W!, y = Math.floor(k / W!); return x >= rect[0] && x < rect[0] + rect[2] && y >= rect[1] && y < rect[1] + rect[3]; };
    const { inside, outside } = diffCounts(o.data, i.data, inHole);
    assert.equal(outside, 0, 'a pixel outside the mask changed');
    assert.ok(inside > 0, 'the hole was not filled');
    assert.ok(await maxDiff(out, (await postHost('/v1/inpaint', files)).rawPayload) <= 2);
  });

  test('generate: same seed → same bytes, and the same bytes as the host', async () => {
    const body = JSON.stringify({ class: 'sneaker', seed: 42, count: 4 });
    const send = () => fetch(`${base}/v1/generate`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const [a, b] = [await send(), await send()];
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('x-seed'), '42');
    const [ba, bb] = [Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer())];
    assert.ok(ba.equals(bb));
    const h = await host.inject({ method: 'POST', url: '/v1/generate', payload: body, headers: { 'content-type': 'application/json' } });
    assert.ok(ba.equals(h.rawPayload), 'the container and the host answer the same seed with different bytes');
  });

  test('bad inputs get problem+json with their status, and the container keeps serving', async () => {
    const photo = await grayPhoto();
    const cases: [string, Promise<Response>, number][] = [
      ['translate without image', post('/v1/translate', {}, { output_format: 'png' }), 400],
      ['translate with a text file', post('/v1/translate', { image: { data: Buffer.from('not an image'), type: 'text/plain' } }), 415],
      ['translate with an unknown model', post('/v1/translate', { image: { data: photo, type: 'image/png' } }, { model: 'nope' }), 404],
      ['inpaint with a mask of another size', post('/v1/inpaint', { image: { data: photo, type: 'image/png' }, mask: { data: await maskPng(64, 64, [[0, 0, 8, 8, 255]]), type: 'image/png' } }), 422],
      ['generate with an unknown class', fetch(`${base}/v1/generate`, { method: 'POST', body: '{"class":"unicorn"}', headers: { 'content-type': 'application/json' } }), 422],
      ['generate with broken JSON', fetch(`${base}/v1/generate`, { method: 'POST', body: '{"class":', headers: { 'content-type': 'application/json' } }), 400],
    ];
    for (const [what, pending, status] of cases) {
      const res = await pending;
      assert.equal(res.status, status, what);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
      const problem = await res.json() as { status: number; title: string };
      assert.equal(problem.status, status, what);
    }
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });

  test('SIGTERM with requests in flight: running passes answered 200, queued ones 503 at once, then exit code 0', async () => {
    const photo = await sharp(await grayPhoto()).resize(600, 400).png().toBuffer();
    const before = (logs.match(/"url":"\/v1\/translate"/g) ?? []).length;
    const inflight = [0, 1, 2].map(() => post('/v1/translate', { image: { data: photo, type: 'image/png' } }));
    // Wait until the server has received all three (its request log), so they are truly in flight.
    for (let i = 0; (logs.match(/"url":"\/v1\/translate"/g) ?? []).length < before + 3; i++) {
      assert.ok(i < 300, 'the requests never reached the server');
      await new Promise((r) => setTimeout(r, 20));
    }
    // ... and a pass is running (normgen_inference_running), so SIGTERM meets one running and the rest queued
    for (let i = 0; !/normgen_inference_running\{model="colorize-pono"\} [1-9]/.test(await (await fetch(`${base}/metrics`)).text()); i++) {
      assert.ok(i < 600, 'no pass started');
      await new Promise((r) => setTimeout(r, 20));
    }
    const { getContainerRuntimeClient } = await import('testcontainers');
    const id = container.getId();
    const stopped = container.stop({ timeout: 30_000, remove: false }); // SIGTERM, SIGKILL only after 30 s
    const replies = await Promise.all(inflight);
    const codes = replies.map((r) => r.status);
    assert.ok(codes.includes(200) && codes.every((c) => c === 200 || c === 503), `codes ${codes}`);
    for (const r of replies) {
      if (r.status === 200) assert.equal((await sharp(Buffer.from(await r.arrayBuffer())).metadata()).width, 600);
      else assert.equal(r.headers.get('retry-after'), '1');
    }
    await stopped;
    const client = await getContainerRuntimeClient();
    const info = await client.container.inspect(client.container.getById(id));
    assert.equal(info.State.ExitCode, 0, logs.slice(-2000));
    assert.match(logs, /SIGTERM: closing/);
    await client.container.remove(client.container.getById(id), { removeVolumes: true });
    container = undefined as unknown as Started;
  });
});
