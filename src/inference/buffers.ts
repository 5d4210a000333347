/**
 * Recycled input-tensor buffers (issue 32).
 *
 * A fresh multi-megabyte Float32Array costs far more than filling it: with `MALLOC_MMAP_THRESHOLD_` at 1 MiB
 * every such allocation is a new mmap, and each of its 4 KiB pages faults on first write — measured on this
 * 2-core VM, a 512² RGB input (3 MiB) took 8.4 ms to allocate and fill fresh vs 0.6 ms refilling a buffer
 * already in use, which was most of inpaint's time outside `session.run`. So the input buffers an inference
 * worker has finished with travel back to the main thread (transferred, not copied) and are handed out again
 * by {@link TensorBuffers.take} for the next input of the same size.
 *
 * Bounded: only buffers of {@link MIN_BYTES} to {@link MAX_BYTES} are kept (smaller ones come from malloc's
 * heap, already faulted; larger ones should go back to the system, as the memory design of issue 28 wants),
 * at most {@link PER_SIZE} per byte length and {@link TOTAL_BYTES} in all; the rest are left to the GC.
 */

/** Smallest buffer kept (bytes): below malloc's mmap threshold a fresh one costs nothing extra. */
export const MIN_BYTES = 512 * 1024;
/** Largest buffer kept (bytes): 16 MiB = a 1182² RGB float32 input. */
export const MAX_BYTES = 16 * 1024 * 1024;
/** Buffers kept per byte length (concurrent requests of one size). */
export const PER_SIZE = 4;
/** Bytes kept in all. */
export const TOTAL_BYTES = 48 * 1024 * 1024;

/** A free list of ArrayBuffers by byte length (module docstring). */
export class TensorBuffers {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private bytes = 0;
  /** Buffers handed out again / allocated fresh by {@link take} (for tests and metrics). */
  readonly stats = { reused: 0, fresh: 0 };

  constructor(private readonly limits = { minBytes: MIN_BYTES, maxBytes: MAX_BYTES, perSize: PER_SIZE, totalBytes: TOTAL_BYTES }) {}

  /**
   * A Float32Array of exactly `length` elements: a recycled one (its old contents still in it: the caller
   * must write every element) or a fresh, zeroed one.
   * @throws RangeError for a negative or non-integer length.
   */
  take(length: number): Float32Array {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`TensorBuffers.take: bad length ${length}`);
    const list = this.free.get(length * 4);
    const buf = list?.pop();
    if (buf) {
      this.bytes -= buf.byteLength;
      this.stats.reused++;
      return new Float32Array(buf);
    }
    this.stats.fresh++;
    return new Float32Array(length);
  }

  /**
   * Offer a buffer nobody uses any more (a detached one, one out of bounds or over the limits is ignored).
   * @returns whether it was kept.
   */
  give(buf: ArrayBuffer): boolean {
    const n = buf.byteLength; // 0 once detached (transferred)
    if (n === 0 || n < this.limits.minBytes || n > this.limits.maxBytes || this.bytes + n > this.limits.totalBytes) return false;
    const list = this.free.get(n) ?? [];
    if (list.length >= this.limits.perSize || list.includes(buf)) return false;
    list.push(buf);
    this.free.set(n, list);
    this.bytes += n;
    return true;
  }

  /** Bytes held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Drop every held buffer (to the GC). */
  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}

/** The process's recycler, shared by `imaging/tensor.ts` (take) and `inference/pool.ts` (give back). */
export const tensorBuffers = new TensorBuffers();
