// Prompt lookup (n-gram) drafts: the index, greedy losslessness against ar, the sampled output's
// distribution (a proposal is a one-hot q), the per-source stats and the options.
import { describe, expect, it } from "vitest";
import type { SamplingParams } from "../../src/engine/backend.js";
import { Engine } from "../../src/engine/engine.js";
import { NgramIndex } from "../../src/engine/ngram.js";
import { FakeBackend, VOCAB, makePrompt } from "./fake-backend.js";
import { makeEngine, runWorkload, workload } from "./helpers.js";
import { chiSquareTest, histogram } from "./reference-math.js";

describe("NgramIndex", () => {
  it("proposes what followed the latest earlier occurrence of the longest suffix", () => {
    // suffix [2, 3] occurred at 0..1 (followed by 4) and 5..6 (followed by 9): the latest wins
    const index = new NgramIndex(3, [2, 3, 4, 5, 6, 2, 3, 9, 8, 7, 2, 3]);
    expect(index.propose(3)).toEqual([9, 8, 7]);
    // a longer match beats a more recent shorter one: [1, 2, 3] occurred once, [2, 3] later too
    const longer = new NgramIndex(3, [1, 2, 3, 4, 4, 2, 3, 5, 1, 2, 3]);
    expect(longer.propose(2)).toEqual([4, 4]);
    expect(new NgramIndex(1, [1, 2, 3, 4, 4, 2, 3, 5, 1, 2, 3]).propose(2)).toEqual([5, 1]);
  });

  it("continues a copy that reaches the end with its own tokens, and finds nothing in new text", () => {
    expect(new NgramIndex(3, [7, 1, 2, 1, 2]).propose(5)).toEqual([1, 2, 1, 2, 1]);
    expect(new NgramIndex(3, [1, 2, 3, 4]).propose(4)).toEqual([]);
    expect(new NgramIndex(3, [5]).propose(4)).toEqual([]);
    expect(new NgramIndex(3, []).propose(4)).toEqual([]);
  });

  it("is updated per pushed token", () => {
    const index = new NgramIndex(2, [1, 2, 3]);
    expect(index.propose(2)).toEqual([]);
    index.push(1);
    expect(index.propose(2)).toEqual([2, 3]);
    index.push(2);
    expect(index.propose(2)).toEqual([3, 1]);
    index.push(9);
    expect(index.propose(2)).toEqual([]);
  });
});

/** The first two tokens of `results` follow the fake target's distribution (the second: its marginal). */
function expectTargetDistribution(
  results: readonly { tokens: number[] }[],
  fake: FakeBackend,
  prompt: number[],
  sampling: SamplingParams,
): void {
  const first = chiSquareTest(
    histogram(
      results.map((r) => r.tokens[0]!),
      VOCAB,
    ),
    fake.targetDistribution(prompt, sampling),
  );
  expect(first.statistic).toBeLessThan(first.critical);
  const marginal = new Float64Array(VOCAB);
  fake.targetDistribution(prompt, sampling).forEach((pt, t) => {
    if (pt > 0) fake.targetDistribution([...prompt, t], sampling).forEach((p2, t2) => (marginal[t2]! += pt * p2));
  });
  const second = chiSquareTest(
    histogram(
      results.map((r) => r.tokens[1]!),
      VOCAB,
    ),
    marginal,
  );
  expect(second.statistic).toBeLessThan(second.critical);
}

/** Prompts that repeat themselves, so lookup finds matches (and the fake target sometimes agrees). */
function repetitive(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const base = makePrompt(300 + i, 3 + (i % 5));
    return [...base, ...base.slice(1), ...base.slice(1, 3)];
  });
}

