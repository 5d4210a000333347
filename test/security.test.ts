/**
 * Authorization is decided by the route the router matched (issue 28): a real server on 127.0.0.1 with
 * API_KEYS set, requests written raw on TCP sockets (no client normalises the target), every protected
 * route in many spellings — percent-encoded characters (upper and lower hex), every character encoded,
 * absolute-form targets, trailing slashes, `;` parameters, dot segments, `%2f`, `//`, upper case, a
 * query, a fragment. Without a valid token each one is 401 (or 400 when the URL parser refuses it); never
 * a 2xx, never a route's own answer. With the token the canonical, encoded and absolute-form spellings
 * reach the route. Public routes stay open. The rate limit (RATE_LIMIT_PER_MIN) keys on configured API
 * keys only: invented tokens and encoded paths share the client's budget.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp } from './helper.js';

interface RawReply { status: number; headers: string; body: string }

/** Send `request` (raw bytes) to 127.0.0.1:`port` on a fresh socket and read the reply until the server closes. */
function rawRequest(port: number, request: string | Buffer): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(20_000, () => { socket.destroy(); reject(new Error('raw request timed out')); });
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (!m) { reject(new Error(`no status line in ${JSON.stringify(text.slice(0, 80))}`)); return; }
      resolve({ status: Number(m[1]), headers: head, body });
    });
    socket.write(request);
  });
}

/** A raw HTTP/1.1 request for `target` (sent exactly as given), with an optional JSON body and bearer token. */
function raw(method: string, target: string, opts: { token?: string; json?: string } = {}): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  if (opts.token) lines.push(`Authorization: Bearer ${opts.token}`);
  if (opts.json !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(opts.json)}`);
  else if (method === 'POST') lines.push('Content-Length: 0');
  return `${lines.join('\r\n')}\r\n\r\n${opts.json ?? ''}`;
}

const enc = (c: string, lower = false) => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${lower ? h : h.toUpperCase()}`;
};

