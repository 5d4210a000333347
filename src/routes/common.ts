/**
 * Helpers shared by the task routes: reading an image request (multipart upload or JSON with base64 /
 * data: URLs) into memory, resolving the `model` field to a ready model of the route's task, validating
 * `output_format` and `response_format`, and sending an image as bytes or as `b64_json`. Each raises the
 * {@link HttpProblem} that the error plugin turns into problem+json.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CanceledError, DeadlineError, pixelsOf, QueueFullError, ShuttingDownError } from '../inference/batcher.js';
import type { Feeds } from '../inference/messages.js';
import { PoolClosedError, WorkerCrashedError, type RunResult } from '../inference/pool.js';
import { CONTENT_TYPES, OUTPUT_FORMATS, type OutputFormat } from '../imaging/encode.js';
import type { Manifest } from '../models/manifest.js';
import type { ModelEntry, ModelRepository } from '../models/repository.js';
import { DryRunComplete, HttpProblem } from '../problem.js';
import { rasterFormat } from '../imaging/decode.js';
import { MAX_HINT_POINTS_BYTES } from '../imaging/hints.js';
import { addTiming, recordInference, span } from '../tracing.js';

export interface MultipartUpload { files: Map<string, Buffer>; fields: Map<string, string> }

/** Body limit of a route taking `files` images as base64 in JSON: base64's 4/3 plus 64 KiB for the rest. */
export function jsonBodyLimit(maxUploadBytes: number, files: number): number {
  return Math.ceil((maxUploadBytes * files * 4) / 3) + 64 * 1024;
}

const DATA_URL = /^data:[\w.+-]*\/?[\w.+-]*((?:;[\w.+-]+=[^;,]*)*);base64,/i;

/**
 * One image of a JSON body: base64 (standard or URL-safe alphabet, whitespace ignored) or a `data:` URL
 * with `;base64`. @throws HttpProblem 422 not a string; 415 not base64; 413 decoded size over `maxBytes`.
 */
export function decodeBase64Image(field: string, value: unknown, maxBytes: number): Buffer {
  if (typeof value !== 'string') throw new HttpProblem(422, 'Unprocessable Content', `\`${field}\` must be a base64 string or a data: URL`, 'invalid-field');
  let text = value;
  if (text.startsWith('data:')) {
    const m = DATA_URL.exec(text);
    if (!m) throw new HttpProblem(415, 'Unsupported Media Type', `\`${field}\`: only base64 data: URLs are accepted (data:image/png;base64,…)`, 'not-base64');
    text = text.slice(m[0].length);
  }
  // Junk is refused from its first bytes, before the whole string is scanned and decoded (a 25 MB string
  // of junk would otherwise hold the event loop): they must start a raster image (decode.ts rasterFormat).
  const head = text.slice(0, 256).replace(/\s+/g, '').slice(0, 64);
  if (head.length === 64 && /^[A-Za-z0-9+/_-]+$/.test(head) && !rasterFormat(Buffer.from(head, head.includes('-') || head.includes('_') ? 'base64url' : 'base64'))) {
    throw new HttpProblem(415, 'Unsupported Media Type', `\`${field}\` does not start like a raster image (PNG, JPEG, WebP, GIF, TIFF, AVIF), decided from its first bytes`, 'not-raster');
  }
  text = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new HttpProblem(415, 'Unsupported Media Type', `\`${field}\` is not valid base64`, 'not-base64');
  }
  if (Math.floor((text.length * 3) / 4) > maxBytes + 2) {
    throw new HttpProblem(413, 'Content Too Large', `\`${field}\` is over MAX_UPLOAD_BYTES (${maxBytes} bytes) once decoded`, 'file-too-large');
  }
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

/**
 * Read an image request into memory, from either body type the image routes accept:
 * - multipart/form-data: the named file fields (`fileFields`) and text fields (`textFields`); each file is
 *   capped by the multipart plugin's `fileSize` limit;
 * - application/json: an object whose `fileFields` are base64 strings or `data:` URLs
 *   ({@link decodeBase64Image}) and whose `textFields` are strings (numbers and booleans are accepted and
 *   stringified).
 * An empty multipart text part counts as absent (browsers send every field of a form).
 * @throws HttpProblem 415 for another content type (or an image that is not base64); 400 for a malformed
 *   multipart body; 422 for an unknown or repeated field, a file field sent as text, or a wrong JSON type; 413 when a file is over
 *   MAX_UPLOAD_BYTES (the plugin's, or decoded base64), or a JSON body over the route's body limit.
 */
