/**
 * Optional bearer-token authentication (`API_KEYS`, a comma-separated list of tokens), decided on the
 * route the router matched — never on the raw request URL.
 *
 * - **Deny by default.** When `API_KEYS` is set, every request needs `Authorization: Bearer <token>` with
 *   one of the tokens unless the route it matched says `config: { public: true }` (health, readiness,
 *   `/v2/health/*`, `/metrics`, `/openapi.json`, `/docs`, the try-it page). A path that matched no route
 *   (the 404 handler) is not public either, so an unauthenticated client cannot probe which paths exist.
 *   Because the decision uses `request.routeOptions.config`, every spelling that routes to a protected
 *   handler (`/%761/translate`, absolute-form `POST http://x/v1/generate`, `;` parameters, …) is protected.
 * - Admin routes (`config.admin: true`) always require a token: with no `API_KEYS` configured they answer
 *   401, so reload cannot be triggered anonymously.
 * - Failures answer 401 problem+json with `WWW-Authenticate: Bearer`. Tokens are compared in constant time
 *   (crypto.timingSafeEqual over SHA-256 digests).
 *
 * Source: the security audit in issue 28 (percent-encoded paths bypassed the former regex-on-URL check).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { HttpProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Needs a token even without API_KEYS (then it is always 401). */
    admin?: boolean;
    /** Open without a token and exempt from the rate limit. Routes are protected unless they say this. */
    public?: boolean;
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when `token` equals one of `keys` (SHA-256 digests; constant time per key). */
export function tokenMatches(token: string, keys: readonly Buffer[]): boolean {
  const d = digest(token);
  let ok = false;
  for (const k of keys) ok = timingSafeEqual(d, k) || ok;
  return ok;
}

/** The bearer token of a request, or null when there is no `Authorization: Bearer …` header. */
export function bearerToken(request: FastifyRequest): string | null {
  const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
  return m ? m[1]!.trim() : null;
}

/** True when the route this request matched is marked `config.public` (false for unmatched paths). */
export function isPublicRoute(request: FastifyRequest): boolean {
  return request.routeOptions.url !== undefined && request.routeOptions.config?.public === true;
}

/**
 * The configured API keys as the SHA-256 digests {@link hasValidKey} compares against (computed once).
 * @param apiKeys the plain tokens of `API_KEYS`.
 */
export function keyDigests(apiKeys: readonly string[]): Buffer[] {
  return apiKeys.map(digest);
}

/**
 * True when the request carries `Authorization: Bearer <token>` with one of `keys` (digests from
 * {@link keyDigests}; constant time per key). False without a header, or when no key is configured.
 */
export function hasValidKey(request: FastifyRequest, keys: readonly Buffer[]): boolean {
  const token = bearerToken(request);
  return token !== null && keys.length > 0 && tokenMatches(token, keys);
}

/**
 * Mark every route registered in `scope` (and its children) as public, e.g. around a third-party plugin
 * (@fastify/swagger-ui, @fastify/static) whose routes take no options of ours.
 */
export function markPublic(scope: FastifyInstance): void {
  scope.addHook('onRoute', (route: RouteOptions) => {
    route.config = { ...(route.config ?? {}), public: true };
  });
}

/**
 * The rate-limit key of a request: the SHA-256 of its bearer token **only if that token is a configured
 * API key** (each key has its own budget; the token itself is never stored), else the client IP — so
 * invented tokens all share their IP's budget.
 * @param apiKeys the configured tokens (plain text, as in `API_KEYS`).
 */
export function rateLimitKeyFor(apiKeys: readonly string[]): (request: FastifyRequest) => string {
  const keys = keyDigests(apiKeys);
  return (request) => (hasValidKey(request, keys) ? `key:${digest(bearerToken(request)!).toString('hex')}` : `ip:${request.ip}`);
}

export default fp<{ apiKeys: string[] }>(async (app, opts) => {
  const keys = keyDigests(opts.apiKeys);
  app.addHook('onRequest', async (request, reply) => {
    const admin = request.routeOptions.config?.admin === true;
    if (!admin && (keys.length === 0 || isPublicRoute(request))) return;
    if (!hasValidKey(request, keys)) {
      reply.header('WWW-Authenticate', 'Bearer realm="normgen"');
      throw new HttpProblem(401, 'Unauthorized', keys.length === 0 ? 'this admin route needs API_KEYS to be configured and a bearer token' : bearerToken(request) !== null ? 'the bearer token is not valid' : 'send `Authorization: Bearer <token>`', 'unauthorized');
    }
  });
}, { name: 'auth' });
