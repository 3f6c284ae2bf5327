// The PSD schedule as seen in the trace: overlap, drafts before every verification, balance, tail.
import { describe, expect, it } from "vitest";
import type { GenerateResult, TraceEvent } from "../../src/engine/types.js";
import { makeEngine, runWorkload, workload } from "./helpers.js";
import type { FakeOptions } from "./fake-backend.js";

const DELAYS: FakeOptions = { draftDelayMs: 2, verifyDelayMs: 8, draftNoise: 1 };

const overlaps = (a: TraceEvent, b: TraceEvent) => Math.min(a.end, b.end) - Math.max(a.start, b.start) > 0;

/** Per request, in time order: every verification follows a draft made since its last verification. */
function verifiedWithoutDrafts(trace: readonly TraceEvent[]): number[] {
  const drafted = new Map<number, boolean>();
  const offenders: number[] = [];
  for (const e of [...trace].sort((a, b) => a.start - b.start)) {
    for (const id of e.requests) {
      if (e.kind === "draft") drafted.set(id, true);
      if (e.kind === "verify") {
        if (!drafted.get(id)) offenders.push(id);
        drafted.set(id, false);
      }
    }
  }
  return offenders;
}

/** psd steps that drafted a sub-batch more than one request larger than the other one. */
function unbalancedSteps(trace: readonly TraceEvent[]): TraceEvent[] {
  return trace.filter(
    (e) =>
      e.kind === "draft" && e.batch >= 0 && e.batchSizes && e.batchSizes[e.batch]! > e.batchSizes[1 - e.batch]! + 1,
  );
}

describe("psd schedule", () => {
  it("overlaps verification of one batch with drafting of the other, losslessly", async () => {
    const w = workload(12, 3);
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 3, draftTokens: 4 }, DELAYS);
    const results = await runWorkload(engine, w);
    results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!)));

    const trace = engine.trace();
    const verifies = trace.filter((e) => e.kind === "verify" && e.batch >= 0);
    const overlapped = verifies.filter((v) =>
      trace.some((d) => d.kind === "draft" && d.step === v.step && d.batch === 1 - v.batch && overlaps(v, d)),
    );
    expect(overlapped.length).toBeGreaterThan(20);
    const stats = engine.stats();
    expect(stats.hiddenDraftFraction).toBeGreaterThan(0.6);
    expect(stats.overlapMs).toBeLessThanOrEqual(Math.min(stats.draftMs, stats.verifyMs));
    expect(verifiedWithoutDrafts(trace)).toEqual([]);
    expect(unbalancedSteps(trace)).toEqual([]);
    // while the queue keeps capacity full, the two sub-batches are equal
    expect(
      trace.filter((e) => e.step <= 10 && e.batchSizes).every((e) => e.batchSizes![0] === 3 && e.batchSizes![1] === 3),
    ).toBe(true);
    await engine.close();
  });

  it("sd never overlaps the workers outside admission, and psd beats it", async () => {
    const w = workload(12, 3);
    const { engine: sd } = makeEngine({ mode: "sd", batchSize: 3, draftTokens: 4 }, DELAYS);
    await runWorkload(sd, w);
    const trace = sd.trace();
    const drafts = trace.filter((e) => e.kind === "draft");
    expect(trace.filter((e) => e.kind === "verify").some((v) => drafts.some((d) => overlaps(v, d)))).toBe(false);
    expect(verifiedWithoutDrafts(trace)).toEqual([]);

    const { engine: psd } = makeEngine({ mode: "psd", batchSize: 3, draftTokens: 4 }, DELAYS);
    await runWorkload(psd, w);
    // same per-step batch sizes, twice the requests in flight, drafting hidden: clearly faster
    expect(psd.stats().tokensPerSecond).toBeGreaterThan(1.25 * sd.stats().tokensPerSecond);
    await Promise.all([sd.close(), psd.close()]);
  });

  it("rebalances after finishes and late arrivals by moving requests that hold no drafts", async () => {
    // Batch 0 = ids 1, 3, 5 (3 and 5 are short), batch 1 = ids 2, 4, 6. When 3 and 5 finish, batch 1
    // outnumbers batch 0 by 3 to 1 and must give one request away once it is verified. Later, two
    // requests arrive while batch 0 holds the drafts: both join batch 1, and one has to move again.
    const w = workload(8, 9);
    w.maxTokens = [30, 30, 2, 30, 2, 30, 20, 20];
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 3, draftTokens: 2 }, { ...DELAYS, draftNoise: 3 });
    let pieces = 0;
    const late: Promise<GenerateResult>[] = [];
    const early = w.prompts.slice(0, 6).map((p, i) =>
      engine.generate(p, {
        maxTokens: w.maxTokens[i],
        onText:
          i === 1
            ? () => {
                if (++pieces === 6)
                  late.push(...[6, 7].map((j) => engine.generate(w.prompts[j]!, { maxTokens: w.maxTokens[j] })));
              }
            : undefined,
      }),
    );
    const results = await Promise.all(early);
    results.push(...(await Promise.all(late)));
    results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!)));

    const trace = engine.trace();
    expect(verifiedWithoutDrafts(trace)).toEqual([]);
    expect(unbalancedSteps(trace)).toEqual([]);
    // a moved request sits out the verification of its new batch (it holds no drafts yet)
    const withIdle = trace.filter(
      (e) => e.kind === "verify" && e.batch >= 0 && e.requests.length < e.batchSizes![e.batch]!,
    );
    expect(withIdle.length).toBeGreaterThanOrEqual(2);
    const arrival = trace.find((e) => e.requests.includes(7) && e.kind === "draft")!;
    expect(arrival.batchSizes).toEqual([3, 3]);
    await engine.close();
  });

  it("rebalances when one sub-batch drains, and falls back to sd for the last request (postVerify off)", async () => {
    // Admission alternates, so batch 0 gets the short requests and batch 1 the long ones.
    const w = workload(6, 5);
    w.maxTokens = [3, 40, 3, 30, 3, 20];
    const { engine, fake } = makeEngine(
      { mode: "psd", batchSize: 3, draftTokens: 2, postVerify: false },
      { ...DELAYS, draftNoise: 3 },
    );
    const results = await runWorkload(engine, w);
    results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!)));

    const trace = engine.trace();
    expect(verifiedWithoutDrafts(trace)).toEqual([]);
    expect(unbalancedSteps(trace)).toEqual([]);
    // the first step drafts the three short requests alone (start-up), later a long one moves over
    const batchesOf = (id: number) =>
      new Set(trace.filter((e) => e.kind === "draft" && e.batch >= 0 && e.requests.includes(id)).map((e) => e.batch));
    expect([2, 4, 6].some((id) => batchesOf(id).size === 2)).toBe(true);
    // tail: once one request remains, steps are sequential sd (draft then verify, batch -1)
    const last = trace.filter((e) => e.kind !== "prefill").slice(-4);
    expect(last.map((e) => [e.kind, e.batch, e.requests.length])).toEqual([
      ["draft", -1, 1],
      ["verify", -1, 1],
      ["draft", -1, 1],
      ["verify", -1, 1],
    ]);
    expect(last.every((e) => e.requests[0] === results[1]!.id)).toBe(true);
    await engine.close();
  });
});
