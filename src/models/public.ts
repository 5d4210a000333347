/**
 * What a public answer may say about a model: names, never filesystem paths (issue 28). Load errors such
 * as `ENOENT: no such file or directory, open '/srv/models/x/model.onnx'` and manifest fields written by the
 * trainer (photo cache paths) keep only the file's base name.
 */
import path from 'node:path';

/** An absolute POSIX path of at least two segments (`/a/b`, `/root/.cache/x.webp`), anywhere in a string. */
const ABSOLUTE_PATH = /(?<![\w.:/])\/(?:[\w.@+~-]+\/)+[\w.@+~-]*/g;

/**
 * `text` with every absolute filesystem path replaced by its base name (`…/model.onnx` → `model.onnx`).
 * @param text any message (e.g. an Error's message); non-strings are returned unchanged.
 */
export function withoutPaths(text: string): string {
  return text.replace(ABSOLUTE_PATH, (p) => path.posix.basename(p) || p);
}

/**
 * A deep copy of a JSON value with {@link withoutPaths} applied to every string (object keys are kept).
 * @param value a manifest or any JSON-like value; depth is bounded by the value itself (manifests are shallow).
 */
export function stripPaths<T>(value: T): T {
  if (typeof value === 'string') return withoutPaths(value) as T;
  if (Array.isArray(value)) return value.map((v) => stripPaths(v)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, stripPaths(v)])) as T;
  }
  return value;
}

/**
 * A manifest for a public answer: {@link stripPaths}, and the training photo lists (`training.data.train_photos`,
 * hundreds of entries with licences) replaced by their counts per Debian package — the full list stays in the
 * manifest file and the model's NOTICE (`GET /v1/models/colorize-pono` went from 385 KB to a few KB).
 */
export function publicManifest<T>(manifest: T): T {
  const out = stripPaths(manifest) as Record<string, unknown>;
  const data = (out.training as { data?: Record<string, unknown> } | undefined)?.data;
  if (data && Array.isArray(data.train_photos)) {
    const byPackage: Record<string, number> = {};
    for (const p of data.train_photos as { package?: string }[]) byPackage[p.package ?? 'unknown'] = (byPackage[p.package ?? 'unknown'] ?? 0) + 1;
    data.train_photos = { count: data.train_photos.length, by_package: byPackage, list: 'in the model folder: manifest.json and NOTICE' };
  }
  if (data && Array.isArray(data.validation_photos)) data.validation_photos = { count: data.validation_photos.length };
  return out as T;
}