/** Every spelling of `path` that a router or proxy might take for it (the audit's and more). */
export function spellings(path: string): string[] {
  const out = new Set<string>([path]);
  for (let i = 1; i < path.length; i++) {
    if (path[i] === '/') continue;
    out.add(path.slice(0, i) + enc(path[i]!) + path.slice(i + 1));
    if (/[a-z]/.test(path[i]!)) out.add(path.slice(0, i) + enc(path[i]!, true) + path.slice(i + 1));
  }
  out.add(path.split('/').map((seg) => [...seg].map((c) => enc(c)).join('')).join('/'));
  out.add(`http://x${path}`);
  out.add(`http://127.0.0.1${path.replace('/v', '/%76')}`);
  out.add(`${path}/`);
  out.add(path.replace(/^\/(v\d)/, '/$1;x=1'));
  out.add(`${path};jsessionid=1`);
  out.add(path.replace(/^\/(v\d)\//, '/$1/../$1/'));
  out.add(path.replace(/^\/(v\d)\//, '/$1/./'));
  out.add(path.replace(/^\/(v\d)\//, '/$1%2f'));
  out.add(path.replace(/^\/(v\d)\//, '/$1%2F'));
  out.add(`/${path}`);
  out.add(path.replace(/^\/(v\d)\//, '/$1//'));
  out.add(path.toUpperCase());
  out.add(`${path}?x=1`);
  out.add(`${path}#frag`);
  out.add(`${path}%23frag`);
  out.add(`${path}%3Fx=1`);
  return [...out];
}

const PROTECTED: [method: string, path: string, json?: string][] = [
  ['POST', '/v1/translate', '{"image":"AAAA"}'],
  ['POST', '/v1/colorize', '{"image":"AAAA"}'],
  ['POST', '/v1/inpaint', '{"image":"AAAA","mask":"AAAA"}'],
  ['POST', '/v1/generate', '{"class":1}'],
  ['GET', '/v1/generate?class=1'],
  ['GET', '/v1/models'],
  ['GET', '/v1/models/colorize-pono'],
  ['POST', '/v1/models/colorize-pono/reload'],
  ['GET', '/v1/jobs/abc'],
  ['DELETE', '/v1/jobs/abc'],
  ['GET', '/v2/models/colorize-pono'],
  ['GET', '/v2/models/colorize-pono/ready'],
  ['POST', '/v2/models/colorize-pono/infer', '{"inputs":[]}'],
];

describe('authorization by matched route (API_KEYS)', () => {
  let app: FastifyInstance;
  let port: number;
  before(async () => {
    app = await buildReadyApp({ API_KEYS: 'secret1,secret2' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as net.AddressInfo).port;
  });
  after(async () => { await app?.close(); });

  test('every spelling of every protected route is 401 without a valid token', async () => {
    const leaks: string[] = [];
    let count = 0;
    for (const [method, path, json] of PROTECTED) {
      const [p, q] = path.split('?');
      for (const s of spellings(p!)) {
        const target = q ? `${s}${s.includes('?') ? '&' : '?'}${q}` : s;
        for (const token of [undefined, 'not-a-key', 'secret1x']) {
          const r = await rawRequest(port, raw(method, target, { token, json }));
          count++;
          if (r.status !== 401 && r.status !== 400) leaks.push(`${method} ${target} token=${token ?? '-'} → ${r.status}`);
          else if (r.status === 401) assert.match(r.headers, /content-type: application\/problem\+json/i);
        }
      }
    }
    assert.ok(count > 500, `only ${count} requests`);
    assert.deepEqual(leaks, []);
  });

  test('unmatched paths are denied too (no route probing without a token)', async () => {
    for (const target of ['/nope', '/v1/nope', '/v3/models', '/%76%31/nope']) {
      assert.equal((await rawRequest(port, raw('GET', target))).status, 401, target);
      assert.equal((await rawRequest(port, raw('GET', target, { token: 'secret2' }))).status, 404, target);
    }
  });

  test('a valid token reaches the route in canonical, encoded and absolute form', async () => {
    for (const target of ['/v1/generate', '/%761/generate', '/v%31/generate', 'http://x/v1/generate']) {
      const r = await rawRequest(port, raw('POST', target, { token: 'secret2', json: '{"class":1,"seed":7}' }));
      assert.equal(r.status, 200, target);
      assert.match(r.headers, /content-type: image\/png/i);
    }
    for (const target of ['/v1/models', '/%761/models', 'http://x/v1/models', '/v2/models/colorize-pono']) {
      assert.equal((await rawRequest(port, raw('GET', target, { token: 'secret1' }))).status, 200, target);
    }
  });

  test('public routes stay open without a token', async () => {
    for (const target of ['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready', '/openapi.json', '/metrics', '/', '/docs/', '/%68ealthz']) {
      const r = await rawRequest(port, raw('GET', target));
      assert.ok(r.status === 200 || r.status === 302, `${target} → ${r.status}`);
    }
  });
});

describe('rate limit keys (RATE_LIMIT_PER_MIN)', () => {
  test('invented tokens and encoded paths share the client IP budget', async () => {
    const app = await buildReadyApp({ RATE_LIMIT_PER_MIN: '5' });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as net.AddressInfo).port;
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        const target = i % 2 ? '/%761/models' : 'http://x/v%31/models';
        statuses.push((await rawRequest(port, raw('GET', target, { token: `invented-${i}` }))).status);
      }
      assert.deepEqual(statuses.filter((s) => s === 200).length, 5, statuses.join(','));
      assert.deepEqual(statuses.filter((s) => s === 429).length, 5, statuses.join(','));
      // the public routes are not counted
      assert.equal((await rawRequest(port, raw('GET', '/healthz'))).status, 200);
    } finally {
      await app.close();
    }
  });

  test('each configured API key has its own budget', async () => {
    const app = await buildReadyApp({ RATE_LIMIT_PER_MIN: '2', API_KEYS: 'k1,k2' });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as net.AddressInfo).port;
      const get = async (token: string) => (await rawRequest(port, raw('GET', '/%761/models', { token }))).status;
      assert.deepEqual([await get('k1'), await get('k1'), await get('k1')], [200, 200, 429]);
      assert.deepEqual([await get('k2'), await get('k2')], [200, 200]);
    } finally {
      await app.close();
    }
  });
});