export async function readUpload(request: FastifyRequest, fileFields: readonly string[], textFields: readonly string[], rawImage = false): Promise<MultipartUpload> {
  // the `read` span / Server-Timing stage: the multipart stream or the base64 decoding
  return span(request, 'read', () => readUploadOf(request, fileFields, textFields, rawImage));
}

async function readUploadOf(request: FastifyRequest, fileFields: readonly string[], textFields: readonly string[], rawImage: boolean): Promise<MultipartUpload> {
  const contentType = String(request.headers['content-type'] ?? '');
  if (/^application\/json\b/i.test(contentType)) {
    return readJsonUpload(request.body, fileFields, textFields, request.server.limits.maxUploadBytes);
  }
  if (/^image\//i.test(contentType)) {
    if (!rawImage || !Buffer.isBuffer(request.body)) {
      throw new HttpProblem(415, 'Unsupported Media Type', `this route takes ${fileFields.map((f) => `\`${f}\``).join(' and ')} as multipart/form-data files (curl -F ${fileFields[0]}=@file …) or as base64 in JSON; a raw image body is accepted by POST /v1/translate only`, 'raw-body-unsupported');
    }
    // the image is the body; the other fields come from the query string
    const fields = new Map<string, string>();
    for (const [key, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
      if (!textFields.includes(key)) throw new HttpProblem(422, 'Unprocessable Content', `unknown query field \`${key}\`; with a raw image body the fields are query parameters: ${textFields.join(', ')}`, 'invalid-field');
      fields.set(key, String(value));
    }
    return { files: new Map([[fileFields[0]!, request.body]]), fields };
  }
  if (!request.isMultipart()) {
    throw new HttpProblem(415, 'Unsupported Media Type', `Content-Type ${JSON.stringify(contentType || '(none)')} is not accepted: send multipart/form-data with ${fileFields.map((f) => `a \`${f}\` file`).join(' and ')} (curl -F ${fileFields[0]}=@file …), application/json with base64 or data: URLs${rawImage ? ', or the image itself as the body (Content-Type: image/…)' : ''}`, 'unsupported-content-type');
  }
  const files = new Map<string, Buffer>();
  const fields = new Map<string, string>();
  try {
    for await (const part of request.parts()) {
      // An empty text part is an absent field: browsers (Swagger UI's "Try it out", HTML forms) send every field
      // of the form, an unselected file input as an empty text part.
      if (part.type !== 'file' && String(part.value) === '' && (fileFields.includes(part.fieldname) || textFields.includes(part.fieldname))) continue;
      if (part.type !== 'file' && fileFields.includes(part.fieldname)) {
        throw new HttpProblem(422, 'Unprocessable Content', `\`${part.fieldname}\` must be a file part (curl -F ${part.fieldname}=@file …), not a text field`, 'invalid-field');
      }
      const known = part.type === 'file' ? fileFields.includes(part.fieldname) : textFields.includes(part.fieldname);
      if (!known || files.has(part.fieldname) || fields.has(part.fieldname)) {
        if (part.type === 'file') part.file.resume();
        const allowed = [...fileFields.map((f) => `${f} (file)`), ...textFields].join(', ');
        throw new HttpProblem(422, 'Unprocessable Content', known ? `field \`${part.fieldname}\` is given twice` : `unknown ${part.type === 'file' ? 'file' : 'text'} field \`${part.fieldname}\`; accepted fields: ${allowed}`, 'invalid-field');
      }
      if (part.type === 'file') files.set(part.fieldname, await part.toBuffer());
      else if ((part as { valueTruncated?: boolean }).valueTruncated) {
        throw new HttpProblem(413, 'Content Too Large', `text field \`${part.fieldname}\` is over ${MAX_HINT_POINTS_BYTES} bytes`, 'field-too-large', { max_bytes: MAX_HINT_POINTS_BYTES });
      } else fields.set(part.fieldname, String(part.value));
    }
  } catch (err) {
    // Limits (413) and our own problems keep their status; a body busboy cannot parse is the client's fault.
    if (err instanceof HttpProblem || (err as { statusCode?: number }).statusCode) throw err;
    throw new HttpProblem(400, 'Bad Request', `malformed multipart/form-data body: ${(err as Error).message}`, 'malformed-multipart');
  }
  return { files, fields };
}

