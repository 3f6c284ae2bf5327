// The two-sub-batch pipeline (src/engine/pipeline.ts) on its own: how planStep forms and swaps the
// sub-batches, and what runStep asks of the workers (the fake backend), step by step, to the end
// of a workload in both fill modes, losslessly.
import { describe, expect, it } from "vitest";
import { BatchExecutor } from "../../src/engine/executor.js";
import {
  admitToDraftBatch,
  planStep,
  runStep,
  type Batch,
  type FillMode,
  type PipelineCalls,
  type PipelineStep,
} from "../../src/engine/pipeline.js";
import { Request } from "../../src/engine/request.js";
import { SlotPool } from "../../src/engine/slots.js";
import { StatsCollector } from "../../src/engine/stats.js";
import { FakeBackend } from "./fake-backend.js";
import { workload } from "./helpers.js";

interface Member {
  id: number;
  batch: Batch;
  drafts: number | null;
  slot: number;
}

const member = (id: number, batch: Batch, drafted = false, slot = id): Member => ({
  id,
  batch,
  drafts: drafted ? 3 : null,
  slot,
});
const ids = (ms: readonly Member[]) => ms.map((m) => m.id);

describe("planStep", () => {
  it("draft-alone fill: balances by moving the latest admitted, then drafts sub-batch 0 alone", () => {
    const running = [0, 1, 2, 3, 4].map((i) => member(i, 0));
    const plan = planStep(running, "draft-alone");
    expect(plan.kind).toBe("fill");
    expect(ids((plan as Extract<PipelineStep<Member>, { kind: "fill" }>).draft)).toEqual([0, 1, 2]);
    expect(running.map((m) => m.batch)).toEqual([0, 0, 0, 1, 1]);
    expect(plan.sizes).toEqual([3, 2]);
  });

  it("verify-plain fill: re-splits by slot, verifies sub-batch 1 plainly while drafting sub-batch 0", () => {
    // batches left over from earlier steps, and slots out of admission order
    const running = [
      member(0, 1, false, 5),
      member(1, 1, false, 0),
      member(2, 0, false, 3),
      member(3, 0, false, 1),
      member(4, 1, false, 4),
    ];
    const plan = planStep(running, "verify-plain");
    expect(plan).toMatchObject({ kind: "overlap", verifyBatch: 1, draftBatch: 0, fill: true, sizes: [3, 2] });
    const o = plan as Extract<PipelineStep<Member>, { kind: "overlap" }>;
    expect(ids(o.draft).sort()).toEqual([1, 2, 3]); // slots 0, 1, 3
    expect(ids(o.verify).sort()).toEqual([0, 4]); // slots 4, 5
  });

  it("swaps: verifies the sub-batch holding drafts, drafts the other, after rebalancing it", () => {
    // sub-batch 1 holds drafts (2 requests); sub-batch 0 grew to 5 by admissions
    const running = [
      member(0, 1, true),
      member(1, 0),
      member(2, 1, true),
      member(3, 0),
      member(4, 0),
      member(5, 0),
      member(6, 0),
    ];
    const plan = planStep(running, "draft-alone") as Extract<PipelineStep<Member>, { kind: "overlap" }>;
    expect(plan).toMatchObject({ kind: "overlap", verifyBatch: 1, draftBatch: 0, fill: false, sizes: [4, 3] });
    expect(ids(plan.verify)).toEqual([0, 2]); // only the drafted: the moved request waits a step
    expect(ids(plan.draft)).toEqual([1, 3, 4, 5]);
    expect(running[6]!.batch).toBe(1); // the latest admitted moved
    // the next step verifies what was drafted, and drafts the rest
    for (const m of plan.verify) m.drafts = null;
    for (const m of plan.draft) m.drafts = 3;
    const next = planStep(running, "verify-plain") as Extract<PipelineStep<Member>, { kind: "overlap" }>;
    expect(next).toMatchObject({ kind: "overlap", verifyBatch: 0, draftBatch: 1 });
    expect(ids(next.draft)).toEqual([0, 2, 6]);
  });

  it("drains when the other sub-batch emptied, and runs one request alone", () => {
    expect(planStep([member(0, 1, true), member(1, 1, true)], "draft-alone")).toMatchObject({
      kind: "drain",
      sizes: [0, 2],
    });
    expect(planStep([member(0, 0, true)], "verify-plain")).toMatchObject({ kind: "drain" });
    expect(planStep([member(0, 1)], "draft-alone")).toMatchObject({ kind: "single", sizes: [0, 1] });
    expect(planStep([member(0, 1)], "verify-plain")).toMatchObject({ kind: "single" });
  });

  it("admission joins the sub-batch drafted next", () => {
    const running = [member(0, 1, true), member(1, 0)];
    const late = member(2, 1);
    running.push(late);
    admitToDraftBatch(late, running);
    expect(late.batch).toBe(0);
  });
});

