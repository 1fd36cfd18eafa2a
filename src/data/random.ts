/**
 * A small seeded pseudo-random generator (xoshiro128**), so that every random draw in the data
 * pipeline is reproducible from a seed and independent of which thread makes it.
 *
 * @module
 */

const TWO_POW_32 = 4294967296;

/** Murmur3's 32-bit finaliser: a cheap bijective mix with good avalanche. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * xoshiro128** with a seed made of up to three integers: a user seed and two stream
 * numbers (for example epoch and image index), so that each image of each epoch draws from its
 * own stream whatever thread computes it.
 *
 * @example
 * ```ts
 * import { Random } from "./random.ts";
 * const rng = new Random(42, 0, 7);
 * const x = rng.float(); // in [0, 1)
 * ```
 */
export class Random {
  // State in a typed array: 32-bit words kept in object fields would be boxed as heap numbers
  // (V8's small integers hold 31 bits), which made each draw several times slower.
  readonly #s = new Int32Array(4);

  /** Seeds the generator; see {@linkcode Random.prototype.reseed}. */
  constructor(seed: number, stream = 0, substream = 0) {
    this.reseed(seed, stream, substream);
  }

  /**
   * Restarts the generator at the stream for (seed, stream, substream) without allocating.
   * Each argument is an integer; the seed may use up to 53 bits, the streams 32.
   */
  reseed(seed: number, stream = 0, substream = 0): this {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    // Four lanes with different starting constants give 128 bits of state that differ for any
    // two distinct inputs with overwhelming probability.
    const s = this.#s;
    s[0] = 0x243f6a88;
    s[1] = 0x85a308d3;
    s[2] = 0x13198a2e;
    s[3] = 0x03707344;
    this.#absorb(lo);
    this.#absorb(hi);
    this.#absorb(stream >>> 0);
    this.#absorb(substream >>> 0);
    s[3] |= 1; // never the all-zero state, which xoshiro cannot leave
    return this;
  }

  #absorb(word: number): void {
    const s = this.#s;
    s[0] = mix32(s[0] ^ word);
    s[1] = mix32(s[1] + word);
    s[2] = mix32(s[2] ^ Math.imul(word, 0x9e3779b1));
    s[3] = mix32(s[3] - word);
  }

  /** The next 32 random bits as an unsigned integer. */
  next(): number {
    const s = this.#s;
    const s0 = s[0], s1 = s[1];
    const s2 = s[2] ^ s0, s3 = s[3] ^ s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    s[0] = s0 ^ s3;
    s[1] = s1 ^ s2;
    s[2] = s2 ^ (s1 << 9);
    s[3] = rotl(s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.next() / TWO_POW_32;
  }

  /** A uniform float in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.float();
  }

  /** A uniform integer in [0, n); n must be a positive integer below 2^32. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates), like `torch.randperm(n)`. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }

  /** Shuffles `values` in place (Fisher–Yates). */
  shuffle(values: Int32Array | number[]): void {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = values[i];
      values[i] = values[j];
      values[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
