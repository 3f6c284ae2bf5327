// psd's post-verify: with one running request, the next round is drafted while the current one is
// verified (assuming every draft is accepted) and used when the target's bonus token is the draft's
// first guess. Lossless (greedy: ar's tokens; sampled: sd's tokens for the same seed, and the
// target's distribution), both the hit and the miss path, aborts and failures in mid-overlap.
// Pre-verify (preVerify: true): a step without drafts runs a plain target step while the
// draft guesses its token and drafts the round after it; greedy: ar's tokens; sampled: the target's
// distribution.
import { describe, expect, it } from "vitest";
import type { SamplingParams } from "../../src/engine/backend.js";
import { Engine } from "../../src/engine/engine.js";
import type { GenerateResult, TraceEvent } from "../../src/engine/types.js";
import { FakeBackend, VOCAB, makePrompt, type FakeOptions } from "./fake-backend.js";
import { makeEngine, rejection, workload } from "./helpers.js";
import { chiSquareTest, histogram } from "./reference-math.js";

const DELAYS: FakeOptions = { draftDelayMs: 1, verifyDelayMs: 4 };
const overlaps = (a: TraceEvent, b: TraceEvent) => Math.min(a.end, b.end) - Math.max(a.start, b.start) > 0;

/** One request, greedy, checked against ar; its verify and draft calls (prefills left out). */
async function oneRequestTrace(preVerify: boolean, promptSeed: number) {
  const { engine, fake } = makeEngine(
    { mode: "psd", batchSize: 2, draftTokens: 3, preVerify },
    { ...DELAYS, draftNoise: 0.3 },
  );
  const prompt = makePrompt(promptSeed, 6);
  const result = await engine.generate(prompt, { maxTokens: 60 });
  expect(result.tokens).toEqual(fake.greedyContinuation(prompt, 60));
  const trace = engine.trace().filter((e) => e.kind !== "prefill");
  return {
    engine,
    verifies: trace.filter((e) => e.kind === "verify"),
    drafts: trace.filter((e) => e.kind === "draft"),
  };
}

/** One request at a time (the CLI / chat case): every step has one running request. */
async function oneAtATime(engine: Engine, prompts: number[][], maxTokens: number[]): Promise<GenerateResult[]> {
  const out: GenerateResult[] = [];
  for (let i = 0; i < prompts.length; i++) out.push(await engine.generate(prompts[i]!, { maxTokens: maxTokens[i] }));
  return out;
}

