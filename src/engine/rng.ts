// Per-request seeded PRNG: xoshiro128** (32-bit ops only) seeded through splitmix32.
// One stream per request, so a request's randomness never depends on what else is batched with it.

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_MINUS_24 = 1 / 0x100_0000;

function splitmix32(state: number): [next: number, state: number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [z >>> 0, state];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** Any finite number is a valid seed; integers up to 2^53 keep all their bits. */
  constructor(seed: number) {
    const low = seed >>> 0;
    const high = Math.floor(seed / TWO_POW_32) >>> 0;
    let state = low ^ Math.imul(high, 0x27d4eb2d);
    let word: number;
    [word, state] = splitmix32(state);
    this.s0 = word;
    [word, state] = splitmix32(state);
    this.s1 = word ^ high;
    [word, state] = splitmix32(state);
    this.s2 = word;
    [word, state] = splitmix32(state);
    this.s3 = word;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /**
   * Uniform in [0,1) with 24 random bits: exactly representable as a float32, so a native side that
   * stores it as float can never round it up to 1.
   */
  uniform(): number {
    return (this.nextUint32() >>> 8) * TWO_POW_MINUS_24;
  }

  uniforms(n: number): number[] {
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform();
    return out;
  }
}

/** A seed for requests that did not ask for one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * TWO_POW_32);
}
