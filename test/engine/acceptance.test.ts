// The stochastic acceptance rule, run end to end against an exact reference of the native math,
// reproduces the target distribution; a wrong rule does not.
import { describe, expect, it } from "vitest";
import { acceptGreedy, acceptStochastic, type AcceptanceResult } from "../../src/engine/acceptance.js";
import { Rng } from "../../src/engine/rng.js";
import { chiSquareTest, histogram, residualDistribution, sampleFrom } from "./reference-math.js";

type Rule = (draft: number[], q: number[], p: number[], alt: number[], u: number[]) => AcceptanceResult;

const P = [0.4, 0.25, 0.2, 0.1, 0.05];
const CASES: Record<string, number[]> = {
  "q equal to p": P,
  "q close to p": [0.35, 0.3, 0.2, 0.1, 0.05],
  "q far from p": [0.05, 0.05, 0.1, 0.3, 0.5],
  "q missing part of p's support": [0, 0, 0.5, 0.5, 0],
  "q one-hot (greedy draft)": [0, 0, 0, 1, 0],
};

/**
 * Generates `length` tokens by repeated speculative steps with k drafts from q against p (both
 * independent of the prefix, so every output position must be distributed as p).
 */
function generate(rule: Rule, p: number[], q: number[], k: number, length: number, rng: Rng): number[] {
  const residual = residualDistribution(p, q);
  const out: number[] = [];
  while (out.length < length) {
    const draft = Array.from({ length: k }, () => sampleFrom(q, rng.uniform()));
    const alt = [...draft.map(() => sampleFrom(residual, rng.uniform())), sampleFrom(p, rng.uniform())];
    const { emitted } = rule(
      draft,
      draft.map((t) => q[t]!),
      draft.map((t) => p[t]!),
      alt,
      rng.uniforms(k),
    );
    out.push(...emitted);
  }
  return out.slice(0, length);
}

function positionCounts(rule: Rule, q: number[], k: number, length: number, runs: number, seed: number): number[][] {
  const rng = new Rng(seed);
  const samples = Array.from({ length: runs }, () => generate(rule, P, q, k, length, rng));
  return Array.from({ length }, (_, pos) =>
    histogram(
      samples.map((s) => s[pos]!),
      P.length,
    ),
  );
}

const alwaysAccept: Rule = (draft, _q, _p, alt) => ({
  accepted: draft.length,
  emitted: [...draft, alt[draft.length]!],
});

describe("stochastic acceptance preserves the target distribution", () => {
  for (const [name, q] of Object.entries(CASES)) {
    for (const k of [1, 3]) {
      it(`${name}, k=${k}`, () => {
        const counts = positionCounts(acceptStochastic, q, k, 4, 20_000, 7 + k);
        for (const c of counts) {
          const test = chiSquareTest(c, P);
          expect(test.statistic, JSON.stringify(c)).toBeLessThan(test.critical);
        }
      });
    }
  }

  it("negative control: always accepting fails the same test", () => {
    for (const q of [CASES["q far from p"]!, CASES["q close to p"]!]) {
      const [first] = positionCounts(alwaysAccept, q, 3, 1, 20_000, 11);
      const test = chiSquareTest(first!, P);
      expect(test.statistic).toBeGreaterThan(test.critical);
    }
  });

  it("negative control: accepting with probability p (ignoring q) fails", () => {
    const ignoreQ: Rule = (draft, q, p, alt, u) =>
      acceptStochastic(
        draft,
        q.map(() => 1),
        p,
        alt,
        u,
      );
    const [first] = positionCounts(ignoreQ, CASES["q far from p"]!, 1, 1, 20_000, 12);
    expect(chiSquareTest(first!, P).pass).toBe(false);
  });
});

describe("acceptance rules", () => {
  it("greedy accepts the matching prefix and emits the correction", () => {
    expect(acceptGreedy([3, 4, 5], [3, 4, 9, 1])).toEqual({ accepted: 2, emitted: [3, 4, 9] });
    expect(acceptGreedy([3], [2, 7])).toEqual({ accepted: 0, emitted: [2] });
  });

  it("greedy emits the bonus token when all drafts match", () => {
    expect(acceptGreedy([3, 4], [3, 4, 8])).toEqual({ accepted: 2, emitted: [3, 4, 8] });
  });

  it("greedy with no drafts is a plain decode step", () => {
    expect(acceptGreedy([], [6])).toEqual({ accepted: 0, emitted: [6] });
  });

  it("stochastic compares u against p/q", () => {
    // p/q = 0.5: u = 0.49 accepts, u = 0.5 rejects
    expect(acceptStochastic([1, 2], [0.4, 0.4], [0.2, 0.2], [7, 8, 9], [0.49, 0.5])).toEqual({
      accepted: 1,
      emitted: [1, 8],
    });
    // p >= q always accepts, even with u close to 1
    expect(acceptStochastic([1], [0.3], [0.6], [7, 9], [0.999])).toEqual({ accepted: 1, emitted: [1, 9] });
    // p = 0 always rejects
    expect(acceptStochastic([1], [0.3], [0], [7, 9], [0])).toEqual({ accepted: 0, emitted: [7] });
  });
});

describe("Rng", () => {
  it("is deterministic per seed and differs across seeds", () => {
    expect(new Rng(42).uniforms(8)).toEqual(new Rng(42).uniforms(8));
    expect(new Rng(42).uniforms(8)).not.toEqual(new Rng(43).uniforms(8));
    expect(new Rng(2 ** 40).uniforms(4)).not.toEqual(new Rng(0).uniforms(4));
  });

  it("yields float32-exact uniforms in [0, 1) with a flat histogram", () => {
    const rng = new Rng(1);
    const bins = new Array<number>(10).fill(0);
    let bad = 0;
    for (let i = 0; i < 50_000; i++) {
      const u = rng.uniform();
      if (!(u >= 0 && u < 1 && Math.fround(u) === u)) bad++;
      bins[Math.floor(u * 10)]!++;
    }
    expect(bad).toBe(0);
    expect(chiSquareTest(bins, new Array(10).fill(0.1)).pass).toBe(true);
  });
});