function readJsonUpload(body: unknown, fileFields: readonly string[], textFields: readonly string[], maxBytes: number): MultipartUpload {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpProblem(422, 'Unprocessable Content', 'the JSON body must be an object, e.g. {"image": "<base64>"}', 'invalid-field');
  }
  const files = new Map<string, Buffer>();
  const fields = new Map<string, string>();
  for (const [key, value] of Object.entries(body)) {
    if (fileFields.includes(key)) {
      files.set(key, decodeBase64Image(key, value, maxBytes));
    } else if (textFields.includes(key)) {
      // a list or object (e.g. `hint_points`) travels as its JSON text, as it would in a multipart text field
      if (typeof value === 'object' && value !== null) fields.set(key, JSON.stringify(value));
      else if (!['string', 'number', 'boolean'].includes(typeof value)) throw new HttpProblem(422, 'Unprocessable Content', `\`${key}\` must be a string`, 'invalid-field');
      else fields.set(key, String(value));
    } else {
      const allowed = [...fileFields.map((f) => `${f} (base64)`), ...textFields].join(', ');
      throw new HttpProblem(422, 'Unprocessable Content', `unknown field \`${key}\`; accepted fields: ${allowed}`, 'invalid-field');
    }
  }
  return { files, fields };
}

/** A decimal integer as a text field may spell it: no sign, no spaces, no leading zeros, no `0x`, `1e3` or `4.0`. */
const STRICT_INTEGER = /^(?:0|[1-9][0-9]{0,15})$/;

/**
 * One strict integer parser for every non-JSON field (multipart text fields, query strings): `"16"` is 16;
 * `" 4"`, `"0x10"`, `"1e3"`, `"4.0"`, `"+4"`, `"04"` and `""` (when `required`) are refused, where `Number()`
 * would take them.
 * @param name the field's name (for the message). @param value its text (undefined or "" = absent).
 * @param min, max the accepted range (inclusive).
 * @returns the integer, or undefined when absent.
 * @throws HttpProblem 422 `invalid-field` for anything else or a value outside [min, max].
 */
export function parseIntegerField(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = STRICT_INTEGER.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new HttpProblem(422, 'Unprocessable Content', `\`${name}\` must be a decimal integer in [${min}, ${max}] (digits only); got ${JSON.stringify(value.slice(0, 40))}`, 'invalid-field');
  }
  return n;
}

/**
 * A preValidation hook: the query-string properties a route's schema types as `integer` must be written as
 * {@link parseIntegerField} accepts (Ajv's coercion alone takes `" "` as 0 and `"0x10"` as 16).
 * @throws HttpProblem 422 for a loosely written integer.
 */
export async function strictQueryIntegers(request: FastifyRequest): Promise<void> {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, { type?: string; minimum?: number; maximum?: number }> } | undefined;
  const query = request.query as Record<string, unknown> | undefined;
  if (!schema?.properties || !query) return;
  for (const [key, prop] of Object.entries(schema.properties)) {
    const raw = query[key];
    if (prop.type !== 'integer' || typeof raw !== 'string') continue;
    if (raw === '') throw new HttpProblem(422, 'Unprocessable Content', `\`${key}\` is empty; give a decimal integer or leave it out`, 'invalid-field');
    parseIntegerField(key, raw, prop.minimum ?? 0, prop.maximum ?? Number.MAX_SAFE_INTEGER);
  }
}

export const RESPONSE_FORMATS = ['image', 'b64_json'] as const;
export type ResponseFormat = typeof RESPONSE_FORMATS[number];

/** Validate `response_format`. @throws HttpProblem 422 for anything but image, b64_json. */
export function parseResponseFormat(value: string | undefined): ResponseFormat {
  if (value === undefined || value === '') return 'image';
  if ((RESPONSE_FORMATS as readonly string[]).includes(value)) return value as ResponseFormat;
  throw new HttpProblem(422, 'Unprocessable Content', `response_format must be one of ${RESPONSE_FORMATS.join(', ')}; got ${JSON.stringify(value)}`, 'invalid-field');
}

/**
 * Send an encoded image: as its bytes with its content type (`image`), or as OpenAI's JSON shape
 * `{ model, data: [{ b64_json, width, height }] }` (`b64_json`). Headers already set on `reply` stay.
 */
export function sendImage(reply: FastifyReply, bytes: Buffer, format: OutputFormat, responseFormat: ResponseFormat,
  model: string, width: number, height: number): FastifyReply {
  if (responseFormat === 'b64_json') {
    return reply.type('application/json').send({ model, data: [{ b64_json: bytes.toString('base64'), width, height }] });
  }
  return reply.type(CONTENT_TYPES[format]).send(bytes);
}

