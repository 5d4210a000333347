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