describe("ngram drafts (sd, no draft worker)", async () => {
  const FAKE = { eogToken: 0, eogBias: -1, withDraft: false } as const;
  const base = workload(16);
  const WORK = { prompts: [...base.prompts, ...repetitive(8)], maxTokens: [...base.maxTokens, ...Array(8).fill(40)] };
  const { engine: ar } = makeEngine({ mode: "ar", batchSize: 4 }, FAKE);
  const reference = await runWorkload(ar, WORK);
  await ar.close();

  for (const batchSize of [1, 4]) {
    for (const [k, maxN] of [
      [1, 1],
      [4, 3],
      [6, 2],
    ] as const) {
      it(`greedy: m=${batchSize} k=${k} maxN=${maxN} emits ar's tokens`, async () => {
        const { engine, fake } = makeEngine({ mode: "sd", batchSize, draftTokens: k, ngram: { maxN } }, FAKE);
        const results = await runWorkload(engine, WORK);
        results.forEach((r, i) => {
          expect(r.tokens, `request ${i}`).toEqual(reference[i]!.tokens);
          expect(r.stats.finishReason).toBe(reference[i]!.stats.finishReason);
        });
        const stats = engine.stats();
        expect(stats.draftedTokens).toBeGreaterThan(0);
        expect(stats.acceptedTokens).toBeGreaterThan(0);
        expect(stats.acceptanceRate).toBeLessThan(1);
        const ngram = stats.draftSources!.ngram!;
        expect(ngram.draftedTokens).toBe(stats.draftedTokens);
        expect(ngram.acceptedTokens).toBe(stats.acceptedTokens);
        expect(ngram.hits).toBeGreaterThan(0);
        expect(ngram.hits).toBeLessThanOrEqual(ngram.lookups);
        const perRequest = results.reduce((n, r) => n + r.stats.draftSources!.ngram!.acceptedTokens, 0);
        expect(perRequest).toBe(ngram.acceptedTokens);
        await engine.close();
        expect(fake.liveSeqs("target")).toEqual([]);
        expect(fake.calls.filter((c) => c.worker === "draft")).toEqual([]);
      });
    }
  }
});

describe("ngram drafts, sampled: the output is distributed as the target's", () => {
  const RUNS = 3000;
  // ends with 5: lookup proposes what followed the earlier 5s, so every first token is a verified draft
  const PROMPT = [...makePrompt(99, 6), 5, 7, 5, 9, 4, 5, 7, 5];
  for (const sampling of [
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.8, topK: 6, topP: 0.9 },
  ]) {
    it(`T=${sampling.temperature} top-k ${sampling.topK} top-p ${sampling.topP}`, async () => {
      const fake = new FakeBackend({ withDraft: false, logitScale: 2 });
      const engine = new Engine(fake, { mode: "sd", batchSize: 8, draftTokens: 3, ngram: { maxN: 3 }, ...sampling });
      const results = await Promise.all(
        Array.from({ length: RUNS }, (_, i) => engine.generate(PROMPT, { maxTokens: 2, seed: 2000 + i })),
      );
      const stats = engine.stats();
      // every request's first round is a hit (its second may find nothing)
      expect(stats.draftSources!.ngram!.hits).toBeGreaterThanOrEqual(RUNS);
      expect(stats.acceptedTokens).toBeGreaterThan(50);
      expect(stats.acceptanceRate).toBeLessThan(0.9);
      expectTargetDistribution(results, fake, PROMPT, sampling);
      await engine.close();
    });
  }
});

