// Sequence slots: each verified batch should sit on consecutive KV sequence ids (llama.cpp runs one
// forward pass per run of consecutive ids when every sequence has its own KV stream).
import { describe, expect, it } from "vitest";
import { SlotPool } from "../../src/engine/slots.js";
import { makeEngine, runWorkload } from "./helpers.js";
import { makePrompt } from "./fake-backend.js";

/** number of runs of consecutive ids in a set of sequence ids */
const runs = (seqs: readonly number[]) => [...seqs].sort((a, b) => a - b).filter((s, i, a) => i === 0 || s !== a[i - 1]! + 1).length;

describe("SlotPool", () => {
  it("hands out the lowest free slot, or the highest from the top, and takes slots back in order", () => {
    const pool = new SlotPool(6);
    expect([pool.take(), pool.take(true), pool.take(), pool.take(true)]).toEqual([0, 5, 1, 4]);
    pool.release(0);
    pool.release(5);
    expect(pool.available).toBe(4);
    expect([pool.take(), pool.take(true)]).toEqual([0, 5]);
    expect(() => pool.release(2)).toThrow(/released twice/);
    expect([pool.take(), pool.take()]).toEqual([2, 3]);
    expect(() => pool.take()).toThrow(/no free/);
  });
});

describe("slot layout of verified batches", () => {
  // A full batch (m requests; auto's sequential steps: all 2m) is one run; at the tail, when the
  // queue is empty and requests finish one by one, holes are unavoidable. auto admits into the
  // lowest free slots while it runs sequential steps, and re-forms its sub-batches from slot order
  // when it enters the overlapped schedule, so both kinds of pass stay one run.
  it.each(["psd", "sd", "ar", "auto"] as const)("%s keeps every verification of a full batch on one run of sequence ids", async (mode) => {
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
    const lastAdmission = fake.calls.findLastIndex((c) => c.worker === "target" && c.kind === "prefill");
    const calls = fake.calls.filter((c, i) => c.worker === "target" && c.kind === "verify" && (mode !== "auto" || i < lastAdmission));
    // the trace says which passes verified a sub-batch (batch >= 0) and which every running request
    const events = engine.trace().filter((e) => e.worker === "target" && e.kind === "verify");
    expect(events.length).toBeGreaterThanOrEqual(calls.length);
    const full = (n: number, batch: number) => (mode === "auto" ? n === (batch >= 0 ? m : capacity) : n === m || n === capacity);
    const verifies = calls.filter((c, i) => full(c.seqs.length, events[i]!.batch));
    expect(verifies.length).toBeGreaterThan(4);
    const split = verifies.filter((c) => runs(c.seqs) > 1);
    expect(split.map((c) => c.seqs)).toEqual([]);
    await engine.close();
  });
});
