/**
 * Optional bearer-token authentication (`API_KEYS`, a comma-separated list of tokens).
 *
 * - When `API_KEYS` is set, every `/v1/*` and `/v2/*` route requires `Authorization: Bearer <token>`
 *   with one of the tokens, except the health routes (`/healthz`, `/readyz`, `/v2/health/*`) and the
 *   docs (`/openapi.json`, `/docs`); `/metrics` is left to the network (scraped in-cluster).
 * - Admin routes (`config.admin: true` in the route options) always require a token: with no
 *   `API_KEYS` configured they answer 401, so reload cannot be triggered anonymously.
 * - Failures answer 401 problem+json with `WWW-Authenticate: Bearer`. Tokens are compared in
 *   constant time (crypto.timingSafeEqual over SHA-256 digests).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { HttpProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyContextConfig { admin?: boolean }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when `token` equals one of `keys` (constant time per key). */
export function tokenMatches(token: string, keys: readonly Buffer[]): boolean {
  const d = digest(token);
  let ok = false;
  for (const k of keys) ok = timingSafeEqual(d, k) || ok;
  return ok;
}

/** Paths open without a token (and exempt from the rate limit). */
export const OPEN = [/^\/healthz$/, /^\/readyz$/, /^\/v2\/health\//, /^\/openapi\.json$/, /^\/docs(\/|$)/, /^\/metrics$/];

/**
 * The rate-limit key of a request: its bearer token's SHA-256 (so each API key has its own budget and the
 * token itself is never stored), else the client IP.
 */
export function rateLimitKey(request: FastifyRequest): string {
  const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
  return m ? `key:${digest(m[1]!.trim()).toString('hex')}` : `ip:${request.ip}`;
}

export default fp<{ apiKeys: string[] }>(async (app, opts) => {
  const keys = opts.apiKeys.map(digest);
  app.addHook('onRequest', async (request, reply) => {
    const url = request.url.split('?')[0]!;
    const admin = request.routeOptions.config?.admin === true;
    if (!admin && (keys.length === 0 || OPEN.some((r) => r.test(url)) || !/^\/v[12]\//.test(url))) return;
    const header = request.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m || keys.length === 0 || !tokenMatches(m[1]!.trim(), keys)) {
      reply.header('WWW-Authenticate', 'Bearer realm="normgen"');
      throw new HttpProblem(401, 'Unauthorized', keys.length === 0 ? 'this admin route needs API_KEYS to be configured and a bearer token' : m ? 'the bearer token is not valid' : 'send `Authorization: Bearer <token>`', 'unauthorized');
    }
  });
}, { name: 'auth' });
