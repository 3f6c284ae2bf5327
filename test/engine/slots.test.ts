// Sequence slots: each verified batch should sit on consecutive KV sequence ids (llama.cpp runs one
// forward pass per run of consecutive ids when every sequence has its own KV stream).
import { describe, expect, it } from "vitest";
import { compactionMoves, SlotPool, slotRuns } from "../../src/engine/slots.js";
import { makeEngine, runWorkload } from "./helpers.js";
import { makePrompt, type FakeOptions } from "./fake-backend.js";

const runs = slotRuns;

describe("SlotPool", () => {
  it("hands out the lowest free slot, or the highest from the top, and takes slots back in order", () => {
    const pool = new SlotPool(6);
    expect([pool.take(), pool.take(true), pool.take(), pool.take(true)]).toEqual([0, 5, 1, 4]);
    pool.release(0);
    pool.release(5);
    expect([pool.take(), pool.take(true)]).toEqual([0, 5]);
    expect(() => pool.release(2)).toThrow(/released twice/);
    expect([pool.take(), pool.take()]).toEqual([2, 3]);
    expect(() => pool.take()).toThrow(/no free/);
    pool.release(4);
    pool.release(1);
    pool.claim(4);
    expect(() => pool.claim(4)).toThrow(/not free/);
    expect(pool.take()).toBe(1);
  });

  it("plans the fewest moves that make a set of slots one run", () => {
    expect(slotRuns([3, 1, 2])).toBe(1);
    expect(slotRuns([0, 2, 3, 7])).toBe(3);
    expect(compactionMoves([0, 1, 2], 8)).toEqual([]);
    expect(compactionMoves([], 8)).toEqual([]);
    // the window 0..3 already holds 0, 2 and 3: only 7 moves, into the hole at 1
    expect(compactionMoves([7, 0, 2, 3], 8)).toEqual([{ from: 7, to: 1 }]);
    // the best window need not start at 0 (ties: the lowest)
    expect(compactionMoves([4, 5, 7], 8)).toEqual([{ from: 7, to: 3 }]);
    expect(compactionMoves([3, 5, 6, 7], 8)).toEqual([{ from: 7, to: 4 }]);
    expect(compactionMoves([0, 7], 8)).toEqual([{ from: 7, to: 1 }]);
    for (let trial = 0; trial < 200; trial++) {
      const slots = [...new Set(Array.from({ length: 1 + (trial % 7) }, (_, i) => (trial * 7 + i * 13) % 16))];
      const moves = compactionMoves(slots, 16);
      const after = slots.map((s) => moves.find((m) => m.from === s)?.to ?? s);
      expect(new Set(after).size).toBe(slots.length);
      expect(slotRuns(after)).toBe(1);
      for (const m of moves) expect(slots).not.toContain(m.to);
    }
  });
});

describe("slot layout of verified batches", () => {
  // A full batch (m requests; auto's sequential steps: all 2m) is one run; at the tail, when the
  // queue is empty and requests finish one by one, holes are unavoidable. auto admits into the
  // lowest free slots while it runs sequential steps, and re-forms its sub-batches from slot order
  // when it enters the overlapped schedule, so both kinds of pass stay one run.
  it.each(["psd", "sd", "ar", "auto"] as const)(
    "%s keeps every verification of a full batch on one run of sequence ids",
    async (mode) => {
      const m = 4;
      const capacity = mode === "psd" || mode === "auto" ? 2 * m : m;
      // two waves of equal-length requests: the second reuses the first wave's slots
      const prompts = Array.from({ length: 2 * capacity }, (_, i) => makePrompt(500 + i, 3 + (i % 4)));
      // auto probes every other step with no budget limit, so it switches schedules as often as it can
      const auto = mode === "auto" ? { auto: { probeEvery: 2, probeBudget: 1 } } : {};
      const { engine, fake } = makeEngine({ mode, batchSize: m, draftTokens: 3, ...auto }, { draftNoise: 1 });
      await runWorkload(engine, { prompts, maxTokens: prompts.map(() => 12) });
      // auto: passes up to the last admission (after it, rebalancing the tail between its
      // sub-batches leaves holes, as requests finish at different times with its changing k)
      const lastAdmission = fake.calls.findLastIndex(
        (c: { worker: string; kind: string }) => c.worker === "target" && c.kind === "prefill",
      );
      const calls = fake.calls.filter(
        (c, i) => c.worker === "target" && c.kind === "verify" && (mode !== "auto" || i < lastAdmission),
      );
      // the trace says which passes verified a sub-batch (batch >= 0) and which every running request
      const events = engine.trace().filter((e) => e.worker === "target" && e.kind === "verify");
      expect(events.length).toBeGreaterThanOrEqual(calls.length);
      const full = (n: number, batch: number) =>
        mode === "auto" ? n === (batch >= 0 ? m : capacity) : n === m || n === capacity;
      const verifies = calls.filter((c, i) => full(c.seqs.length, events[i]!.batch));
      expect(verifies.length).toBeGreaterThan(4);
      const split = verifies.filter((c) => runs(c.seqs) > 1);
      expect(split.map((c) => c.seqs)).toEqual([]);
      await engine.close();
    },
  );
});

