// The native sampling math that verification and drafting use (cpp/sampling.cc).
import { beforeAll, describe, expect, it } from "vitest";
import { loadAddon } from "../../src/native/addon.js";
import type { NativeAddon } from "../../src/native/types.js";
import { filteredDistribution } from "../engine/reference-math.js";

let s: NativeAddon["sampling"];
beforeAll(async () => {
  s = (await loadAddon()).sampling;
});

const logits = new Float32Array([2.0, 1.0, 0.5, -1.0, 3.0, 0.0]);
const sum = (a: Float32Array) => a.reduce((x, y) => x + y, 0);

// Deterministic low-discrepancy uniforms: empirical frequencies converge fast, so tight tolerances hold.
function frequencies(n: number, draw: (u: number) => number, size: number): number[] {
  const counts = new Array(size).fill(0);
  for (let i = 0; i < n; i++) counts[draw((i + 0.5) / n)]++;
  return counts.map((c) => c / n);
}

describe("native sampling math", () => {
  it("argmax takes the lowest index on ties", () => {
    expect(s.argmax(logits)).toBe(4);
    expect(s.argmax(new Float32Array([1, 3, 3, 0]))).toBe(1);
  });

  it("argmax equals the plain first-maximum scan on every length, tie pattern and NaN", () => {
    // the native one is blocked in lanes of 16 with a scalar tail: cover lengths around the block
    // edges, ties that fall in different lanes and blocks, few distinct values, NaNs and infinities
    const plain = (x: Float32Array) => {
      let best = 0;
      for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
      return best;
    };
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const lengths = [1, 2, 15, 16, 17, 31, 32, 33, 47, 100, 257, 32000];
    let checked = 0;
    for (const n of lengths) {
      for (let trial = 0; trial < 40; trial++) {
        const distinct = trial % 4 === 0 ? 3 : 0; // every 4th row: only 3 values, so many ties
        const x = new Float32Array(n).map(() => (distinct ? Math.floor(rand() * distinct) : rand() * 20 - 10));
        if (trial % 5 === 1) x[Math.floor(rand() * n)] = Number.NaN;
        if (trial % 7 === 2) x[0] = Number.NaN;
        if (trial % 6 === 3) x[Math.floor(rand() * n)] = Number.POSITIVE_INFINITY;
        if (trial % 9 === 4) x.fill(Number.NEGATIVE_INFINITY);
        expect(s.argmax(x), `n ${n} trial ${trial}`).toBe(plain(x));
        checked++;
      }
    }
    expect(checked).toBe(lengths.length * 40);
  });

  it("filtered distributions: greedy, temperature, top-k, top-p", () => {
    const g = s.filteredDist(logits, { temperature: 0, topK: 0, topP: 1 });
    expect(Array.from(g)).toEqual([0, 0, 0, 0, 1, 0]);
    const full = s.filteredDist(logits, { temperature: 1, topK: 0, topP: 1 });
    expect(sum(full)).toBeCloseTo(1, 5);
    const z = logits.reduce((a, l) => a + Math.exp(l), 0);
    full.forEach((p, i) => expect(p).toBeCloseTo(Math.exp(logits[i]) / z, 5));
    const hot = s.filteredDist(logits, { temperature: 2, topK: 0, topP: 1 });
    expect(hot[4]).toBeLessThan(full[4]);
    const k2 = s.filteredDist(logits, { temperature: 1, topK: 2, topP: 1 });
    expect(Array.from(k2).filter((p) => p > 0).length).toBe(2);
    expect(k2[4] + k2[0]).toBeCloseTo(1, 5);
    const p5 = s.filteredDist(logits, { temperature: 1, topK: 0, topP: 0.5 });
    expect(Array.from(p5).filter((p) => p > 0)).toHaveLength(1); // top token alone holds > 0.5
  });

  it("top-p alone keeps the same nucleus as a full sort, whatever its size", () => {
    // the native path sorts the likeliest 64 tokens, then 4x more at a time: cover nuclei inside
    // the first block, across several growth steps and the whole row, and ties at the cut
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const sizes = new Set<number>();
    for (const n of [5, 100, 3000, 32000]) {
      for (const [spread, temperature, topP] of [
        [12, 1, 0.5],
        [3, 1, 0.9],
        [1, 2, 0.99],
        [0, 1, 0.7],
        [8, 0.5, 0.95],
        [2, 1, 0.999],
      ] as const) {
        const x = new Float32Array(n).map(() => (spread ? (rand() - 0.5) * spread : Math.floor(rand() * 4)));
        const got = s.filteredDist(x, { temperature, topK: 0, topP });
        const want = filteredDistribution(x, { temperature, topK: 0, topP });
        const support = (d: ArrayLike<number>) => Array.from(d, (p, i) => (p > 0 ? i : -1)).filter((i) => i >= 0);
        expect(support(got), `n ${n} spread ${spread} T ${temperature} p ${topP}`).toEqual(support(want));
        got.forEach((p, i) => expect(p).toBeCloseTo(want[i]!, 6));
        sizes.add(support(want).length);
      }
    }
    expect(Math.max(...sizes)).toBeGreaterThan(256); // some nucleus needed more than two growth steps
    expect(Math.min(...sizes)).toBeLessThan(64);
  });

  it("sampleRow follows the weights", () => {
    const w = new Float32Array([0.1, 0.0, 0.6, 0.3]);
    const f = frequencies(10000, (u) => s.sampleRow(w, u), 4);
    [0.1, 0, 0.6, 0.3].forEach((p, i) => expect(f[i]).toBeCloseTo(p, 3));
  });

  it("sampleResidual samples normalize(max(0, p - q)); q one-hot removes the drafted token", () => {
    const p = new Float32Array([0.4, 0.3, 0.2, 0.1]);
    const q = new Float32Array([0.1, 0.5, 0.2, 0.2]);
    // residual: [0.3, 0, 0, 0] -> always token 0
    expect(frequencies(1000, (u) => s.sampleResidual(p, q, -1, u), 4)).toEqual([1, 0, 0, 0]);
    const q2 = new Float32Array([0.2, 0.2, 0.3, 0.3]);
    // residual: [0.2, 0.1, 0, 0] -> 2/3, 1/3
    const f2 = frequencies(9000, (u) => s.sampleResidual(p, q2, -1, u), 4);
    expect(f2[0]).toBeCloseTo(2 / 3, 3);
    expect(f2[1]).toBeCloseTo(1 / 3, 3);
    // greedy draft (one-hot at token 0): residual = p without token 0
    const f3 = frequencies(6000, (u) => s.sampleResidual(p, null, 0, u), 4);
    [0, 0.5, 1 / 3, 1 / 6].forEach((e, i) => expect(f3[i]).toBeCloseTo(e, 3));
    // q shorter than p (smaller draft vocabulary): missing entries count as 0
    const f4 = frequencies(1000, (u) => s.sampleResidual(p, new Float32Array([0.4, 0.3, 0.3]), -1, u), 4);
    expect(f4).toEqual([0, 0, 0, 1]);
    // p == q: no residual mass, falls back to p
    const f5 = frequencies(1000, (u) => s.sampleResidual(p, p, -1, u), 4);
    [0.4, 0.3, 0.2, 0.1].forEach((e, i) => expect(f5[i]).toBeCloseTo(e, 2));
  });

  it("rejects bad arguments", () => {
    expect(() => s.sampleRow(new Float32Array([1]), 1)).toThrow(RangeError);
    expect(() => s.filteredDist(new Float32Array(0), { temperature: 1, topK: 0, topP: 1 })).toThrow(/empty/);
    expect(() => s.filteredDist(logits, { temperature: Number.NaN, topK: 0, topP: 1 })).toThrow(RangeError);
    expect(() => s.argmax([1, 2] as unknown as Float32Array)).toThrow(TypeError);
  });
});
