// psd's overlapped admission: a request admitted while others hold drafts is prefilled inside the next
// step (pipeline.ts, admitIntoOverlap): its draft-side prefill runs while the target verifies the other
// sub-batch, its target-side prefill while the draft worker drafts, instead of both workers stopping the
// running requests first. Lossless, a failing prefill fails only its own request, and off it is today's
// admission between steps.
import { describe, expect, it } from "vitest";
import type { Engine } from "../../src/engine/engine.js";
import type { GenerateResult } from "../../src/engine/types.js";
import { type FakeBackend, type FakeCall, type FakeOptions, type FakeWorkerName, makePrompt } from "./fake-backend.js";
import { makeEngine, sleep } from "./helpers.js";

const DELAYS: FakeOptions = { prefillDelayMs: 6, draftDelayMs: 2, verifyDelayMs: 8 };
const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  Math.min(a.end, b.end) - Math.max(a.start, b.start) > 0;

const EARLY = [makePrompt(11, 6), makePrompt(12, 9)];
const LATE = [makePrompt(13, 7), makePrompt(14, 12)];

/** Two requests start (one per sub-batch); two more arrive once the pipeline runs. */
async function lateArrivals(engine: Engine): Promise<PromiseSettledResult<GenerateResult>[]> {
  const early = EARLY.map((p) => engine.generate(p, { maxTokens: 40 }));
  await sleep(60);
  const late = LATE.map((p) => engine.generate(p, { maxTokens: 12 }));
  return await Promise.allSettled([...early, ...late]);
}

const expectedTokens = (fake: FakeBackend) =>
  [...EARLY, ...LATE].map((p, i) => fake.greedyContinuation(p, i < EARLY.length ? 40 : 12));

/** The worker jobs (as the fake ran them) that prefilled the late arrivals: those after the first wave's. */
function latePrefills(fake: FakeBackend, worker: FakeWorkerName): FakeCall[] {
  const prefills = fake.calls.filter((c) => c.worker === worker && c.kind === "prefill");
  const firstWave = prefills[0]!.seqs.length === EARLY.length ? 1 : EARLY.length;
  return prefills.slice(firstWave);
}

/** The job other than a prefill that `call`'s worker ran right after / before it. */
function neighbour(fake: FakeBackend, call: FakeCall, offset: 1 | -1): FakeCall | undefined {
  const jobs = fake.calls.filter((c) => c.worker === call.worker).sort((a, b) => a.start - b.start);
  for (let i = jobs.indexOf(call) + offset; i >= 0 && i < jobs.length; i += offset)
    if (jobs[i]!.kind !== "prefill") return jobs[i];
  return undefined;
}

const busy = (fake: FakeBackend, worker: FakeWorkerName, kind: FakeCall["kind"]) =>
  fake.calls.filter((c) => c.worker === worker && c.kind === kind);

describe("overlapped admission (psd)", () => {
  for (const packedPrefill of [false, true]) {
    it(`prefills late arrivals beside the running requests' verify and draft jobs, losslessly${packedPrefill ? " (packed)" : ""}`, async () => {
      const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 4 }, { ...DELAYS, packedPrefill });
      const settled = await lateArrivals(engine);
      const expected = expectedTokens(fake);
      settled.forEach((s, i) => expect(s.status === "fulfilled" && s.value.tokens).toEqual(expected[i]));
      const target = latePrefills(fake, "target");
      const draft = latePrefills(fake, "draft");
      expect(target.flatMap((c) => c.seqs)).toHaveLength(LATE.length);
      expect(draft.flatMap((c) => c.seqs)).toHaveLength(LATE.length);
      if (packedPrefill) expect([target.length, draft.length]).toEqual([1, 1]);
      for (const p of target) {
        // queued behind the step's verification, run while the draft worker drafts
        expect(neighbour(fake, p, -1)?.kind).toBe("verify");
        expect(busy(fake, "draft", "draft").some((d) => overlaps(p, d))).toBe(true);
      }
      for (const p of draft) {
        // run while the target verifies, before the step's draft call
        expect(busy(fake, "target", "verify").some((v) => overlaps(p, v))).toBe(true);
        expect(neighbour(fake, p, 1)?.kind).toBe("draft");
      }
      // an admitted request that joined the drafted batch is drafted in the step that prefilled it,
      // before its target prefill is done
      const firstTarget = target[0]!;
      expect(
        busy(fake, "draft", "draft").some(
          (d) => d.start < firstTarget.end && d.seqs.some((s) => target.some((t) => t.seqs.includes(s))),
        ),
      ).toBe(true);
      await engine.close();
    });
  }

  it("off: late arrivals are prefilled between steps, beside no draft or verify job", async () => {
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 4, overlapAdmission: false }, DELAYS);
    const settled = await lateArrivals(engine);
    const expected = expectedTokens(fake);
    settled.forEach((s, i) => expect(s.status === "fulfilled" && s.value.tokens).toEqual(expected[i]));
    const prefills = [...latePrefills(fake, "target"), ...latePrefills(fake, "draft")];
    expect(prefills.length).toBe(2 * LATE.length);
    const work = fake.calls.filter((c) => c.kind === "draft" || c.kind === "verify");
    for (const p of prefills) expect(work.some((c) => overlaps(p, c))).toBe(false);
    await engine.close();
  });

  for (const worker of ["target", "draft"] as const) {
    it(`a failing ${worker} prefill inside a step fails only its own request`, async () => {
      const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 4 }, DELAYS);
      // the first two prefills on each worker are the early requests' (between steps), the next two the late ones'
      fake.failOn(worker, "prefill", 4, new Error(`${worker} prefill exploded`));
      const settled = await lateArrivals(engine);
      const failed = settled.flatMap((s, i) => (s.status === "rejected" ? [i] : []));
      expect(failed).toEqual([3]);
      expect((settled[3] as PromiseRejectedResult).reason.message).toBe(`${worker} prefill exploded`);
      const expected = expectedTokens(fake);
      settled.forEach((s, i) => {
        if (s.status === "fulfilled") expect(s.value.tokens).toEqual(expected[i]);
      });
      // the failed job ran inside a step, beside the other worker's draft or verify job
      const failedCall = latePrefills(fake, worker)[1]!;
      const other = worker === "target" ? "draft" : "target";
      expect(fake.calls.some((c) => c.worker === other && c.kind !== "prefill" && overlaps(c, failedCall))).toBe(true);
      await engine.close();
      // every slot was freed, the failed request's too
      expect(fake.liveSeqs("target")).toEqual([]);
      expect(fake.liveSeqs("draft")).toEqual([]);
    });
  }

  it("is a psd option", () => {
    expect(() => makeEngine({ mode: "sd", batchSize: 2, overlapAdmission: true })).toThrow(/mode "psd" only/);
  });
});
