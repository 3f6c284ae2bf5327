import { describe, expect, it } from "vitest";
import { createEngine, defaultMode, type CreateEngineOptions, type MinedraftEngine } from "../../src/create-engine.js";
import { LlamaModel } from "../../src/native/model.js";
import { loadMicroPairForFile } from "./helpers.js";

const models = loadMicroPairForFile("requests");

const engine = (over: Partial<CreateEngineOptions> = {}) =>
  createEngine({
    mode: "psd",
    batchSize: 2,
    draftTokens: 3,
    contextSize: 64,
    target: { model: models.target, threads: 1 },
    draft: { model: models.draft, threads: 1 },
    ...over,
  });

async function withEngine<T>(over: Partial<CreateEngineOptions>, f: (e: MinedraftEngine) => Promise<T>): Promise<T> {
  const e = await engine(over);
  try {
    return await f(e);
  } finally {
    await e.close();
  }
}

/** The engine's context budget per sequence (llama.cpp may round the requested size). */
const nCtxOf = (e: MinedraftEngine) => (e as unknown as { backend: { info: { nCtx: number } } }).backend.info.nCtx;

const error = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );

describe("prompts", () => {
  it('empty prompts are refused (a text prompt of "" is BOS alone: a valid one-token prompt)', async () => {
    await withEngine({}, async (e) => {
      const bosOnly = await e.generate("", { maxTokens: 2 });
      expect(bosOnly.stats.promptTokens).toBe(1);
      await expect(e.generate("", { rawPrompt: true })).rejects.toThrow(/prompt is empty/);
      await expect(e.generate([])).rejects.toThrow(/prompt is empty/);
    });
  });

  it("prompts with token ids outside the vocabulary, or not a string / array, are refused", async () => {
    await withEngine({}, async (e) => {
      await expect(e.generate([1, 414])).rejects.toThrow(/prompt token 414 is not in the vocabulary \(0\.\.413\)/);
      await expect(e.generate([1, -1])).rejects.toThrow(RangeError);
      await expect(e.generate([1, 2.5])).rejects.toThrow(RangeError);
      await expect(e.generate([1, NaN])).rejects.toThrow(RangeError);
      await expect(e.generate(null as unknown as string)).rejects.toThrow(TypeError);
      await expect(e.generate({ length: 3 } as unknown as string)).rejects.toThrow(TypeError);
    });
  });

  it(
    "a prompt longer than the context is refused with both sizes; " + "one exactly as long finishes with contextFull",
    async () => {
      await withEngine({}, async (e) => {
        const n = nCtxOf(e);
        const long = Array.from({ length: n + 1 }, (_, i) => 3 + (i % 400));
        const err = await error(e.generate(long, { maxTokens: 4 }));
        expect(err.message).toMatch(new RegExp(`prompt has ${n + 1} tokens, longer than the context of ${n} tokens`));
        // at the edge: n tokens fit, the one generated token fills the context
        const edge = await e.generate(long.slice(0, n), { maxTokens: 50 });
        expect(edge.stats.finishReason).toBe("contextFull");
        expect(edge.tokens).toHaveLength(1);
        const nearEdge = await e.generate(long.slice(0, n - 2), { maxTokens: 50 });
        expect(nearEdge.stats.finishReason).toBe("contextFull");
        expect(nearEdge.tokens).toHaveLength(3);
      });
    },
  );
});

describe("running out of context", () => {
  it(
    "maxTokens beyond the context: that request ends with contextFull, " + "the others continue with the ar tokens",
    async () => {
      const prompts = ["Once upon a time", "the cat sat", "1, 2, 3,", "hello", "A B C D", "zebra"];
      const maxTokens = [1000, 12, 20, 1000, 7, 30];
      const run = (mode: "ar" | "psd") =>
        withEngine({ mode, batchSize: 3 }, async (e) => {
          const n = nCtxOf(e);
          const results = await Promise.all(prompts.map((p, i) => e.generate(p, { maxTokens: maxTokens[i] })));
          return { n, results };
        });
      const ar = await run("ar");
      const psd = await run("psd");
      expect(psd.n).toBe(ar.n);
      psd.results.forEach((r, i) => {
        expect(r.tokens, `request ${i}`).toEqual(ar.results[i]!.tokens);
        expect(r.stats.finishReason).toBe(ar.results[i]!.stats.finishReason);
        if (maxTokens[i] === 1000) {
          expect(r.stats.finishReason).toBe("contextFull");
          expect(r.stats.promptTokens + r.stats.generatedTokens).toBe(psd.n + 1); // the last token is never decoded
        } else expect(r.stats.finishReason === "maxTokens" || r.stats.finishReason === "eog").toBe(true);
      });
    },
  );
});