describe("post-verify (psd, one running request)", () => {
  for (const draftNoise of [0.3, 1.5, 4]) {
    for (const [k, preVerify] of [
      [1, false],
      [4, false],
      [1, true],
      [4, true],
    ] as const) {
      it(`greedy: ar's tokens, both paths (draft noise ${draftNoise}, k=${k}${preVerify ? ", pre-verify" : ""})`, async () => {
        const w = workload(8, 5);
        const { engine, fake } = makeEngine(
          { mode: "psd", batchSize: 2, draftTokens: k, preVerify },
          { draftNoise, eogToken: 0, eogBias: -1 },
        );
        const results = await oneAtATime(engine, w.prompts, w.maxTokens);
        results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!)));
        const pv = engine.stats().postVerify!;
        expect(pv.rounds).toBeGreaterThan(0);
        if (draftNoise < 4) expect(pv.hits).toBeGreaterThan(0); // the hit path
        expect(pv.hits).toBeLessThan(pv.rounds); // and the miss path
        expect(pv.hitRate).toBeCloseTo(pv.hits / pv.rounds);
        await engine.close();
      });
    }
  }

  it("drafts while the target verifies, and a hit skips the next draft call", async () => {
    const { engine, verifies, drafts } = await oneRequestTrace(false, 3);
    // every verification but the last ones (near maxTokens) runs alongside an ahead draft
    const overlapped = verifies.filter((v) => drafts.some((d) => d.step === v.step && overlaps(v, d)));
    expect(overlapped.length).toBeGreaterThan(verifies.length / 2);
    // hits: steps that verify without drafting first (the drafts came from the previous step)
    const draftFirst = verifies.filter((v) => drafts.some((d) => d.step === v.step && d.end <= v.start));
    expect(draftFirst.length).toBeLessThan(verifies.length);
    expect(engine.stats().postVerify!.hits).toBe(verifies.length - draftFirst.length);
    await engine.close();
  });

  it("postVerify: false runs sequential sd for one request; it is refused outside psd", async () => {
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3, postVerify: false }, DELAYS);
    const prompt = makePrompt(4, 5);
    const result = await engine.generate(prompt, { maxTokens: 20 });
    expect(result.tokens).toEqual(fake.greedyContinuation(prompt, 20));
    const trace = engine.trace().filter((e) => e.kind !== "prefill");
    for (const v of trace.filter((e) => e.kind === "verify"))
      expect(trace.some((d) => d.kind === "draft" && overlaps(v, d))).toBe(false);
    expect(engine.stats().postVerify).toBeUndefined();
    await engine.close();
    expect(() => new Engine(new FakeBackend(), { mode: "sd", postVerify: true })).toThrow(/postVerify/);
  });

  it("sampled: the same tokens as sd for the same seed (post-verify alone)", async () => {
    const sampling = { temperature: 1, topK: 0, topP: 1 };
    const run = async (mode: "sd" | "psd") => {
      const fake = new FakeBackend({ draftNoise: 0.8, logitScale: 2 });
      const pre = mode === "psd" ? { preVerify: false } : {};
      const engine = new Engine(fake, { mode, batchSize: 2, draftTokens: 3, ...sampling, ...pre });
      const out: number[][] = [];
      for (let seed = 0; seed < 12; seed++)
        out.push((await engine.generate(makePrompt(seed, 5), { maxTokens: 40, seed })).tokens);
      const stats = engine.stats();
      await engine.close();
      return { out, stats };
    };
    const psd = await run("psd");
    const sd = await run("sd");
    expect(psd.out).toEqual(sd.out);
    expect(psd.stats.postVerify!.hits).toBeGreaterThan(0);
    expect(psd.stats.postVerify!.hits).toBeLessThan(psd.stats.postVerify!.rounds);
  });

  it("an abort in mid-overlap (during the verification, the ahead draft in flight) frees the request", async () => {
    const { engine, fake } = makeEngine(
      { mode: "psd", batchSize: 2, draftTokens: 3 },
      { draftDelayMs: 3, verifyDelayMs: 2, draftNoise: 0.3 },
    );
    for (const after of [1, 5, 12]) {
      const controller = new AbortController();
      let pieces = 0;
      // onText runs as the verification is applied: the ahead draft (4 x 3 ms) is still running
      const aborted = engine.generate(makePrompt(after, 6), {
        maxTokens: 200,
        signal: controller.signal,
        onText: () => void (++pieces === after && controller.abort()),
      });
      expect((await rejection(aborted)).name).toBe("AbortError");
      const prompt = makePrompt(100 + after, 4);
      const next = await engine.generate(prompt, { maxTokens: 30 });
      expect(next.tokens).toEqual(fake.greedyContinuation(prompt, 30));
    }
    expect(engine.stats().postVerify!.hits).toBeGreaterThan(0);
    // every slot was released on both workers (close waits for the loop's last release)
    await engine.close();
    expect(fake.liveSeqs("target")).toEqual([]);
    expect(fake.liveSeqs("draft")).toEqual([]);
  });

  it("a failing ahead draft fails only its request", async () => {
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 2 }, { ...DELAYS, draftNoise: 0.3 });
    // draft calls: 1 = the first round's, 2 = the first ahead draft
    fake.failOn("draft", "draft", 2, new Error("injected ahead failure"));
    expect((await rejection(engine.generate(makePrompt(1, 5), { maxTokens: 30 }))).message).toBe(
      "injected ahead failure",
    );
    const prompt = makePrompt(2, 5);
    expect((await engine.generate(prompt, { maxTokens: 30 })).tokens).toEqual(fake.greedyContinuation(prompt, 30));
    await engine.close();
  });

  it("pre-verify: a step without drafts is a plain target step beside the ahead draft; a hit verifies next step", async () => {
    const { engine, verifies, drafts } = await oneRequestTrace(true, 5);
    // no step drafts before its verification: every draft runs beside a verification (pre- or post-verify)
    expect(verifies.filter((v) => drafts.some((d) => d.step === v.step && d.end <= v.start))).toEqual([]);
    const plain = verifies.filter((v) => v.k === 0);
    expect(plain.length).toBeGreaterThan(0);
    for (const v of plain.slice(0, -1)) expect(drafts.some((d) => d.step === v.step && overlaps(v, d))).toBe(true);
    const pre = engine.stats().preVerify!;
    expect(pre.rounds).toBeGreaterThan(0);
    expect(pre.hits).toBeGreaterThan(0);
    expect(pre.hits).toBeLessThan(pre.rounds);
    expect(engine.stats().postVerify!.rounds).toBeGreaterThan(0);
    await engine.close();
    expect(() => new Engine(new FakeBackend(), { mode: "sd", preVerify: true })).toThrow(/preVerify/);
    expect(() => new Engine(new FakeBackend(), { mode: "psd", postVerify: false, preVerify: true })).toThrow(
      /preVerify .*needs postVerify/,
    );
  });

  it("without preVerify a request without drafts is drafted first, then verified beside the ahead draft", async () => {
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 }, { ...DELAYS, draftNoise: 0.3 });
    const prompt = makePrompt(6, 6);
    expect((await engine.generate(prompt, { maxTokens: 40 })).tokens).toEqual(fake.greedyContinuation(prompt, 40));
    expect(engine.trace().filter((e) => e.kind === "verify" && e.k === 0)).toEqual([]);
    expect(engine.stats().preVerify).toBeUndefined();
    await engine.close();
  });

  it("the tail of a batch (one request left) runs post-verify, losslessly", async () => {
    const w = workload(6, 2);
    w.maxTokens = [4, 60, 4, 4, 4, 4];
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 }, { ...DELAYS, draftNoise: 0.3 });
    const results = await Promise.all(w.prompts.map((p, i) => engine.generate(p, { maxTokens: w.maxTokens[i] })));
    results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!)));
    expect(engine.stats().postVerify!.rounds).toBeGreaterThan(0);
    await engine.close();
  });
});

