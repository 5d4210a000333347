/**
 * Helpers shared by the task routes: reading a multipart upload into memory, resolving the `model`
 * field to a ready model of the route's task, and validating `output_format`. Each raises the
 * {@link HttpProblem} that the error plugin turns into problem+json.
 */
import type { FastifyRequest } from 'fastify';
import { DeadlineError, QueueFullError } from '../inference/batcher.js';
import type { Feeds } from '../inference/messages.js';
import type { RunResult } from '../inference/pool.js';
import { OUTPUT_FORMATS, type OutputFormat } from '../imaging/encode.js';
import type { Manifest } from '../models/manifest.js';
import type { ModelEntry, ModelRepository } from '../models/repository.js';
import { HttpProblem } from '../problem.js';

export interface MultipartUpload { files: Map<string, Buffer>; fields: Map<string, string> }

/**
 * Read a multipart request into memory: the named file fields (`fileFields`) and text fields
 * (`textFields`). Each file is capped by the multipart plugin's `fileSize` limit.
 * @throws HttpProblem 415 if the request is not multipart/form-data; 400 for a malformed multipart body;
 *   422 for an unknown or repeated field; the plugin's 413 when a file is over MAX_UPLOAD_BYTES.
 */
export async function readUpload(request: FastifyRequest, fileFields: readonly string[], textFields: readonly string[]): Promise<MultipartUpload> {
  if (!request.isMultipart()) {
    throw new HttpProblem(415, 'Unsupported Media Type', 'send the request as multipart/form-data with an `image` file field', 'not-multipart');
  }
  const files = new Map<string, Buffer>();
  const fields = new Map<string, string>();
  try {
    for await (const part of request.parts()) {
      const known = part.type === 'file' ? fileFields.includes(part.fieldname) : textFields.includes(part.fieldname);
      if (!known || files.has(part.fieldname) || fields.has(part.fieldname)) {
        if (part.type === 'file') part.file.resume();
        const allowed = [...fileFields.map((f) => `${f} (file)`), ...textFields].join(', ');
        throw new HttpProblem(422, 'Unprocessable Content', known ? `field \`${part.fieldname}\` is given twice` : `unknown ${part.type === 'file' ? 'file' : 'text'} field \`${part.fieldname}\`; accepted fields: ${allowed}`, 'invalid-field');
      }
      if (part.type === 'file') files.set(part.fieldname, await part.toBuffer());
      else fields.set(part.fieldname, String(part.value));
    }
  } catch (err) {
    // Limits (413) and our own problems keep their status; a body busboy cannot parse is the client's fault.
    if (err instanceof HttpProblem || (err as { statusCode?: number }).statusCode) throw err;
    throw new HttpProblem(400, 'Bad Request', `malformed multipart/form-data body: ${(err as Error).message}`, 'malformed-multipart');
  }
  return { files, fields };
}

/**
 * Resolve the `model` field (or, when it is absent or empty, the task's default) to a ready model of `task`.
 * @throws HttpProblem 404 unknown model, 422 model of another task, 503 model not ready.
 */
export function resolveModel(models: ModelRepository, task: Manifest['task'], name: string | undefined): ModelEntry {
  if (name !== undefined && name.trim() === '') name = undefined; // an empty form field (Swagger UI, HTML forms) = the default
  const entry = name === undefined ? models.defaultFor(task) : models.get(name);
  if (!entry) {
    if (name === undefined) throw new HttpProblem(503, 'Service Unavailable', `no ${task} model is installed`, 'no-model');
    throw new HttpProblem(404, 'Not Found', `unknown model \`${name}\`; GET /v1/models lists the installed ones`, 'unknown-model');
  }
  if (entry.manifest.task !== task) {
    throw new HttpProblem(422, 'Unprocessable Content', `model \`${entry.name}\` is ${article(entry.manifest.task)} ${entry.manifest.task} model, not ${article(task)} ${task} model`, 'wrong-task');
  }
  if (entry.state !== 'ready') {
    throw new HttpProblem(503, 'Service Unavailable', entry.state === 'loading' ? `model \`${entry.name}\` is still loading; retry shortly` : `model \`${entry.name}\` failed to load: ${entry.error}`, 'model-unavailable', { retry: entry.state === 'loading' });
  }
  return entry;
}

/** "an" before a vowel, else "a" (for the task names in messages). */
function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

/** Validate `output_format`. @throws HttpProblem 422 for anything but png, jpeg, webp. */
export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === '') return 'png';
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new HttpProblem(422, 'Unprocessable Content', `output_format must be one of ${OUTPUT_FORMATS.join(', ')}; got ${JSON.stringify(value)}`, 'invalid-field');
}

/**
 * Run a ready model through its dynamic batcher.
 * @throws HttpProblem 503 (`Retry-After` in `extensions.retry_after_s`) when the model's queue is full,
 *   504 when the request waited past its deadline, 503 when the model has no batcher (not ready).
 */
export async function infer(entry: ModelEntry, feeds: Feeds): Promise<RunResult & { batchSize: number; queueMs: number }> {
  if (!entry.batcher) throw new HttpProblem(503, 'Service Unavailable', `model \`${entry.name}\` is not ready`, 'model-unavailable');
  try {
    return await entry.batcher.run(feeds);
  } catch (err) {
    if (err instanceof QueueFullError) {
      throw new HttpProblem(503, 'Service Unavailable', `${err.message}; retry after ${err.retryAfterS} s`, 'queue-full', { retry_after_s: err.retryAfterS, queue_depth: err.depth });
    }
    if (err instanceof DeadlineError) throw new HttpProblem(504, 'Gateway Timeout', err.message, 'queue-timeout');
    throw err;
  }
}
