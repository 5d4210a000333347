/**
 * Seeded latent noise for the class-conditional generators: the same uint32 seed always gives the
 * same float32 N(0, 1) values, in the same order, on every platform.
 *
 * Source: pure-rand's xoroshiro128+ seeded with the uint32 seed, 53-bit uniform doubles
 * (`uniformFloat64`), and the Box-Muller transform (Box and Muller 1958): two uniforms u1 ∈ (0, 1],
 * u2 ∈ [0, 1) give `sqrt(-2 ln u1) · cos(2π u2)` and `sqrt(-2 ln u1) · sin(2π u2)`.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** Largest seed (seeds are uint32). */
export const MAX_SEED = 0xffff_ffff;

/**
 * `n` standard normal values (float32) from `seed`.
 * @param seed integer in [0, 2^32 − 1].
 * @throws RangeError for a seed outside that range or a negative / non-integer `n`.
 */
export function gaussianNoise(seed: number, n: number): Float32Array {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be a uint32, got ${seed}`);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  const rng = xoroshiro128plus(seed | 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniformFloat64(rng); // (0, 1]
    const u2 = uniformFloat64(rng);
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