describe("runStep on the fake backend", () => {
  const K = 3;
  const greedy = { temperature: 0, topK: 0, topP: 1 };

  /**
   * Runs a workload on the pipeline alone, admitting as the engine does (up to 2m running, each
   * new request into the sub-batch drafted next), and checks every step's worker calls. Requests
   * from `lateFrom` on arrive at step `lateAt` (a wave into a running pipeline: rebalancing).
   */
  async function drive(
    fill: FillMode,
    m: number,
    n: number,
    seed: number,
    lateFrom: number,
    lateAt: number,
  ): Promise<string[]> {
    const fake = new FakeBackend({ draftDelayMs: 1, verifyDelayMs: 2 });
    const collector = new StatsCollector("psd");
    const executor = new BatchExecutor(fake, collector, K, true);
    const w = workload(n, seed);
    const hooks = { now: () => collector.now(), settled: () => {} };
    const failures: unknown[] = [];
    const queue = w.prompts.map((p, i) => {
      const params = { maxTokens: w.maxTokens[i]!, sampling: greedy, draftSampling: greedy, seed: i, stop: [] };
      return new Request(
        i,
        p,
        params,
        fake.info,
        hooks,
        () => {},
        (e) => failures.push(e),
      );
    });
    const all = [...queue];
    const slots = new SlotPool(2 * m);
    let running: Request[] = [];
    const calls: PipelineCalls = {
      verify: (b, l) => executor.verify(b, l),
      draft: (b, l) => executor.draft(b, l, { k: K }),
    };
    const slotsOf = (rs: readonly Request[]) => rs.map((r) => r.slot).sort((a, b) => a - b);
    const kinds: string[] = [];
    for (let step = 1; running.length > 0 || queue.length > 0; step++) {
      const admitted: Request[] = [];
      while (queue.length > 0 && running.length < 2 * m && (all.indexOf(queue[0]!) < lateFrom || step >= lateAt)) {
        const r = queue.shift()!;
        r.state = "running";
        running.push(r);
        admitToDraftBatch(r, running);
        r.slot = slots.take(r.batch === 1);
        admitted.push(r);
      }
      await executor.prefill(admitted, { step, batch: -1 });
      const seen = fake.calls.length;
      const plan = planStep(running, fill);
      kinds.push(plan.kind === "overlap" && plan.fill ? "overlap (fill)" : plan.kind);
      const expected =
        plan.kind === "overlap"
          ? [`target verify ${slotsOf(plan.verify)}`, `draft draft ${slotsOf(plan.draft)}`]
          : plan.kind === "fill"
            ? [`draft draft ${slotsOf(plan.draft)}`]
            : plan.kind === "drain"
              ? [`target verify ${slotsOf(plan.verify)}`]
              : [`draft draft ${slotsOf(running)}`, `target verify ${slotsOf(running)}`];
      const timings = await runStep(plan, running, calls, step);
      const made = fake.calls.slice(seen).filter((c) => c.kind === "verify" || c.kind === "draft");
      const byStart = [...made].sort((a, b) => a.start - b.start);
      const why = `step ${step} (${plan.kind})`;
      expect(
        byStart.map((c) => `${c.worker} ${c.kind} ${[...c.seqs].sort((a, b) => a - b)}`),
        why,
      ).toEqual(expected);
      if (plan.kind === "overlap") {
        // both in flight at once, verification issued first; the drafted sub-batch is never more
        // than one request larger than the other
        const [v, d] = byStart;
        expect(Math.min(v!.end, d!.end), why).toBeGreaterThan(Math.max(v!.start, d!.start));
        expect(plan.sizes[plan.draftBatch], why).toBeLessThanOrEqual(plan.sizes[plan.verifyBatch] + 1);
        expect(timings.verify?.requests).toBe(plan.verify.length);
        expect(timings.draft?.requests).toBe(plan.draft.length);
      }
      if (plan.kind === "single") expect(byStart[0]!.end, why).toBeLessThanOrEqual(byStart[1]!.start);
      // between steps, every request holding drafts is in one sub-batch
      expect(
        new Set(running.filter((r) => r.drafts !== null && !r.done).map((r) => r.batch)).size,
        why,
      ).toBeLessThanOrEqual(1);
      const finished = running.filter((r) => r.done);
      running = running.filter((r) => !r.done);
      await executor.release(finished);
      for (const r of finished) slots.release(r.slot);
      if (step > 1000) throw new Error("the pipeline does not finish");
    }
    expect(failures).toEqual([]);
    all.forEach((r, i) =>
      expect(r.tokens.slice(r.promptLength), `request ${i}`).toEqual(
        fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!),
      ),
    );
    return kinds;
  }

  it("draft-alone (psd): fills by drafting one sub-batch, overlaps, drains, ends alone", async () => {
    const kinds = await drive("draft-alone", 3, 11, 2, 2, 8);
    expect(kinds[0]).toBe("fill");
    expect(kinds.filter((k) => k === "overlap").length).toBeGreaterThan(kinds.length / 2);
    expect(new Set(kinds)).toEqual(new Set(["fill", "overlap", "drain", "single"]));
  });

  it("verify-plain (auto): fills by verifying one sub-batch plainly while drafting the other", async () => {
    const kinds = await drive("verify-plain", 3, 11, 2, 2, 8);
    expect(kinds[0]).toBe("overlap (fill)");
    expect(kinds.filter((k) => k === "overlap").length).toBeGreaterThan(kinds.length / 2);
    expect(new Set(kinds)).toEqual(new Set(["overlap (fill)", "overlap", "drain", "single"]));
  });
});
