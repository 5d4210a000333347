/**
 * Timeouts (issue 19) on a real listening server: a slow-loris client (headers one byte at a time) and a
 * trickling upload are cut with 408 problem+json and counted in `normgen_client_errors_total`; a stalled
 * connection is closed after IDLE_TIMEOUT_MS; the server keeps serving. Also the config check.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config.js';
import { buildReadyApp } from './helper.js';

let app: FastifyInstance;
let port: number;
before(async () => {
  app = await buildReadyApp({ REQUEST_TIMEOUT_MS: '2500', HEADERS_TIMEOUT_MS: '1200', IDLE_TIMEOUT_MS: '1500' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as net.AddressInfo).port;
});
after(async () => app.close());

/** Send `head` then `drip` one byte every `everyMs`; resolves with what the server answered and when it closed. */
function slowClient(head: string, drip: string, everyMs: number): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    let i = 0;
    const timer = setInterval(() => { if (i < drip.length && !socket.destroyed) socket.write(drip[i++]!); }, everyMs);
    socket.on('connect', () => socket.write(head));
    socket.on('data', (d) => { reply += String(d); });
    socket.on('error', () => { /* reset after the reply: fine */ });
    socket.on('close', () => { clearInterval(timer); resolve({ reply, ms: Date.now() - t0 }); });
    setTimeout(() => { clearInterval(timer); socket.destroy(); reject(new Error(`not cut after 20 s; got ${JSON.stringify(reply)}`)); }, 20_000);
  });
}

const counter = async (kind: string) => {
  const m = /normgen_client_errors_total\{kind="([^"]+)"\} (\d+)/g;
  const text = (await app.inject('/metrics')).body;
  return [...text.matchAll(m)].filter((x) => x[1] === kind).reduce((a, x) => a + Number(x[2]), 0);
};

test('slow-loris headers are cut after HEADERS_TIMEOUT_MS with 408 and counted', async () => {
  const before = await counter('request-timeout'); // Node reports a headers timeout as a request timeout
  const { reply, ms } = await slowClient('GET /healthz HTTP/1.1\r\n', 'Host: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200), 250);
  assert.match(reply, /^HTTP\/1\.1 408/);
  assert.match(reply, /application\/problem\+json/);
  assert.ok(ms < 6000, `cut after ${ms} ms`);
  assert.equal(await counter('request-timeout'), before + 1);
});

test('an upload trickling one byte at a time is cut after REQUEST_TIMEOUT_MS', async () => {
  const before = await counter('request-timeout');
  const head = 'POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n';
  const { reply, ms } = await slowClient(head, '{"image":"' + 'A'.repeat(500), 200);
  assert.match(reply, /^HTTP\/1\.1 408/);
  assert.ok(ms < 8000, `cut after ${ms} ms`);
  assert.equal(await counter('request-timeout'), before + 1);
});

test('a connection that stops sending mid-body is closed after IDLE_TIMEOUT_MS; the server still serves', async () => {
  const before = await counter('idle-timeout');
  const head = 'POST /v1/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"im';
  const { ms } = await slowClient(head, '', 100_000);
  assert.ok(ms >= 1000 && ms < 6000, `closed after ${ms} ms`);
  assert.ok(await counter('idle-timeout') + await counter('request-timeout') > before, 'counted');
  const ok = await fetch(`http://127.0.0.1:${port}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"class":1,"seed":2}' });
  assert.equal(ok.status, 200);
});

test('timeouts are validated at start', () => {
  assert.throws(() => loadConfig({ REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '5000' }), /HEADERS_TIMEOUT_MS/);
  assert.equal(loadConfig({}).requestTimeoutMs, 120_000);
});

test('a client that disconnects while queued frees its slot: its run is skipped', async () => {
  const { default: sharp } = await import('sharp');
  const big = await sharp({ create: { width: 1400, height: 1400, channels: 3, background: '#777' } }).png().toBuffer();
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#777' } }).png().toBuffer();
  const form = (data: Buffer) => { const f = new FormData(); f.append('image', new Blob([new Uint8Array(data)], { type: 'image/png' }), 'x.png'); return f; };
  const own = await buildReadyApp({ BATCHING: '0' }); // default timeouts: the slow run must not be cut
  await own.listen({ port: 0, host: '127.0.0.1' });
  const ownPort = (own.server.address() as net.AddressInfo).port;
  after(async () => own.close());
  const batcher = own.models.get('colorize-pono')!.batcher!;
  const before = batcher.canceled;
  const slow = fetch(`http://127.0.0.1:${ownPort}/v1/translate`, { method: 'POST', body: form(big) }); // occupies the worker
  await new Promise((r) => setTimeout(r, 300));
  const gone = new AbortController();
  const queued = fetch(`http://127.0.0.1:${ownPort}/v1/translate`, { method: 'POST', body: form(small), signal: gone.signal }).catch(() => 'aborted');
  for (let i = 0; batcher.depth === 0 && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(batcher.depth >= 1, 'the second request waits in the queue');
  gone.abort();
  assert.equal(await queued, 'aborted');
  for (let i = 0; batcher.canceled === before && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(batcher.canceled, before + 1, 'taken out of the queue, never run');
  assert.equal((await slow).status, 200);
});

test('the idle timeout does not fire while the server computes: a request waiting and computing longer than IDLE_TIMEOUT_MS answers 200', async () => {
  const { default: sharp } = await import('sharp');
  // IDLE_TIMEOUT_MS is 1500 here. One 704² colorization takes 0.8 s on an idle 2-core machine, several seconds on
  // a loaded one: four at once (one worker, at most 1024² pixels per pass) keep the last one's socket silent for
  // well over 1.5 s on any machine (queued, then computing) — it must still be answered.
  const photo = await sharp(await (await import('./helper.js')).grayPhoto()).resize(704, 704, { fit: 'fill' }).png().toBuffer();
  const send = async () => {
    const f = new FormData();
    f.append('image', new Blob([new Uint8Array(photo)], { type: 'image/png' }), 'x.png');
    const t0 = Date.now();
    const r = await fetch(`http://127.0.0.1:${port}/v1/translate`, { method: 'POST', body: f });
    const bytes = (await r.arrayBuffer()).byteLength;
    return { status: r.status, bytes, ms: Date.now() - t0 };
  };
  const replies = await Promise.all(Array.from({ length: 4 }, send));
  for (const r of replies) {
    assert.equal(r.status, 200);
    assert.ok(r.bytes > 10_000);
  }
  const longest = Math.max(...replies.map((r) => r.ms));
  assert.ok(longest > 1500, `the longest request took ${longest} ms, not longer than the idle timeout: the test proves nothing`);
});
