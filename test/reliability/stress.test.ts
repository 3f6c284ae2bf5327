import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/create-engine.js";
import { LlamaModel } from "../../src/native/model.js";
import type { GenerateResult } from "../../src/engine/types.js";
import { tinyPair } from "../helpers/models.js";
import { firstDifference, loadMicroPairForFile, rng } from "./helpers.js";

const models = loadMicroPairForFile("stress");

const WORDS = [
  "once",
  "upon",
  "a",
  "time",
  "the",
  "cat",
  "sat",
  "on",
  "mat",
  "and",
  "it",
  "was",
  "there",
  "he",
  "she",
  "they",
  "1,",
  "2,",
  "3.",
  "Zebra",
  "Quick!",
  "caf\u00e9",
];
type Abort =
  | { kind: "none" }
  | { kind: "before" }
  | { kind: "afterPieces"; n: number }
  | { kind: "afterMs"; ms: number };

function workload(seed: number, n: number) {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const prompt = Array.from({ length: 1 + r.int(20) }, () => r.pick(WORDS)).join(" ");
    const maxTokens = 1 + r.int(48);
    const x = r.next();
    const abort: Abort =
      x < 0.6
        ? { kind: "none" }
        : x < 0.68
          ? { kind: "before" }
          : x < 0.84
            ? { kind: "afterPieces", n: 1 + r.int(12) }
            : { kind: "afterMs", ms: r.int(300) };
    return { prompt, maxTokens, abort };
  });
}

describe("64 concurrent psd requests with random aborts and lengths", () => {
  for (const [seed, pairName] of [
    [7, "micro"],
    [8, "micro"],
    [9, "tiny (32k vocab, 4 x 256)"],
  ] as const) {
    it(`seed ${seed}, ${pairName} pair: every request not aborted equals the ar greedy tokens`, {
      timeout: 300_000,
    }, async () => {
      const work = workload(seed, 64);
      // models of its own: disposing them at the end proves the engines freed their contexts
      const paths =
        pairName === "micro" ? { target: models.target.info.path, draft: models.draft.info.path } : await tinyPair();
      const own = { target: await LlamaModel.load(paths.target), draft: await LlamaModel.load(paths.draft) };
      const opts = {
        contextSize: 256,
        target: { model: own.target, threads: 1 },
        draft: { model: own.draft, threads: 1 },
      };
      const ar = await createEngine({ ...opts, mode: "ar", batchSize: 8 });
      const reference = await Promise.all(work.map((w) => ar.generate(w.prompt, { maxTokens: w.maxTokens })));
      await ar.close();

      const e = await createEngine({ ...opts, mode: "psd", batchSize: 8, draftTokens: 4 });
      const timers: NodeJS.Timeout[] = [];
      const settled = await Promise.allSettled(
        work.map((w) => {
          const ctrl = new AbortController();
          let pieces = 0;
          const a = w.abort;
          if (a.kind === "before") ctrl.abort();
          if (a.kind === "afterMs") timers.push(setTimeout(() => ctrl.abort(), a.ms));
          return e.generate(w.prompt, {
            maxTokens: w.maxTokens,
            signal: ctrl.signal,
            onText: a.kind === "afterPieces" ? () => ++pieces === a.n && ctrl.abort() : undefined,
          });
        }),
      );
      timers.forEach(clearTimeout);
      let aborted = 0;
      let exact = 0;
      settled.forEach((s, i) => {
        const w = work[i]!;
        const want = reference[i]!.tokens;
        if (s.status === "fulfilled") {
          const got = (s.value as GenerateResult).tokens;
          expect(got, `request ${i} (${w.abort.kind}) differs at ${firstDifference(got, want)}`).toEqual(want);
          exact++;
        } else {
          expect(w.abort.kind, `request ${i} failed: ${String(s.reason)}`).not.toBe("none");
          expect((s.reason as Error).name, String(s.reason)).toBe("AbortError");
          aborted++;
        }
      });
      expect(settled.filter((s, i) => work[i]!.abort.kind === "none" && s.status === "fulfilled")).toHaveLength(
        work.filter((w) => w.abort.kind === "none").length,
      );
      expect(aborted).toBeGreaterThan(5); // the workload really aborted requests mid-flight
      expect(exact).toBeGreaterThan(30);
      const stats = e.stats();
      expect(stats.draftedTokens).toBeGreaterThan(0);
      // still serving, exactly
      const again = await e.generate(work[0]!.prompt, { maxTokens: work[0]!.maxTokens });
      expect(again.tokens).toEqual(reference[0]!.tokens);
      await e.close();
      // close freed both contexts: nothing uses the models any more
      expect(() => own.draft.dispose()).not.toThrow();
      expect(() => own.target.dispose()).not.toThrow();
    });
  }

  it("abort everything mid-flight, then the same engine serves a new batch exactly", async () => {
    const work = workload(99, 32);
    const opts = {
      contextSize: 256,
      target: { model: models.target, threads: 1 },
      draft: { model: models.draft, threads: 1 },
    };
    const ar = await createEngine({ ...opts, mode: "ar", batchSize: 8 });
    const reference = await Promise.all(work.map((w) => ar.generate(w.prompt, { maxTokens: 40 })));
    await ar.close();
    const e = await createEngine({ ...opts, mode: "psd", batchSize: 4, draftTokens: 3 });
    const ctrl = new AbortController();
    let pieces = 0;
    const first = Promise.allSettled(
      work.map((w) =>
        e.generate(w.prompt, { maxTokens: 40, signal: ctrl.signal, onText: () => ++pieces === 20 && ctrl.abort() }),
      ),
    );
    const results = await first;
    results.forEach((s, i) => {
      // a request that finished (end of text) before the abort keeps its exact result
      if (s.status === "fulfilled")
        expect(s.value.tokens).toEqual(reference[i]!.tokens.slice(0, s.value.tokens.length));
      else expect((s.reason as Error).name).toBe("AbortError");
    });
    expect(results.filter((s) => s.status === "rejected").length).toBeGreaterThan(24);
    const again = await Promise.all(work.map((w) => e.generate(w.prompt, { maxTokens: 40 })));
    expect(again.map((r) => r.tokens)).toEqual(reference.map((r) => r.tokens));
    await e.close();
  });
});
