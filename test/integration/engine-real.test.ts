// The engine on real llama.cpp contexts (tiny synthetic f32 pair): losslessness of sd/psd against
// ar, the target's distribution under stochastic psd, and request lifecycle.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, type CreateEngineOptions, type MinedraftEngine } from "../../src/create-engine.js";
import { AbortError } from "../../src/engine/errors.js";
import type { Mode } from "../../src/engine/types.js";
import { LlamaContext } from "../../src/native/context.js";
import { LlamaModel } from "../../src/native/model.js";
import { chiSquareFit, nextTokenDistribution } from "../helpers/distribution.js";
import { tinyPair } from "../helpers/models.js";

const PROMPTS = [
  "Once upon a time",
  "The capital of France is",
  "def fibonacci(n):",
  "In 1492, Columbus sailed",
  "Hello",
  "A B C D E F",
  "The quick brown fox jumps over the lazy dog because",
  "Rain in Spain falls mainly",
  "1, 2, 3, 4,",
  "Speculative decoding",
];
const MAX_TOKENS = 24;

let pair: { target: string; draft: string };
let targetModel: LlamaModel;
let draftModel: LlamaModel;

beforeAll(async () => {
  pair = await tinyPair();
  targetModel = await LlamaModel.load(pair.target);
  draftModel = await LlamaModel.load(pair.draft);
});

afterAll(() => {
  for (const m of [targetModel, draftModel]) {
    try {
      m?.dispose();
    } catch {}
  }
});

// One thread per model: these tests check tokens, not speed, and a 2-thread ggml context on a
// 2-core machine slows down badly whenever anything else (the test runner) wants a core.
async function withEngine<T>(
  mode: Mode,
  batchSize: number,
  k: number,
  f: (e: MinedraftEngine) => Promise<T>,
  extra: Partial<CreateEngineOptions> = {},
): Promise<T> {
  const e = await createEngine({
    mode,
    batchSize,
    draftTokens: k,
    contextSize: 256,
    target: { model: targetModel, threads: 1 },
    draft: { model: draftModel, threads: 1 },
    ...extra,
  });
  try {
    return await f(e);
  } finally {
    await e.close();
  }
}

const runAll = (mode: Mode, batchSize: number, k: number, extra: Partial<CreateEngineOptions> = {}) =>
  withEngine(
    mode,
    batchSize,
    k,
    async (e) => {
      const results = await Promise.all(PROMPTS.map((p) => e.generate(p, { maxTokens: MAX_TOKENS })));
      return { tokens: results.map((r) => r.tokens), stats: e.stats() };
    },
    extra,
  );

