// Prompt lookup (n-gram) drafts on real llama.cpp contexts (tiny synthetic f32 target, no draft model):
// greedy output identical to ar, the first sampled token distributed as p, and the native one-hot q.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, type CreateEngineOptions } from "../../src/create-engine.js";
import { LlamaContext } from "../../src/native/context.js";
import { LlamaModel } from "../../src/native/model.js";
import { chiSquareFit, nextTokenDistribution } from "../helpers/distribution.js";
import { tinyPair } from "../helpers/models.js";

const PROMPTS = [
  "the cat sat on the mat and the cat sat on the",
  "1, 2, 3, 1, 2, 3, 1, 2,",
  "Once upon a time",
  "def f(x): return x def f(y): return",
  "The quick brown fox jumps over the lazy dog. The quick brown",
  "Hello",
];
const MAX_TOKENS = 48;

let target: LlamaModel;
let draftModel: LlamaModel;

beforeAll(async () => {
  const pair = await tinyPair();
  [target, draftModel] = await Promise.all([LlamaModel.load(pair.target), LlamaModel.load(pair.draft)]);
});

afterAll(() => {
  target?.dispose();
  draftModel?.dispose();
});

async function run(options: Partial<CreateEngineOptions>, prompts: readonly string[], maxTokens = MAX_TOKENS) {
  const e = await createEngine({ contextSize: 256, target: { model: target, threads: 1 }, ...options });
  try {
    const results = await Promise.all(prompts.map((p) => e.generate(p, { maxTokens })));
    return { e, tokens: results.map((r) => r.tokens), stats: e.stats(), results };
  } finally {
    await e.close();
  }
}

describe("ngram drafts on llama.cpp", () => {
  let reference: number[][];
  beforeAll(async () => {
    reference = (await run({ mode: "ar", batchSize: 1 }, PROMPTS)).tokens;
  });

  for (const batchSize of [1, 4]) {
    for (const k of [1, 4]) {
      it(`sd + ngram batch ${batchSize} k ${k} emits exactly the ar tokens, with no draft context`, async () => {
        const { e, tokens, stats } = await run({ batchSize, draftTokens: k, draft: { ngram: { maxN: 3 } } }, PROMPTS);
        expect(e.options.mode).toBe("sd");
        expect(e.placement.draftDevice).toBe("none");
        expect(e.placement.draftThreads).toBe(0);
        expect(tokens).toEqual(reference);
        const ngram = stats.draftSources!.ngram!;
        expect(ngram.hits).toBeGreaterThan(0);
        expect(stats.draftedTokens).toBeGreaterThan(0);
        expect(ngram.draftedTokens).toBe(stats.draftedTokens);
        expect(ngram.acceptedTokens).toBe(stats.acceptedTokens);
      });
    }
  }

  it("auto with lookup alone emits exactly the ar tokens", async () => {
    const { e, tokens } = await run({ mode: "auto", batchSize: 2, draftTokens: 4, draft: { ngram: {} } }, PROMPTS);
    expect(e.placement.draftDevice).toBe("none");
    expect(tokens).toEqual(reference);
  });

  for (const mode of ["sd", "psd", "auto"] as const) {
    it(`${mode} with lookup and the draft model combined emits exactly the ar tokens`, async () => {
      const { tokens, stats } = await run(
        { mode, batchSize: 2, draftTokens: 4, draft: { model: draftModel, threads: 1, ngram: { maxN: 3 } } },
        PROMPTS,
      );
      expect(tokens).toEqual(reference);
      const { ngram, model } = stats.draftSources!;
      expect(ngram!.lookups).toBeGreaterThan(0);
      expect(model!.draftedTokens + ngram!.draftedTokens).toBe(stats.draftedTokens);
      if (mode !== "auto") expect(model!.draftedTokens).toBeGreaterThan(0);
    });
  }

  it("refuses psd with lookup alone: it has no draft model's work to overlap", async () => {
    await expect(createEngine({ mode: "psd", target: { model: target }, draft: { ngram: {} } })).rejects.toThrow(
      /mode "psd" overlaps a draft model's work/,
    );
  });
});

describe("sampled ngram drafts preserve the target's distribution", () => {
  // the last token occurred before: every request's first round verifies a looked-up draft
  const prompt = "the cat sat on the mat and the cat sat on the";
  const temperature = 1.5;
  let p: Float32Array;
  let toks: number[];

  beforeAll(async () => {
    toks = target.tokenize(prompt);
    p = await nextTokenDistribution(target, prompt, temperature);
  });

  it("first token ~ p", async () => {
    const N = 1200;
    const e = await createEngine({
      batchSize: 8,
      draftTokens: 3,
      contextSize: 128,
      target: { model: target, threads: 1 },
      draft: { ngram: {} },
      temperature,
    });
    let samples: number[];
    try {
      samples = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          e.generate(prompt, { maxTokens: 1, seed: 3000 + i }).then((r) => r.tokens[0]!),
        ),
      );
      expect(e.stats().draftSources!.ngram!.hits).toBe(N);
    } finally {
      await e.close();
    }
    const fit = chiSquareFit(samples, p);
    expect(fit.stat, fit.message).toBeLessThan(fit.critical);
  });

  it("native one-hot q: p(d) as the target's, and the residual never samples d", async () => {
    const ctx = await LlamaContext.create(target, { contextSize: 64, sequences: 1, threads: 1 });
    try {
      await ctx.prefill(0, 0, toks.slice(0, -1));
      const d = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]!)[0]!; // the likeliest: the residual must avoid it
      const sampling = { temperature, topK: 0, topP: 1 };
      for (let i = 0; i < 40; i++) {
        const u = (i + 0.5) / 40;
        const [v] = await ctx.verify([
          {
            seq: 0,
            pos: toks.length - 1,
            pending: toks.at(-1)!,
            draft: [d],
            sampling,
            uniforms: [u, 0.5],
            onehot: true,
          },
        ]);
        expect(v!.p[0]).toBeCloseTo(p[d]!, 5);
        expect(v!.alt[0]).not.toBe(d);
      }
      // without onehot (and no draft context) a sampled verification with drafts is refused
      expect(() =>
        ctx.verify([
          { seq: 0, pos: toks.length - 1, pending: toks.at(-1)!, draft: [d], sampling, uniforms: [0.5, 0.5] },
        ]),
      ).toThrow(/needs the draft context/);
    } finally {
      await ctx.dispose();
    }
  });
});
