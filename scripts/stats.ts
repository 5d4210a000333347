/**
 * Order statistics for the benchmark scripts (bench-translate, bench-container, bench-load), and the parse of a
 * reply's Server-Timing header.
 * `quantile(xs, q)`: the sample at rank floor(q·n) of the sorted values (clamped to the last), so
 * q = 0.5 is the median (upper median for even n) and q = 0.9 the p90; units are those of `xs` (ms).
 * Throws RangeError on an empty sample or q outside [0, 1].
 */
export function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) throw new RangeError('quantile of an empty sample');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** The stages of a `Server-Timing` header (`name;dur=ms, …`, src/tracing.ts) as a Map of name → ms; empty for none. */
export function serverTimingStages(header: string | null | undefined): Map<string, number> {
  return new Map([...(header ?? '').matchAll(/([\w-]+);dur=([\d.]+)/g)].map((m) => [m[1]!, Number(m[2])]));
}