describe("lossless greedy decoding on llama.cpp", () => {
  let reference: number[][];
  beforeAll(async () => {
    reference = (await runAll("ar", 1, 1)).tokens; // one sequence at a time: plain greedy decoding
    expect(reference.every((t) => t.length === MAX_TOKENS)).toBe(true);
  });

  for (const batchSize of [1, 3, 8]) {
    it(`ar with batch ${batchSize} matches single-sequence decoding`, async () => {
      expect((await runAll("ar", batchSize, 1)).tokens).toEqual(reference);
    });
    for (const k of [1, 4]) {
      for (const mode of ["sd", "psd"] as const) {
        it(`${mode} batch ${batchSize} k ${k} emits exactly the ar tokens`, async () => {
          const { tokens, stats } = await runAll(mode, batchSize, k);
          expect(tokens).toEqual(reference);
          expect(stats.draftedTokens).toBeGreaterThan(0);
          expect(stats.acceptedTokens).toBeGreaterThan(0);
          expect(stats.meanAcceptanceLength).toBeGreaterThan(1);
        });
      }
    }
  }

  it("createEngine leaves post-verify off with both models on the CPU cores, and on when asked", async () => {
    expect(await withEngine("psd", 1, 2, async (e) => e.options.postVerify)).toBe(false);
    expect(await withEngine("psd", 1, 2, async (e) => e.options.postVerify, { postVerify: true })).toBe(true);
  });

  // on by choice: createEngine leaves post-verify off (and pre-verify with it) with both models on the CPU cores
  for (const k of [1, 4]) {
    for (const pre of [false, true]) {
      it(`psd one request at a time (${pre ? "pre- and " : ""}post-verify) k ${k} emits exactly the ar tokens, hits and misses`, async () => {
        const { tokens, stats } = await withEngine(
          "psd",
          1,
          k,
          async (e) => {
            const out: number[][] = [];
            for (const p of PROMPTS) out.push((await e.generate(p, { maxTokens: MAX_TOKENS })).tokens);
            return { tokens: out, stats: e.stats() };
          },
          { postVerify: true, preVerify: pre },
        );
        expect(tokens).toEqual(reference);
        const ahead = pre ? stats.preVerify! : stats.postVerify!;
        expect(ahead.hits).toBeGreaterThan(0);
        expect(ahead.hits).toBeLessThan(ahead.rounds);
      });
    }
  }

  for (const batchSize of [1, 3]) {
    for (const k of [1, 4]) {
      // probing every 2 steps: the schedule and k change all the time
      it(`auto batch ${batchSize} k_max ${k} emits exactly the ar tokens`, async () => {
        const { tokens, stats } = await runAll("auto", batchSize, k, { auto: { probeEvery: 2, probeBudget: 1 } });
        expect(tokens).toEqual(reference);
        // plain steps, and drafts at least as long as the calibration's (k / 2; probes walk k from there)
        const ks = stats.auto!.decisions.map((d) => d.k);
        expect(ks.includes(0) && Math.max(...ks) >= Math.ceil(k / 2)).toBe(true);
        if (batchSize > 1)
          expect(new Set(stats.auto!.decisions.map((d) => d.schedule))).toEqual(new Set(["sequential", "overlapped"]));
      });
      it(`psd + TETRIS batch ${batchSize} k ${k} e 2 emits exactly the ar tokens`, async () => {
        const { tokens, stats } = await runAll("psd", batchSize, k, { tetris: { extra: 2 } });
        expect(tokens).toEqual(reference);
        expect(stats.tetris!.verifiedTokens).toBeLessThan(stats.tetris!.draftedTokens);
        expect(stats.acceptedTokens).toBeGreaterThan(0);
      });
    }
  }

  it("auto with the default placement switches thread counts between steps and stays lossless", async () => {
    const e = await createEngine({
      mode: "auto",
      batchSize: 3,
      draftTokens: 3,
      contextSize: 256,
      target: { model: targetModel },
      draft: { model: draftModel },
      auto: { probeEvery: 2, probeBudget: 1 },
      // the plans themselves, not the core governor's answer to other load on a shared machine
      adaptThreads: false,
    });
    try {
      const plans = e.placement.threadPlans!;
      expect(plans.sequential.target).toBe(e.placement.cores);
      if (e.placement.cores >= 2)
        expect(plans.overlapped!.target + plans.overlapped!.draft).toBeLessThanOrEqual(e.placement.cores);
      const results = await Promise.all(PROMPTS.slice(0, 6).map((p) => e.generate(p, { maxTokens: MAX_TOKENS })));
      expect(results.map((r) => r.tokens)).toEqual(reference.slice(0, 6));
      const auto = e.stats().auto!;
      for (const d of auto.decisions)
        expect(d.threads).toEqual(d.schedule === "sequential" ? plans.sequential : plans.overlapped);
    } finally {
      await e.close();
    }
  });

  it("psd overlaps drafting with verification", async () => {
    const { stats } = await runAll("psd", 4, 4);
    expect(stats.overlapMs).toBeGreaterThan(0);
    expect(stats.hiddenDraftFraction).toBeGreaterThan(0.3);
  });
});