/**
 * Resolve the `model` field (or, when it is absent or empty, the task's default) to a ready model of `task`;
 * a model not loaded at start (`available`, see `MODELS`) is opened first and this waits for it.
 * @throws HttpProblem 404 unknown model, 422 model of another task, 503 model not ready (still loading at
 *   start, or failed to load).
 */
export async function resolveModel(models: ModelRepository, task: Manifest['task'], name: string | undefined): Promise<ModelEntry> {
  if (name !== undefined && name.trim() === '') name = undefined; // an empty form field (Swagger UI, HTML forms) = the default
  const entry = name === undefined ? models.defaultFor(task) : models.get(name);
  if (!entry) {
    if (name === undefined) throw new HttpProblem(503, 'Service Unavailable', `no ${task} model is installed`, 'no-model');
    throw new HttpProblem(404, 'Not Found', `unknown model \`${name}\`; GET /v1/models lists the installed ones`, 'unknown-model');
  }
  if (entry.manifest.task !== task) {
    throw new HttpProblem(422, 'Unprocessable Content', `model \`${entry.name}\` is ${article(entry.manifest.task)} ${entry.manifest.task} model, not ${article(task)} ${task} model`, 'wrong-task');
  }
  await models.ensureLoaded(entry);
  if (entry.state !== 'ready') {
    throw new HttpProblem(503, 'Service Unavailable', entry.state === 'loading' ? `model \`${entry.name}\` is still loading; retry shortly` : `model \`${entry.name}\` failed to load: ${entry.error}`, 'model-unavailable', { retry: entry.state === 'loading' });
  }
  return entry;
}

/**
 * The format of an image route's reply: `asked` (`output_format`) when given, else the input's own — JPEG in,
 * JPEG out (quality 90); WebP in, WebP out; PNG for every other input (PNG, GIF, TIFF, AVIF, HEIF…). A phone's
 * 1.2 MB JPEG so comes back as a JPEG of about its size, not a 12 MB PNG. Only PNG is lossless: the promises
 * of exact pixels (a translator's luma, the inpainter's pixels outside the hole) hold for PNG replies.
 * @param inputFormat sharp's name of the upload's format (`ImageInfo.format`: jpeg, png, webp, gif, tiff, heif…).
 */
export function replyFormat(asked: OutputFormat | undefined, inputFormat: string): OutputFormat {
  if (asked) return asked;
  return inputFormat === 'jpeg' || inputFormat === 'webp' ? inputFormat : 'png';
}

/** "an" before a vowel, else "a" (for the task names in messages). */
function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

/**
 * Validate `output_format`: png, jpeg or webp; absent or empty gives undefined (an image route then answers in
 * the input's format, {@link replyFormat}; generate in PNG).
 * @throws HttpProblem 422 for anything else.
 */
export function parseOutputFormat(value: string | undefined): OutputFormat | undefined {
  if (value === undefined || value === '') return undefined;
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new HttpProblem(422, 'Unprocessable Content', `output_format must be one of ${OUTPUT_FORMATS.join(', ')}; got ${JSON.stringify(value)}`, 'invalid-field');
}

/**
 * The memory budget (MEMORY_BUDGET_MB, issue 28): a pass estimated at the manifest's `serving.peak_mb_per_mp`
 * × its megapixels that does not fit `passBudgetMb` (MiB one pass may add) is refused before it runs.
 * No estimate (no `peak_mb_per_mp`) or no budget: no check.
 * @throws HttpProblem 413 `over-memory-budget` with `estimate_mb` and `budget_mb`.
 */
export function checkMemory(entry: ModelEntry, feeds: Feeds, passBudgetMb: number | undefined): void {
  const perMp = entry.manifest.serving.peak_mb_per_mp;
  if (passBudgetMb === undefined || perMp === undefined) return;
  const estimate = perMp * (pixelsOf(feeds) / 1e6);
  if (estimate > passBudgetMb) {
    throw new HttpProblem(413, 'Content Too Large', `this pass of model \`${entry.name}\` needs about ${Math.round(estimate)} MiB, over this replica's memory budget per pass (${Math.round(passBudgetMb)} MiB, MEMORY_BUDGET_MB); send a smaller image or batch`,
      'over-memory-budget', { estimate_mb: Math.round(estimate), budget_mb: Math.round(passBudgetMb) });
  }
}

/** Requests that have run a pass: their next passes are continuations (admitted while the server drains). */
const ranPass = new WeakSet<FastifyRequest>();
/** Arrival time (performance.now()) of each request, for its DEADLINE_MS. */
const arrivals = new WeakMap<FastifyRequest, number>();

