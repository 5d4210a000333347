/**
 * JSON bodies bounded by what their route can hold, refused **before** parsing (issue 43, item 4).
 *
 * A route's `bodyLimit` bounds a body's bytes, but not its cost to `JSON.parse`: 38 MB of one million hint
 * points (or 3 M small objects) held the event loop for 4–6 s and kept 160 MiB. Every route therefore
 * states how many JSON values it can hold (`config.jsonMaxValues`; default {@link DEFAULT_JSON_MAX_VALUES}:
 * an image as one base64 string plus a few small fields), and the body's structural characters (`,`, `{`,
 * `[` — one per value beyond the first, found with the native `String.prototype.indexOf`, stopping as soon as
 * the bound is passed) are counted before it is parsed. Over the bound: 413 problem+json `too-many-values`.
 * Parsing itself is Fastify's own JSON parser (prototype-poisoning protection included).
 */
import fp from 'fastify-plugin';
import { HttpProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The most JSON values (commas + objects + arrays) a JSON body of this route may hold. */
    jsonMaxValues?: number;
  }
}

/** Values a JSON body may hold on a route that does not say: base64 images and a handful of fields. */
export const DEFAULT_JSON_MAX_VALUES = 256;

/**
 * Count `,` `{` `[` in `text`, stopping once the count is over `max`. @returns the count (≤ max + 1).
 * Cost: one native scan per character kind, O(length) with no allocation.
 */
export function countJsonValues(text: string, max: number): number {
  let n = 0;
  for (const c of [',', '{', '[']) {
    for (let i = text.indexOf(c); i !== -1; i = text.indexOf(c, i + 1)) {
      if (++n > max) return n;
    }
  }
  return n;
}

export default fp(async (app) => {
  const parse = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const max = request.routeOptions.config?.jsonMaxValues ?? DEFAULT_JSON_MAX_VALUES;
    const text = body as string;
    if (countJsonValues(text, max) > max) {
      done(new HttpProblem(413, 'Content Too Large', `the JSON body holds more than ${max} values, more than this route takes (refused before parsing)`, 'too-many-values', { max_values: max }), undefined);
      return;
    }
    parse(request, text, done);
  });
}, { name: 'json-bounds' });
