// Greedy speculative decoding is lossless: sd and psd emit exactly the tokens of ar.
import { describe, expect, it } from "vitest";
import { makeEngine, runWorkload, workload } from "./helpers.js";
import type { FakeOptions } from "./fake-backend.js";

const FAKE: FakeOptions = { eogToken: 0, eogBias: -1, draftNoise: 1.5 };
const WORK = workload(20);

describe("lossless greedy decoding", async () => {
  const { engine: ar, fake } = makeEngine({ mode: "ar", batchSize: 4 }, FAKE);
  const reference = await runWorkload(ar, WORK);

  it("ar matches the target's own greedy continuation", () => {
    WORK.prompts.forEach((prompt, i) => {
      expect(reference[i]!.tokens).toEqual(fake.greedyContinuation(prompt, WORK.maxTokens[i]!));
    });
    expect(new Set(reference.map((r) => r.stats.finishReason))).toEqual(new Set(["maxTokens", "eog"]));
  });

  for (const mode of ["sd", "psd"] as const) {
    for (const batchSize of [1, 3, 8]) {
      for (const k of [1, 4]) {
        it(`${mode} m=${batchSize} k=${k} emits ar's tokens`, async () => {
          const { engine, fake } = makeEngine({ mode, batchSize, draftTokens: k }, FAKE);
          const results = await runWorkload(engine, WORK);
          results.forEach((r, i) => {
            expect(r.tokens, `request ${i}`).toEqual(reference[i]!.tokens);
            expect(r.text).toBe(reference[i]!.text);
            expect(r.stats.finishReason).toBe(reference[i]!.stats.finishReason);
          });
          const stats = engine.stats();
          expect(stats.requests).toBe(WORK.prompts.length);
          // the draft disagrees often enough that rejections, corrections and bonus tokens all occur
          expect(stats.acceptanceRate).toBeGreaterThan(0.2);
          expect(stats.acceptanceRate).toBeLessThan(0.95);
          expect(stats.perPositionAcceptance).toHaveLength(k);
          // every slot was released on both workers (close waits for the loop's last release)
          await engine.close();
          expect(fake.liveSeqs("target")).toEqual([]);
          expect(fake.liveSeqs("draft")).toEqual([]);
        });
      }
    }
  }
});