/** Record a request's arrival (an onRequest hook of the app), from which its DEADLINE_MS counts. */
export function markArrival(request: FastifyRequest): void {
  arrivals.set(request, performance.now());
}

/**
 * Run a ready model through its dynamic batcher (with `request`, its `queue` and `inference` spans are
 * recorded under the request's trace).
 * @throws HttpProblem 413 when the pass would not fit the memory budget ({@link checkMemory}); 503
 *   (`Retry-After` in `extensions.retry_after_s`) when the model's queue is full or its expected wait is past
 *   the deadline, or the server is shutting down; 504 (with `Retry-After`) when the request waited past its
 *   deadline; 503 when the model has no batcher (not ready).
 */
export async function infer(entry: ModelEntry, feeds: Feeds, request?: FastifyRequest): Promise<RunResult & { batchSize: number; queueMs: number }> {
  if (!entry.batcher) throw new HttpProblem(503, 'Service Unavailable', `model \`${entry.name}\` is not ready`, 'model-unavailable');
  // the request's deadline (DEADLINE_MS from its arrival) bounds every pass it runs, tiles included
  const deadlineMs = request?.server.limits.deadlineMs ?? 0;
  let timeoutMs: number | undefined;
  if (request && deadlineMs > 0) {
    const left = deadlineMs - (performance.now() - (arrivals.get(request) ?? performance.now()));
    if (left <= 0) {
      throw new HttpProblem(504, 'Gateway Timeout', `the request ran past its deadline (DEADLINE_MS = ${deadlineMs} ms) before its next pass of model \`${entry.name}\`; send a smaller image or retry later`, 'deadline', { retry_after_s: entry.batcher.retryAfterS() });
    }
    timeoutMs = Math.min(entry.batcher.config.timeoutMs, left);
  }
  checkMemory(entry, feeds, request?.server.models?.passBudgetMb());
  // an async job's validation pass stops here: everything before the model was checked
  const dry = request?.server.dryRun;
  if (dry && request!.headers[dry.name] === dry.value) throw new DryRunComplete();
  try {
    const start = Date.now();
    const t0 = performance.now();
    // a client that disconnects while its request waits in the queue frees its slot (its run is skipped)
    const controller = new AbortController();
    const socket = request?.raw.socket;
    const onClose = () => controller.abort();
    if (typeof socket?.once === 'function') socket.once('close', onClose);
    // the socket's idle timeout (IDLE_TIMEOUT_MS, for stalled uploads) is paused while the request is
    // queued or computing: no bytes flow then, and the deadline below bounds the wait instead
    const idle = typeof socket?.setTimeout === 'function' ? socket.timeout : undefined;
    if (idle) socket!.setTimeout(0);
    let result;
    try {
      result = await entry.batcher.run(feeds, timeoutMs, controller.signal, request !== undefined && ranPass.has(request));
      if (request) ranPass.add(request);
    } finally {
      if (typeof socket?.off === 'function') socket.off('close', onClose);
      if (idle && !socket!.destroyed) socket!.setTimeout(idle);
    }
    if (request) {
      recordInference(request, start, result, `${entry.name}@${entry.manifest.version}`);
      // Server-Timing `transfer`: the rest of the round trip (tensors to and from the worker, its reply's wake-up)
      addTiming(request, 'transfer', Math.max(0, performance.now() - t0 - result.queueMs - result.inferMs));
    }
    return result;
  } catch (err) {
    if (err instanceof QueueFullError) {
      throw new HttpProblem(503, 'Service Unavailable', `${err.message}; retry after ${err.retryAfterS} s`, 'queue-full', { retry_after_s: err.retryAfterS, queue_depth: err.depth });
    }
    if (err instanceof DeadlineError) throw new HttpProblem(504, 'Gateway Timeout', `${err.message}; retry after ${err.retryAfterS} s`, 'queue-timeout', { retry_after_s: err.retryAfterS });
    if (err instanceof ShuttingDownError) throw new HttpProblem(503, 'Service Unavailable', `${err.message}; retry on another instance`, 'shutting-down', { retry_after_s: 1 });
    if (err instanceof CanceledError) throw new HttpProblem(499, 'Client Closed Request', err.message, 'client-closed');
    if (err instanceof WorkerCrashedError) throw new HttpProblem(503, 'Service Unavailable', err.message, 'worker-crashed', { retry_after_s: 1 });
    if (err instanceof PoolClosedError) throw new HttpProblem(503, 'Service Unavailable', `${err.message}; retry on another instance`, 'shutting-down', { retry_after_s: 1 });
    throw err;
  }
}