describe("invalid options", () => {
  it("engine options: precise errors, and no context left behind (the models stay free to dispose)", async () => {
    const bad: [Partial<CreateEngineOptions>, RegExp][] = [
      [{ mode: "fast" as never }, /mode.*"fast"/],
      [{ batchSize: 0 }, /batchSize must be an integer in 1\.\.256, got 0/],
      [{ batchSize: 1.5 }, /batchSize/],
      [{ draftTokens: -1 }, /draftTokens must be an integer in 1\.\.\d+, got -1/],
      [{ draftTokens: 0 }, /draftTokens/],
      [{ temperature: NaN }, /temperature must be a finite number in 0\.\.1000000, got NaN/],
      [{ temperature: -0.5 }, /temperature/],
      [{ topP: 0 }, /topP must be a finite number in 1e-9\.\.1, got 0/],
      [{ topK: -1 }, /topK must be an integer in 0\.\.2147483647, got -1/],
      [{ contextSize: 8 }, /contextSize must be an integer in 16\.\.4194304, got 8/],
      [{ spinMicros: -5 }, /spinMicros must be an integer in 0\.\.100000, got -5/],
      [{ spinMicros: 0.5 }, /spinMicros/],
      [{ target: { model: models.target, threads: 0 } }, /target\.threads must be an integer in 1\.\.512, got 0/],
      [
        { target: { model: models.target, threads: 100000 } },
        /target\.threads must be an integer in 1\.\.512, got 100000/,
      ],
      [{ target: { model: "" } }, /target\.model must be a GGUF path/],
      [{ draft: undefined }, /needs a draft model/],
    ];
    for (const [over, why] of bad) {
      await expect(
        engine(over),
        JSON.stringify(over, (_, v) => (v instanceof LlamaModel ? "<model>" : Number.isNaN(v) ? "NaN" : v)),
      ).rejects.toThrow(why);
    }
    // every failed creation freed its contexts: a fresh model handle disposes, and ours still make an engine
    const probe = await LlamaModel.load(models.target.info.path);
    await expect(
      createEngine({
        mode: "ar",
        target: { model: probe, threads: 1 },
        contextSize: 64,
        draftTokens: -1,
        batchSize: 0,
      }),
    ).rejects.toThrow(/draftTokens must be an integer in 1..32, got -1/);
    await expect(
      createEngine({ mode: "ar", target: { model: probe, threads: 1 }, contextSize: 64, temperature: NaN }),
    ).rejects.toThrow(/temperature/);
    expect(() => probe.dispose()).not.toThrow();
    await withEngine({}, async (e) => expect((await e.generate("ok", { maxTokens: 3 })).tokens).toHaveLength(3));
  });

  it("request options: precise errors, and the engine keeps serving exactly", async () => {
    await withEngine({}, async (e) => {
      const before = await e.generate("Once upon a time", { maxTokens: 10 });
      const bad: [object, RegExp][] = [
        [{ maxTokens: 0 }, /maxTokens must be an integer >= 1, got 0/],
        [{ maxTokens: -5 }, /maxTokens/],
        [{ maxTokens: 2.5 }, /maxTokens/],
        [{ maxTokens: NaN }, /maxTokens/],
        [{ maxTokens: "10" }, /maxTokens must be an integer >= 1, got "10"/],
        [{ temperature: NaN }, /temperature must be a finite number in 0\.\.1000000, got NaN/],
        [{ temperature: Infinity }, /temperature/],
        [{ topP: NaN }, /topP must be a finite number in 1e-9\.\.1, got NaN/],
        [{ topP: 1.01 }, /topP/],
        [{ topK: -1 }, /topK/],
        [{ draftTemperature: -1 }, /draftTemperature/],
        [{ seed: NaN }, /seed must be an integer >= 0, got NaN/],
        [{ seed: "x" }, /seed must be an integer >= 0, got "x"/],
        [{ stop: [""] }, /stop must be an array of non-empty strings/],
        [{ stop: "x" }, /stop must be an array of non-empty strings, got "x"/],
        [{ stop: [1] }, /stop must be an array of non-empty strings/],
        [{ onText: 5 }, /onText must be a function/],
      ];
      for (const [opts, why] of bad)
        await expect(e.generate("Once upon a time", opts as never), JSON.stringify(opts)).rejects.toThrow(why);
      await expect(e.generate("x", null as never)).rejects.toThrow(/generate options must be an object/);
      const after = await e.generate("Once upon a time", { maxTokens: 10 });
      expect(after.tokens).toEqual(before.tokens);
    });
  });

  it("a throwing onText fails only its own request", async () => {
    await withEngine({}, async (e) => {
      const boom = new Error("listener exploded");
      const [bad, good] = await Promise.allSettled([
        e.generate("Once upon a time", {
          maxTokens: 10,
          onText: () => {
            throw boom;
          },
        }),
        e.generate("Once upon a time", { maxTokens: 10 }),
      ]);
      expect(bad.status).toBe("rejected");
      expect((bad as PromiseRejectedResult).reason).toBe(boom);
      expect(good.status).toBe("fulfilled");
    });
  });
});

describe("default mode", () => {
  it("no mode: ar without a draft; with a draft, auto where the models share the CPU cores", async () => {
    const plain = await createEngine({ target: { model: models.target, threads: 1 }, contextSize: 64 });
    expect(plain.placement.mode).toBe("ar");
    await plain.close();
    const paired = await createEngine({
      target: { model: models.target, device: "cpu", threads: 1 },
      draft: { model: models.draft, device: "cpu", threads: 1 },
      contextSize: 64,
    });
    try {
      expect(paired.placement.mode).toBe("auto");
      expect(paired.placement.sequences).toBe(8); // two sub-batches of the default 4
      expect((await paired.generate("Once upon a time", { maxTokens: 6 })).tokens).toHaveLength(6);
      expect(paired.stats().mode).toBe("auto");
    } finally {
      await paired.close();
    }
    expect(defaultMode(true, true)).toBe("psd");
    expect(defaultMode(false, true)).toBe("ar");
  });
});