describe("stochastic psd preserves the target's distribution", () => {
  const prompt = "The meaning of life is";
  const temperature = 1.5;
  let p: Float32Array;

  beforeAll(async () => {
    p = await nextTokenDistribution(targetModel, prompt, temperature);
  });

  for (const draftTemperature of [temperature, 0.6]) {
    it(`first token ~ p (draft temperature ${draftTemperature})`, async () => {
      const samples = await withEngine("psd", 8, 3, (e) =>
        Promise.all(
          Array.from({ length: 1200 }, (_, i) =>
            e
              .generate(prompt, { maxTokens: 1, temperature, draftTemperature, seed: 1000 + i })
              .then((r) => r.tokens[0]),
          ),
        ),
      );
      const fit = chiSquareFit(samples, p);
      expect(fit.stat, fit.message).toBeLessThan(fit.critical);
    });
  }

  it("sampled, one request at a time: psd (post-verify, q read from the ahead draft's bank) gives sd's tokens", async () => {
    // The fake backend shows them identical per seed; here the ahead draft computes q with other batch
    // shapes than a fresh draft (d_k then the guess, not [d_k, bonus] at once), so float rounding may
    // rarely move a sample: most outputs must still be identical (a wrong q row or bank would not be).
    const run = (mode: Mode) =>
      withEngine(
        mode,
        1,
        3,
        async (e) => {
          const out: string[] = [];
          for (let seed = 0; seed < 12; seed++)
            out.push((await e.generate(prompt, { maxTokens: 24, temperature: 1, seed })).tokens.join(","));
          return { out, stats: e.stats() };
        },
        mode === "psd" ? { postVerify: true } : {},
      );
    const psd = await run("psd");
    const sd = await run("sd");
    const same = psd.out.filter((o, i) => o === sd.out[i]).length;
    expect(same, `${same} of ${psd.out.length} identical`).toBeGreaterThanOrEqual(10);
    expect(psd.stats.postVerify!.hits).toBeGreaterThan(0);
  });

  it("the same seed gives the same output; different seeds differ", async () => {
    const outs = await withEngine("psd", 2, 4, (e) =>
      Promise.all(
        [7, 7, 8].map((seed) =>
          e.generate(prompt, { maxTokens: 16, temperature: 1, seed }).then((r) => r.tokens.join(",")),
        ),
      ),
    );
    expect(outs[0]).toBe(outs[1]);
    expect(outs[0]).not.toBe(outs[2]);
  });
});

describe("requests", () => {
  it("abort one request mid-flight: the others still produce the ar tokens", async () => {
    const reference = (await runAll("ar", 4, 1)).tokens;
    await withEngine("psd", 2, 4, async (e) => {
      const ctrl = new AbortController();
      const runs = PROMPTS.map((prompt, i) =>
        e.generate(prompt, { maxTokens: MAX_TOKENS, signal: i === 1 ? ctrl.signal : undefined }),
      );
      setTimeout(() => ctrl.abort(), 5);
      const settled = await Promise.allSettled(runs);
      settled.forEach((s, i) => {
        if (i === 1) {
          if (s.status === "rejected") expect((s.reason as Error).name).toBe("AbortError");
        } else {
          expect(s.status).toBe("fulfilled");
          if (s.status === "fulfilled") expect(s.value.tokens).toEqual(reference[i]);
        }
      });
    });
  });

  it("close() with requests in flight rejects them with AbortError", async () => {
    const e = await createEngine({
      mode: "psd",
      batchSize: 2,
      target: { model: targetModel, threads: 1 },
      draft: { model: draftModel, threads: 1 },
      contextSize: 256,
    });
    const settledAll = Promise.allSettled(PROMPTS.map((prompt) => e.generate(prompt, { maxTokens: 200 })));
    await new Promise((r) => setTimeout(r, 20));
    await e.close();
    const settled = await settledAll;
    expect(settled.some((s) => s.status === "rejected" && (s.reason as Error) instanceof AbortError)).toBe(true);
  });

  it("a prompt longer than the context is refused; streaming yields the generated text", async () => {
    await withEngine("sd", 2, 4, async (e) => {
      await expect(e.generate("word ".repeat(400), { maxTokens: 4 })).rejects.toThrow(/context/);
      let text = "";
      for await (const piece of e.stream("Once upon a time", { maxTokens: 12 })) text += piece;
      const full = await e.generate("Once upon a time", { maxTokens: 12 });
      expect(text).toBe(full.text);
    });
  });

  it("refuses a draft with an incompatible vocabulary", async () => {
    const { tinyPairOtherVocab } = await import("../helpers/models.js");
    const other = await tinyPairOtherVocab();
    await expect(
      createEngine({ mode: "sd", target: { model: pair.target }, draft: { model: other.draft } }),
    ).rejects.toThrow(/cannot draft for the target: vocabulary types differ/);
  });
});

