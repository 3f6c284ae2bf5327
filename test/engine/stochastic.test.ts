// Stochastic decoding through the engine: psd samples from the target's distribution, and a
// request's output is a function of its seed alone.
import { describe, expect, it } from "vitest";
import type { SamplingParams } from "../../src/engine/backend.js";
import { Engine } from "../../src/engine/engine.js";
import type { EngineOptions, Mode } from "../../src/engine/types.js";
import { FakeBackend, VOCAB, makePrompt } from "./fake-backend.js";
import { chiSquareTest, histogram } from "./reference-math.js";

const PROMPT = makePrompt(99, 6);
const RUNS = 3000;

/** Marginal of the second generated token: sum over t of p(t) * p(. | t). */
function secondTokenMarginal(fake: FakeBackend, sampling: SamplingParams): Float64Array {
  const first = fake.targetDistribution(PROMPT, sampling);
  const out = new Float64Array(VOCAB);
  first.forEach((pt, t) => {
    if (pt === 0) return;
    fake.targetDistribution([...PROMPT, t], sampling).forEach((p2, t2) => (out[t2]! += pt * p2));
  });
  return out;
}

const SETTINGS: {
  name: string;
  mode: Mode;
  sampling: SamplingParams;
  draftTemperature?: number;
  k: number;
  extra?: Partial<EngineOptions>;
}[] = [
  { name: "psd, T=1, k=4", mode: "psd", sampling: { temperature: 1, topK: 0, topP: 1 }, k: 4 },
  {
    name: "psd, T=0.8 top-k 6 top-p 0.9, draft T=0.5, k=3",
    mode: "psd",
    sampling: { temperature: 0.8, topK: 6, topP: 0.9 },
    draftTemperature: 0.5,
    k: 3,
  },
  {
    name: "psd, T=1, greedy draft, k=2",
    mode: "psd",
    sampling: { temperature: 1, topK: 0, topP: 1 },
    draftTemperature: 0,
    k: 2,
  },
  {
    name: "psd + TETRIS e=2, T=1, k=3",
    mode: "psd",
    sampling: { temperature: 1, topK: 0, topP: 1 },
    k: 3,
    extra: { tetris: { extra: 2 } },
  },
  {
    name: "psd + TETRIS e=3, T=1, greedy draft, k=2",
    mode: "psd",
    sampling: { temperature: 1, topK: 0, topP: 1 },
    draftTemperature: 0,
    k: 2,
    extra: { tetris: { extra: 3 } },
  },
  // probing every 2 steps: k and the schedule change all the time
  {
    name: "auto, T=1, k_max=4",
    mode: "auto",
    sampling: { temperature: 1, topK: 0, topP: 1 },
    k: 4,
    extra: { auto: { probeEvery: 2, probeBudget: 1 } },
  },
];

describe("stochastic decoding matches the target distribution", () => {
  for (const setting of SETTINGS) {
    it(setting.name, async () => {
      const fake = new FakeBackend({ draftNoise: 2, logitScale: 2 });
      const engine = new Engine(fake, {
        mode: setting.mode,
        batchSize: 8,
        draftTokens: setting.k,
        ...setting.sampling,
        ...setting.extra,
      });
      const results = await Promise.all(
        Array.from({ length: RUNS }, (_, i) =>
          engine.generate(PROMPT, { maxTokens: 2, seed: 1000 + i, draftTemperature: setting.draftTemperature }),
        ),
      );
      const stats = engine.stats();
      expect(stats.acceptanceRate).toBeGreaterThan(0.1);
      expect(stats.acceptanceRate).toBeLessThan(0.9);

      const first = chiSquareTest(
        histogram(
          results.map((r) => r.tokens[0]!),
          VOCAB,
        ),
        fake.targetDistribution(PROMPT, setting.sampling),
      );
      expect(first.statistic).toBeLessThan(first.critical);
      const second = chiSquareTest(
        histogram(
          results.map((r) => r.tokens[1]!),
          VOCAB,
        ),
        secondTokenMarginal(fake, setting.sampling),
      );
      expect(second.statistic).toBeLessThan(second.critical);
      await engine.close();
    });
  }

  it("has the power to tell the draft's distribution from the target's", async () => {
    // An engine that accepted every draft would emit q instead of p: the same test must reject q.
    const fake = new FakeBackend({ draftNoise: 2, logitScale: 2 });
    const sampling = { temperature: 1, topK: 0, topP: 1 };
    const engine = new Engine(fake, { mode: "psd", batchSize: 8, draftTokens: 1, ...sampling });
    const results = await Promise.all(
      Array.from({ length: RUNS }, (_, i) => engine.generate(PROMPT, { maxTokens: 1, seed: 5000 + i })),
    );
    const counts = histogram(
      results.map((r) => r.tokens[0]!),
      VOCAB,
    );
    expect(chiSquareTest(counts, fake.targetDistribution(PROMPT, sampling)).pass).toBe(true);
    expect(chiSquareTest(counts, fake.draftDistribution(PROMPT, sampling)).pass).toBe(false);
    await engine.close();
  });
});

describe("seeds", () => {
  const sampling = { temperature: 1, topK: 0, topP: 1 };
  async function run(mode: Mode, seeds: number[]): Promise<number[][]> {
    const engine = new Engine(new FakeBackend({ draftNoise: 2, logitScale: 2 }), {
      mode,
      batchSize: 2,
      draftTokens: 3,
      ...sampling,
    });
    const results = await Promise.all(seeds.map((seed) => engine.generate(PROMPT, { maxTokens: 30, seed })));
    await engine.close();
    return results.map((r) => r.tokens);
  }

  it("same seed, same output, whatever else runs in the batch", async () => {
    const alone = await run("psd", [42]);
    const batched = await run("psd", [7, 42, 9, 42, 13]);
    expect(batched[1]).toEqual(alone[0]);
    expect(batched[3]).toEqual(alone[0]);
  });

  it("different seeds, different outputs", async () => {
    const outputs = await run("psd", [1, 2, 3, 4]);
    expect(new Set(outputs.map((t) => t.join(","))).size).toBe(4);
  });

  it("sd and psd draw the same per-request randomness", async () => {
    expect(await run("psd", [5, 6, 7])).toEqual(await run("sd", [5, 6, 7]));
  });
});
