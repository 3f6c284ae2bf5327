// TETRIS: the selection rule, and psd with TETRIS stays lossless while verifying k x m drafts.
import { describe, expect, it } from "vitest";
import { tetrisSelect } from "../../src/engine/tetris.js";
import { makeEngine, runWorkload, workload } from "./helpers.js";
import type { FakeOptions } from "./fake-backend.js";

describe("tetrisSelect", () => {
  it("keeps the budget's likeliest prefixes across chains", () => {
    // cumulative: a = .9, .81, .405 ; b = .5, .45, .405 ; c = .2, ... (a2 and b2 tie: earlier chain)
    const keep = tetrisSelect(
      [
        [0.9, 0.9, 0.5],
        [0.5, 0.9, 0.9],
        [0.2, 1, 1],
      ],
      5,
    );
    expect(keep).toEqual([3, 2, 0]);
    expect(
      tetrisSelect(
        [
          [0.9, 0.9, 0.5],
          [0.5, 0.9, 0.9],
          [0.2, 1, 1],
        ],
        4,
      ),
    ).toEqual([2, 2, 0]);
    expect(keep.reduce((a, b) => a + b, 0)).toBe(5);
  });

  it("is prefix-closed: a likely token behind an unlikely one waits for its prefix", () => {
    // chain 0's second token is certain, but its prefix (0.1) ranks below chain 1's tokens
    expect(
      tetrisSelect(
        [
          [0.1, 1, 1],
          [0.6, 0.6, 0.6],
        ],
        3,
      ),
    ).toEqual([0, 3]);
    expect(
      tetrisSelect(
        [
          [0.1, 1, 1],
          [0.6, 0.6, 0.6],
        ],
        4,
      ),
    ).toEqual([1, 3]);
    // once the prefix is in, the certain continuation (same cumulative score) comes first
    expect(
      tetrisSelect(
        [
          [0.1, 1, 1],
          [0.6, 0.6, 0.6],
        ],
        5,
      ),
    ).toEqual([2, 3]);
  });

  it("breaks ties by shorter prefix, then earlier chain; stops when chains run out; handles zeros", () => {
    expect(
      tetrisSelect(
        [
          [1, 1],
          [1, 1],
        ],
        3,
      ),
    ).toEqual([2, 1]);
    expect(tetrisSelect([[0.5], [0.5, 0.5]], 10)).toEqual([1, 2]);
    expect(tetrisSelect([[0, 0.9], [0.3]], 2)).toEqual([1, 1]);
    expect(tetrisSelect([[0.9]], 0)).toEqual([0]);
    expect(tetrisSelect([], 4)).toEqual([]);
  });

  it("with k = budget / m and equal chains, keeps k each", () => {
    const chains = Array.from({ length: 4 }, () => [0.8, 0.7, 0.6, 0.5, 0.4, 0.3]);
    expect(tetrisSelect(chains, 4 * 3)).toEqual([3, 3, 3, 3]);
  });
});

describe("psd with TETRIS", () => {
  const FAKE: FakeOptions = { eogToken: 0, eogBias: -1, draftNoise: 1.5 };
  const WORK = workload(20);

  for (const batchSize of [1, 3, 8]) {
    for (const [k, extra] of [
      [1, 2],
      [3, 2],
      [4, 4],
    ] as const) {
      it(`m=${batchSize} k=${k} e=${extra} emits ar's tokens and verifies at most k x m per batch`, async () => {
        const { engine: ar } = makeEngine({ mode: "ar", batchSize: 4 }, FAKE);
        const reference = await runWorkload(ar, WORK);
        const { engine, fake } = makeEngine({ mode: "psd", batchSize, draftTokens: k, tetris: { extra } }, FAKE);
        const results = await runWorkload(engine, WORK);
        results.forEach((r, i) => expect(r.tokens, `request ${i}`).toEqual(reference[i]!.tokens));
        const stats = engine.stats();
        const t = stats.tetris!;
        expect(t.extra).toBe(extra);
        expect(t.verifiedTokens).toBeLessThan(t.draftedTokens);
        expect(t.verifiedTokens).toBe(stats.draftedTokens);
        // verification stayed within the budget: k per request verified on average, never more
        const requestVerifies = engine
          .trace()
          .filter((e) => e.kind === "verify")
          .reduce((n, e) => n + e.requests.length, 0);
        expect(t.verifiedTokens).toBeLessThanOrEqual(k * requestVerifies);
        expect(t.verifiedTokens).toBeGreaterThan(0.8 * k * requestVerifies);
        for (const e of engine.trace().filter((e) => e.kind === "verify")) expect(e.k).toBeLessThanOrEqual(k + extra);
        const verifies = fake.calls.filter((c) => c.worker === "target" && c.kind === "verify");
        expect(verifies.length).toBeGreaterThan(0);
        // some chains got more than k (the budget moved to likelier prefixes), some fewer
        if (batchSize > 1) expect(stats.perPositionAcceptance.length).toBeGreaterThan(k);
        await engine.close();
        expect(fake.liveSeqs("draft")).toEqual([]);
      });
    }
  }

  it("rejects TETRIS outside psd and bad extras", () => {
    expect(() => makeEngine({ mode: "sd", tetris: { extra: 2 } })).toThrow(/psd/);
    expect(() => makeEngine({ mode: "psd", tetris: { extra: 0 } })).toThrow(/tetris.extra/);
    expect(() => makeEngine({ mode: "psd", tetris: { extra: 1.5 } })).toThrow(/tetris.extra/);
  });
});
