// Admission with a backend that packs several prefills into one call (Worker.prefillMany, as the native
// backend does): one call per worker for a wave of admissions, the same outputs, and a failed packed
// call falls back to one call per request so only the request at fault fails.
import { describe, expect, it } from "vitest";
import { makeEngine, runWorkload, workload } from "./helpers.js";

describe("packed admission prefills", () => {
  for (const mode of ["sd", "psd"] as const) {
    it(`${mode}: a wave of admissions is one prefill call per worker, outputs unchanged`, async () => {
      const w = workload(8, 3);
      const { engine, fake } = makeEngine({ mode, batchSize: 4, draftTokens: 3 }, { packedPrefill: true });
      const results = await runWorkload(engine, w);
      results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!)));
      const capacity = mode === "psd" ? 8 : 4;
      const firstTarget = fake.calls.find((c) => c.worker === "target" && c.kind === "prefill")!;
      expect(firstTarget.seqs).toHaveLength(Math.min(capacity, w.prompts.length));
    });
  }

  it("a failed packed call is retried request by request: the others still run, the culprit alone fails", async () => {
    const w = workload(6, 5);
    const { engine, fake } = makeEngine({ mode: "sd", batchSize: 3, draftTokens: 2 }, { packedPrefill: true });
    // the packed call fails, then the second single prefill after it (one request) fails too
    fake.failOn("target", "prefill", 1, new Error("packed prefill exploded"));
    fake.failOn("target", "prefill", 3, new Error("single prefill exploded"));
    const settled = await Promise.allSettled(
      w.prompts.map((p, i) => engine.generate(p, { maxTokens: w.maxTokens[i] })),
    );
    const failed = settled.flatMap((s, i) => (s.status === "rejected" ? [i] : []));
    expect(failed).toHaveLength(1);
    expect((settled[failed[0]!] as PromiseRejectedResult).reason.message).toBe("single prefill exploded");
    settled.forEach((s, i) => {
      if (s.status === "fulfilled")
        expect(s.value.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!));
    });
    // the first wave: one packed call (failed), then one call per request
    const targetPrefills = fake.calls.filter((c) => c.worker === "target" && c.kind === "prefill");
    expect(targetPrefills[0]!.seqs).toHaveLength(3);
    expect(targetPrefills.slice(1, 4).map((c) => c.seqs.length)).toEqual([1, 1, 1]);
  });
});