describe("ngram combined with the draft model: lookup first, the model where it finds nothing", async () => {
  const FAKE = { eogToken: 0, eogBias: -1 } as const;
  const base = workload(16, 3);
  const WORK = { prompts: [...base.prompts, ...repetitive(8)], maxTokens: [...base.maxTokens, ...Array(8).fill(40)] };
  const { engine: ar } = makeEngine({ mode: "ar", batchSize: 4 }, FAKE);
  const reference = await runWorkload(ar, WORK);
  await ar.close();

  for (const [mode, extra] of [
    ["sd", {}],
    ["psd", {}],
    ["psd", { tetris: { extra: 2 } }],
    ["psd", { postVerify: true }],
    ["auto", {}],
  ] as const) {
    for (const batchSize of [1, 4]) {
      const label = `${mode}${"tetris" in extra ? " tetris" : "postVerify" in extra ? " post-verify" : ""}`;
      it(`greedy: ${label} m=${batchSize} emits ar's tokens; the draft cache follows lookup drafts`, async () => {
        const { engine, fake } = makeEngine({ mode, batchSize, draftTokens: 4, ngram: { maxN: 3 }, ...extra }, FAKE);
        const results = await runWorkload(engine, WORK);
        results.forEach((r, i) => expect(r.tokens, `request ${i}`).toEqual(reference[i]!.tokens));
        const stats = engine.stats();
        const { ngram, model } = stats.draftSources!;
        // both sources drafted, and their shares add up to the totals
        expect(ngram!.draftedTokens).toBeGreaterThan(0);
        expect(model!.draftedTokens).toBeGreaterThan(0);
        expect(ngram!.draftedTokens + model!.draftedTokens).toBe(stats.draftedTokens);
        expect(ngram!.acceptedTokens + model!.acceptedTokens).toBe(stats.acceptedTokens);
        const perRequest = results.reduce((n, r) => n + r.stats.draftSources!.model!.draftedTokens, 0);
        expect(perRequest).toBe(model!.draftedTokens);
        // the draft worker drafted only where lookup found nothing: fewer chains than verifications
        const drafted = fake.calls.filter((c) => c.worker === "draft" && c.kind === "draft");
        expect(drafted.length).toBeGreaterThan(0);
        await engine.close();
        expect(fake.liveSeqs("target")).toEqual([]);
        expect(fake.liveSeqs("draft")).toEqual([]);
      });
    }
  }

  it("auto with lookup alone (no draft model) emits ar's tokens", async () => {
    const { engine, fake } = makeEngine(
      { mode: "auto", batchSize: 2, draftTokens: 4, ngram: {} },
      { ...FAKE, withDraft: false },
    );
    const results = await runWorkload(engine, WORK);
    results.forEach((r, i) => expect(r.tokens, `request ${i}`).toEqual(reference[i]!.tokens));
    const stats = engine.stats();
    expect(stats.draftSources!.ngram!.draftedTokens).toBe(stats.draftedTokens);
    expect(stats.draftSources!.model).toBeUndefined();
    // auto decided from measured costs: it calibrated and chose some k for every step
    expect(stats.auto!.decisions.every((d) => d.schedule === "sequential")).toBe(true);
    await engine.close();
    expect(fake.calls.filter((c) => c.worker === "draft")).toEqual([]);
  });
});

describe("ngram combined with the draft model, sampled: the output is distributed as the target's", () => {
  const RUNS = 3000;
  // the prompt ends with 5, which occurred before: round 1 verifies looked-up drafts (one-hot q);
  // where a later round finds nothing, the draft model drafts (its own q): the second token mixes both
  const PROMPT = [...makePrompt(99, 6), 5, 7, 5, 9, 4, 5, 7, 5];
  for (const mode of ["sd", "psd"] as const) {
    it(`${mode}, T=1: first and second tokens`, async () => {
      const sampling = { temperature: 1, topK: 0, topP: 1 };
      const fake = new FakeBackend({ logitScale: 2 });
      const engine = new Engine(fake, { mode, batchSize: 8, draftTokens: 1, ngram: { maxN: 3 }, ...sampling });
      const results = await Promise.all(
        Array.from({ length: RUNS }, (_, i) => engine.generate(PROMPT, { maxTokens: 2, seed: 5000 + i })),
      );
      const { ngram, model } = engine.stats().draftSources!;
      expect(ngram!.hits).toBeGreaterThanOrEqual(RUNS);
      expect(model!.draftedTokens).toBeGreaterThan(100);
      expectTargetDistribution(results, fake, PROMPT, sampling);
      await engine.close();
    });
  }
});

describe("ngram options", () => {
  const fake = () => new FakeBackend({ withDraft: false });
  it("lookup alone works with sd and auto; psd needs a draft model; ar drafts nothing", () => {
    expect(() => new Engine(fake(), { mode: "psd", ngram: {} })).toThrow(/mode "psd" needs a draft model/);
    expect(() => new Engine(fake(), { mode: "sd" })).toThrow(/needs a draft model/);
    expect(new Engine(fake(), { mode: "sd", ngram: {} }).options.ngram).toEqual({ maxN: 3, combined: false });
    expect(new Engine(fake(), { mode: "auto", ngram: {} }).options.ngram).toEqual({ maxN: 3, combined: false });
    expect(new Engine(fake(), { mode: "ar", ngram: {} }).options.ngram).toBeUndefined();
    const withDraft = new FakeBackend();
    expect(new Engine(withDraft, { mode: "psd", ngram: { maxN: 2 } }).options.ngram).toEqual({
      maxN: 2,
      combined: true,
    });
  });
  it("checks maxN", () => {
    expect(() => new Engine(fake(), { mode: "sd", ngram: { maxN: 0 } })).toThrow(/ngram\.maxN/);
    expect(() => new Engine(fake(), { mode: "sd", ngram: { maxN: 9 } })).toThrow(/ngram\.maxN/);
  });
});
