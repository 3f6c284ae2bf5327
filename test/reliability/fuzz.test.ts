// Fuzzes llama.cpp's loader through LlamaModel.load with seeded mutations of the micro model (byte flips in the
// header / key-values / tensor table, truncations, length / count / dimension fields set to huge values, bad types
// and offsets, absurd hyper-parameters). Each file is loaded (then tokenized, decoded) in a child process, so a
// crash is reported with its mutation. Longer runs: node scripts/fuzz-gguf.mjs --seed N --count N.
import { describe, expect, it } from "vitest";
import { MUTATION_KINDS } from "../support/gguf.mjs";
import { runFuzz } from "../support/gguf-fuzz.mjs";
import { ensureBuilt } from "../cli/helpers.js";

// CI budget: ~10-20 s on the 2-core CI machine; the time limit bounds slow machines (and ASan builds).
const COUNT = 1000;
const TIME_LIMIT_MS = 50_000;

describe("GGUF loader fuzz (child processes)", () => {
  it(`${COUNT} seeded mutations of the micro model: no crash, no hang; ` +
    "each is refused with a reason or loads and runs", {
    timeout: 180_000,
  }, async () => {
    ensureBuilt();
    const res = await runFuzz({ seed: 20240611, count: COUNT, timeLimitMs: TIME_LIMIT_MS });
    const crashes = res.crashes.map(
      (c: { index: number; kind: string; what: string; how: string }) => `#${c.index} ${c.kind}: ${c.what} -> ${c.how}`,
    );
    expect(crashes, "crashes (reproduce with node scripts/fuzz-gguf.mjs --seed 20240611 --keep DIR)").toEqual([]);
    // it did real work: enough files, every kind of mutation, every kind of outcome
    expect(res.total).toBeGreaterThanOrEqual(Math.min(COUNT, 150));
    for (const kind of MUTATION_KINDS)
      expect((res.byKind as Record<string, { n: number }>)[kind]?.n ?? 0, kind).toBeGreaterThan(0);
    expect(res.rejectedByValidation).toBeGreaterThan(res.total * 0.3);
    expect(res.rejectedByLlama).toBeGreaterThan(0);
    expect(res.loaded).toBeGreaterThan(0);
    // errors other than validation / llama.cpp refusals are Errors raised after loading (e.g. decode failures)
    expect(res.otherErrors).toBeLessThan(res.total * 0.05);
  });
});
