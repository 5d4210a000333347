/**
 * normgen's try-it page: three panels that call the service's own API (same origin):
 * - Colorize: POST /v1/translate with the chosen photo; gray preview, side-by-side and before/after slider.
 * - Inpaint: paint a mask over the photo (mouse, touch or keyboard), POST /v1/inpaint with the photo and
 *   the mask as a PNG (white = fill, black = keep, at the photo's own resolution).
 * - Upscale: POST /v1/upscale with the chosen photo and scale; a before/after slider over the input enlarged
 *   by the browser (pixelated) and the result, at the result's size.
 * - Generate: class names from GET /v1/models, POST /v1/generate (JSON); shows the seed used (X-Seed).
 * Under each result, "What the network sees" (a <details>) asks POST /v1/explain for the same input's PONO
 * moments or AN layouts and shows them with captions (kind, layer, size, range or regions in use).
 * Errors show the problem+json `detail`; a 503 with Retry-After shows "busy, retrying in N s" and retries
 * once. With API_KEYS on the server, the token field (kept in sessionStorage) is sent as a bearer token.
 * No dependencies, no build step: ES modules, one per panel (js/colorize.js, js/inpaint.js, js/upscale.js,
 * js/generate.js) on the shared pieces of js/shared.js; adding a panel is adding a file and an import here.
 */
import { initExplain } from './js/shared.js';
import './js/colorize.js';
import './js/inpaint.js';
import './js/upscale.js';
import './js/generate.js';

initExplain(['colorize', 'inpaint', 'upscale', 'generate']);