describe("runtime thread placement and draft confidences (native)", () => {
  it("setThreads changes the threads of later jobs, within 1..threadsMax, without changing results", async () => {
    const ctx = await LlamaContext.create(targetModel, { contextSize: 64, sequences: 1, threads: 1, threadsMax: 2 });
    try {
      expect(ctx.info()).toMatchObject({ threads: 1, threadsMax: 2, threadpool: true });
      const toks = targetModel.tokenize("The meaning of life is");
      const batch = { tokens: toks, pos: toks.map((_, i) => i), seq: toks.map(() => 0) };
      const one = await ctx.decode(batch);
      await ctx.setThreads(2);
      expect(ctx.info().threads).toBe(2);
      await ctx.removeSeq(0);
      const two = await ctx.decode(batch);
      // same graph, more threads: the same logits up to float summation order
      let maxDiff = 0;
      for (let i = 0; i < one.length; i++) maxDiff = Math.max(maxDiff, Math.abs(one[i]! - two[i]!));
      expect(maxDiff).toBeLessThan(1e-3);
      await ctx.setThreads(1);
      expect(ctx.info().threads).toBe(1);
      // back on one thread (the pool detached: the graph runs on the worker alone): bit-identical again
      await ctx.removeSeq(0);
      expect(Array.from(await ctx.decode(batch))).toEqual(Array.from(one));
      await ctx.setThreads(2); // and the pool comes back
      await ctx.removeSeq(0);
      const again = await ctx.decode(batch);
      for (let i = 0; i < one.length; i++) expect(Math.abs(again[i]! - two[i]!)).toBeLessThan(1e-6);
      await ctx.setThreads(1);
      expect(() => ctx.setThreads(3)).toThrow(RangeError);
      expect(() => ctx.setThreads(0)).toThrow(RangeError);
      expect(() => ctx.setThreads(1.5)).toThrow(RangeError);
      // the native side checks too
      expect(() => ctx.raw.setThreads(3)).toThrow(/threads/);
    } finally {
      await ctx.dispose();
    }
  });

  it("threadsMax below threads is refused", async () => {
    await expect(LlamaContext.create(targetModel, { contextSize: 64, threads: 2, threadsMax: 1 })).rejects.toThrow(
      /threadsMax/,
    );
  });

  it("draft(confidence) returns the draft's probability of each drafted token", async () => {
    const ctx = await LlamaContext.create(draftModel, { contextSize: 64, sequences: 2, threads: 1 });
    try {
      const toks = draftModel.tokenize("Once upon a time");
      await ctx.prefill(0, 0, toks.slice(0, -1));
      await ctx.prefill(1, 0, toks.slice(0, -1));
      const greedy = { temperature: 0, topK: 0, topP: 1 };
      const [withConf, without] = await ctx.draft([
        { seq: 0, pos: toks.length - 1, tokens: [toks[toks.length - 1]!], k: 3, sampling: greedy, confidence: true },
        { seq: 1, pos: toks.length - 1, tokens: [toks[toks.length - 1]!], k: 3, sampling: greedy },
      ]);
      expect(Array.from(withConf!.tokens)).toEqual(Array.from(without!.tokens));
      expect(Array.from(withConf!.probs)).toEqual([1, 1, 1]);
      expect(without!.confidence).toBeUndefined();
      const conf = Array.from(withConf!.confidence!);
      expect(conf).toHaveLength(3);
      for (const c of conf) {
        expect(c).toBeGreaterThan(0);
        expect(c).toBeLessThanOrEqual(1);
      }
      // the argmax's softmax probability is at least 1 / vocabulary size
      expect(Math.min(...conf)).toBeGreaterThanOrEqual(1 / draftModel.info.nVocab);
    } finally {
      await ctx.dispose();
    }
  });
});