describe("slot compaction", () => {
  // Requests of different lengths finish at different steps and leave holes (at the tail no
  // admission refills them). Before a pass over every running request (ar, sd, auto's sequential
  // steps) the engine moves requests into those holes, so every such pass is one run of ids.
  it.each(["ar", "sd", "auto"] as const)(
    "%s: every pass over all running requests is one run, tail included",
    async (mode) => {
      const m = 4;
      const capacity = mode === "auto" ? 2 * m : m;
      const prompts = Array.from({ length: 3 * capacity }, (_, i) => makePrompt(700 + i, 3 + (i % 5)));
      const maxTokens = prompts.map((_, i) => 5 + ((i * 7) % 13));
      const { engine: ar } = makeEngine({ mode: "ar", batchSize: m }, { seqIdsSplitPasses: false });
      const reference = await runWorkload(ar, { prompts, maxTokens });
      // auto compacts before its sequential steps: a fake 2-core machine where plain passes over all
      // requests win, so it runs them after its calibration
      const timed: FakeOptions = {
        threadPlans: { sequential: { target: 2, draft: 2 }, overlapped: { target: 1, draft: 1 } },
        verifyMs: (tokens, threads) => ((0.5 + 0.4 * tokens) * 2) / threads,
        draftStepMs: (requests, threads) => ((0.3 + 0.1 * requests) * 2) / threads,
      };
      const { engine, fake } = makeEngine(
        { mode, batchSize: m, draftTokens: 3 },
        { draftNoise: mode === "auto" ? 6 : 1, ...(mode === "auto" ? timed : {}) },
      );
      const results = await runWorkload(engine, { prompts, maxTokens });
      // moving KV between slots changes no output
      results.forEach((r, i) => expect(r.tokens).toEqual(reference[i]!.tokens));
      const calls = fake.calls.filter((c) => c.worker === "target" && c.kind === "verify");
      const events = engine.trace().filter((e) => e.worker === "target" && e.kind === "verify");
      expect(events.length).toBe(calls.length);
      const overAll = calls.filter((_, i) => events[i]!.batch === -1 && events[i]!.decision?.schedule !== "overlapped");
      expect(overAll.length).toBeGreaterThan(10);
      expect(overAll.filter((c) => runs(c.seqs) > 1).map((c) => c.seqs)).toEqual([]);
      // holes were there to close, on both workers alike
      const moves = fake.calls.filter((c) => c.kind === "moveSeq");
      expect(moves.filter((c) => c.worker === "target").length).toBeGreaterThan(0);
      if (mode !== "ar")
        expect(moves.filter((c) => c.worker === "draft").map((c) => c.seqs)).toEqual(
          moves.filter((c) => c.worker === "target").map((c) => c.seqs),
        );
      await engine.close();
      expect(fake.liveSeqs("target")).toEqual([]);
      expect(fake.liveSeqs("draft")).toEqual([]);
    },
  );

  it("leaves slots alone where any ids make one pass (unified KV)", async () => {
    const prompts = Array.from({ length: 12 }, (_, i) => makePrompt(700 + i, 3 + (i % 5)));
    const { engine, fake } = makeEngine({ mode: "sd", batchSize: 4, draftTokens: 3 }, { seqIdsSplitPasses: false });
    await runWorkload(engine, { prompts, maxTokens: prompts.map((_, i) => 5 + ((i * 7) % 13)) });
    expect(fake.calls.filter((c) => c.kind === "moveSeq")).toEqual([]);
    await engine.close();
  });
});
