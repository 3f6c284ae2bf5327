// Exact TypeScript reference of the sampling math the native side implements (filtered softmax,
// inverse-CDF sampling, residual distribution), plus a chi-square goodness-of-fit test.
import type { SamplingParams } from "../../src/engine/backend.js";

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** softmax(logits / T), then top-k, then top-p (on the renormalized top-k), renormalized. T = 0: one-hot argmax. */
export function filteredDistribution(logits: ArrayLike<number>, s: SamplingParams): Float64Array {
  const n = logits.length;
  const out = new Float64Array(n);
  if (s.temperature === 0) {
    out[argmax(logits)] = 1;
    return out;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]! / s.temperature);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(logits[i]! / s.temperature - max);
  for (let i = 0; i < n; i++) out[i]! /= sum;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => out[b]! - out[a]! || a - b);
  let keep = s.topK > 0 ? Math.min(s.topK, n) : n;
  if (s.topP < 1) {
    let kept = 0;
    for (let j = 0; j < keep; j++) kept += out[order[j]!]!;
    let cum = 0;
    for (let j = 0; j < keep; j++) {
      cum += out[order[j]!]! / kept;
      if (cum >= s.topP) {
        keep = j + 1;
        break;
      }
    }
  }
  let total = 0;
  for (let j = 0; j < n; j++) {
    if (j < keep) total += out[order[j]!]!;
    else out[order[j]!] = 0;
  }
  for (let i = 0; i < n; i++) out[i]! /= total;
  return out;
}

/** Inverse CDF in index order. */
export function sampleFrom(dist: ArrayLike<number>, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < dist.length; i++) {
    if (dist[i]! <= 0) continue;
    cum += dist[i]!;
    last = i;
    if (u < cum) return i;
  }
  return last;
}

/** normalize(max(0, p - q)); p itself if that is all zero (then p == q and no rejection can happen). */
export function residualDistribution(p: ArrayLike<number>, q: ArrayLike<number>): Float64Array {
  const out = new Float64Array(p.length);
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += out[i] = Math.max(0, p[i]! - q[i]!);
  if (sum <= 0) return Float64Array.from(p);
  for (let i = 0; i < p.length; i++) out[i]! /= sum;
  return out;
}

export interface ChiSquareResult {
  statistic: number;
  df: number;
  critical: number;
  pass: boolean;
}

/**
 * Pearson chi-square of observed counts against probabilities at significance 0.001. Bins with an
 * expected count under 5 are pooled; an observation where the probability is 0 fails outright.
 */
export function chiSquareTest(counts: ArrayLike<number>, probs: ArrayLike<number>): ChiSquareResult {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  let statistic = 0;
  let bins = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (let i = 0; i < probs.length; i++) {
    const expected = probs[i]! * n;
    const observed = counts[i] ?? 0;
    if (expected === 0) {
      if (observed > 0) statistic = Infinity;
      continue;
    }
    if (expected < 5) {
      pooledObserved += observed;
      pooledExpected += expected;
      continue;
    }
    statistic += (observed - expected) ** 2 / expected;
    bins++;
  }
  if (pooledExpected > 0) {
    statistic += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    bins++;
  }
  const df = Math.max(1, bins - 1);
  // Wilson-Hilferty approximation of the 0.999 quantile
  const z = 3.0902;
  const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
  return { statistic, df, critical, pass: statistic < critical };
}

export function histogram(values: readonly number[], size: number): number[] {
  const counts = new Array<number>(size).fill(0);
  for (const v of values) counts[v]!++;
  return counts;
}