/** Marginal of generated token `n` (0-based) after PROMPT under the target alone. */
function tokenMarginal(fake: FakeBackend, prompt: number[], sampling: SamplingParams, n: number): Float64Array {
  const out = new Float64Array(VOCAB);
  const walk = (prefix: number[], weight: number, depth: number) => {
    const p = fake.targetDistribution(prefix, sampling);
    if (depth === n) {
      p.forEach((pt, t) => (out[t]! += weight * pt));
      return;
    }
    p.forEach((pt, t) => pt > 0 && walk([...prefix, t], weight * pt, depth + 1));
  };
  walk(prompt, 1, 0);
  return out;
}

describe("post-verify and pre-verify sample from the target's distribution", () => {
  const RUNS = 2500;
  const PROMPT = makePrompt(99, 6);
  const samplings = [
    { name: "T=1, k=1", sampling: { temperature: 1, topK: 0, topP: 1 }, k: 1 },
    { name: "T=0.8 top-k 6, draft T=0.5, k=2", sampling: { temperature: 0.8, topK: 6, topP: 1 }, k: 2, draftT: 0.5 },
  ];
  // each sampling with post-verify alone, then with pre-verify too
  for (const setting of [false, true].flatMap((preVerify) =>
    samplings.map((s) => ({ ...s, name: preVerify ? `pre-verify, ${s.name}` : s.name, preVerify })),
  )) {
    it(`one request at a time, ${setting.name}: tokens 1..3 (drafted ahead after a hit)`, async () => {
      const fake = new FakeBackend({ draftNoise: 0.7, logitScale: 2 });
      const engine = new Engine(fake, {
        mode: "psd",
        batchSize: 1,
        draftTokens: setting.k,
        preVerify: setting.preVerify,
        ...setting.sampling,
      });
      const results: GenerateResult[] = [];
      for (let i = 0; i < RUNS; i++)
        results.push(await engine.generate(PROMPT, { maxTokens: 4, seed: 7000 + i, draftTemperature: setting.draftT }));
      const stats = engine.stats();
      const ahead = setting.preVerify ? stats.preVerify! : stats.postVerify!;
      expect(ahead.hits).toBeGreaterThan(RUNS / 10);
      expect(ahead.hits).toBeLessThan(ahead.rounds);
      for (let n = 0; n < 3; n++) {
        const test = chiSquareTest(
          histogram(
            results.map((r) => r.tokens[n]!),
            VOCAB,
          ),
          tokenMarginal(fake, PROMPT, setting.sampling, n),
        );
        expect(test.statistic, `token ${n}`).toBeLessThan(test.critical);
      }
      await engine.close();
    }, 60_000);
  }
});
