/**
 * @normgen/client: a small typed client of the normgen API, on openapi-fetch with the types that
 * openapi-typescript generates from the service's OpenAPI document (`schema.d.ts`, `npm run client:gen`).
 *
 * ```ts
 * const normgen = createNormgenClient({ baseUrl: 'http://localhost:8080', token: process.env.NORMGEN_TOKEN });
 * const colour = await normgen.translate(new Blob([await readFile('gray.png')]));           // Blob (PNG)
 * const filled = await normgen.inpaint(photoBlob, maskBlob, { output_format: 'webp' });     // Blob
 * const large = await normgen.upscale(smallBlob, { scale: '4' });                          // Blob, 4x the size
 * const { maps } = await normgen.explain({ model: 'colorize-pono', image: photoBlob });    // PONO mu/sigma as PNGs
 * const { image, seed } = await normgen.generate({ class: 'Sneaker', count: 16, seed: 42 }); // Blob + seed
 * const { models } = await normgen.models();                                                // typed JSON
 * ```
 * Every method throws {@link NormgenError} (HTTP status + the RFC 9457 problem document) on an error reply.
 */
import createClient from 'openapi-fetch';
import type { paths } from './schema.js';

export type { paths } from './schema.js';
type GenerateBody = paths['/v1/generate']['post']['requestBody']['content']['application/json'];
type OutputFormat = 'png' | 'jpeg' | 'webp';
/** `POST /v1/explain`'s JSON: `{ model, width, height, seed?, maps: [{ name, layer, kind, width, height, b64_png, … }] }`. */
export type ExplainResult = paths['/v1/explain']['post']['responses'][200]['content']['application/json'];
export interface Problem { type: string; title: string; status: number; detail?: string; [k: string]: unknown }

/** An error reply: `status` and the problem document (`problem.detail` says what was wrong). */
export class NormgenError extends Error {
  constructor(readonly status: number, readonly problem: Problem) {
    super(`${status} ${problem.title}: ${problem.detail ?? ''}`);
    this.name = 'NormgenError';
  }
}

export interface NormgenOptions {
  /** e.g. `http://localhost:8080` */
  baseUrl: string;
  /** bearer token, when the server sets API_KEYS */
  token?: string;
  fetch?: typeof globalThis.fetch;
}

const toForm = (body: Record<string, Blob | string | undefined>): FormData => {
  const form = new FormData();
  for (const [k, v] of Object.entries(body)) if (v !== undefined) form.append(k, v as Blob | string);
  return form;
};

async function fail(response: Response, error: unknown): Promise<never> {
  const problem = (error && typeof error === 'object' ? error : { type: 'about:blank', title: response.statusText, status: response.status }) as Problem;
  throw new NormgenError(response.status, problem);
}

/** The client: one method per task, plus `raw` (the openapi-fetch client, for every other route). */
export function createNormgenClient(opts: NormgenOptions) {
  const raw = createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : undefined,
    fetch: opts.fetch,
  });
  return {
    raw,
    /** POST /v1/translate (default: colorize a grayscale photo); resolves with the image bytes. */
    async translate(image: Blob, o: { model?: string; output_format?: OutputFormat } = {}): Promise<Blob> {
      const { data, error, response } = await raw.POST('/v1/translate', {
        body: { image: image as unknown as string, ...o }, bodySerializer: (b) => toForm(b as never), parseAs: 'blob',
      });
      return error !== undefined || !response.ok ? fail(response, error) : (data as unknown as Blob);
    },
    /** POST /v1/inpaint with a mask (white = fill, same size as the image); resolves with the image bytes. */
    async inpaint(image: Blob, mask: Blob, o: { model?: string; output_format?: OutputFormat } = {}): Promise<Blob> {
      const { data, error, response } = await raw.POST('/v1/inpaint', {
        body: { image: image as unknown as string, mask: mask as unknown as string, ...o }, bodySerializer: (b) => toForm(b as never), parseAs: 'blob',
      });
      return error !== undefined || !response.ok ? fail(response, error) : (data as unknown as Blob);
    },
    /** POST /v1/upscale: the photo `scale` (4, default, or 2) times larger; resolves with the image bytes. */
    async upscale(image: Blob, o: { scale?: '2' | '4'; model?: string; output_format?: OutputFormat } = {}): Promise<Blob> {
      const { data, error, response } = await raw.POST('/v1/upscale', {
        body: { image: image as unknown as string, ...o }, bodySerializer: (b) => toForm(b as never), parseAs: 'blob',
      });
      return error !== undefined || !response.ok ? fail(response, error) : (data as unknown as Blob);
    },
    /**
     * POST /v1/explain: what the network sees for this input (PONO mu/sigma, AN layouts; `b64_png` per map).
     * Give the task inputs of `model`: `image` (translate, upscale), `image` + `mask` (inpaint), `class` + `seed` (generate).
     */
    async explain(o: { model: string; image?: Blob; mask?: Blob; class?: string | number; seed?: number }): Promise<ExplainResult> {
      const body: Record<string, Blob | string | undefined> = { model: o.model, image: o.image, mask: o.mask,
        class: o.class === undefined ? undefined : String(o.class), seed: o.seed === undefined ? undefined : String(o.seed) };
      const { data, error, response } = await raw.POST('/v1/explain', { body: body as never, bodySerializer: (b) => toForm(b as never) });
      return error !== undefined || !response.ok ? fail(response, error) : (data as ExplainResult);
    },
    /** POST /v1/generate (grid layout); resolves with the grid image and the seed used (X-Seed). */
    async generate(body: Omit<GenerateBody, 'layout' | 'response_format'>): Promise<{ image: Blob; seed: number; model: string }> {
      const { data, error, response } = await raw.POST('/v1/generate', { body, parseAs: 'blob' });
      if (error !== undefined || !response.ok) return fail(response, error);
      return { image: data as unknown as Blob, seed: Number(response.headers.get('x-seed')), model: response.headers.get('x-model') ?? '' };
    },
    /** GET /v1/models: every installed model with its state, I/O and metrics. */
    async models() {
      const { data, error, response } = await raw.GET('/v1/models');
      return error !== undefined || !response.ok ? fail(response, error) : data!;
    },
  };
}
