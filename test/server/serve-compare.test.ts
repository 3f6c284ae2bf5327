// bench serve's side-by-side ratios (per round and rate, then median and range over rounds) and its
// prompt screening (prompts whose greedy text is not valid UTF-8 are left out for every system).
import { describe, expect, it } from "vitest";
import { screenPrompts } from "../../src/bench/prompt-screen.js";
import { compareServe, formatComparisons, summarizeComparisons } from "../../src/bench/serve-compare.js";

const row = (
  round: number,
  system: string,
  mode: string | null,
  rate: number | "inf",
  tokS: number,
  e2e: number,
  failedTokS = 0,
) => ({
  round,
  system,
  mode,
  rate,
  summary: {
    completed: 4,
    outputTokensPerSecond: tokS,
    failedOutputTokensPerSecond: failedTokS,
    e2eMs: { mean: e2e, median: e2e, p99: e2e },
  },
});

describe("side-by-side ratios", () => {
  const results = [
    row(1, "minedraft ar", "ar", "inf", 1000, 700),
    row(1, "minedraft ar library", "ar", "inf", 5000, 100), // in-process: not a serving row
    row(1, "minedraft auto", "auto", "inf", 900, 650),
    row(1, "llama-server -np 8", null, "inf", 600, 800, 200), // its failed requests' tokens counted
    row(1, "llama-server -np 4", null, "inf", 700, 900),
    row(2, "minedraft ar", "ar", "inf", 800, 800),
    row(2, "minedraft auto", "auto", "inf", 840, 790),
    row(2, "llama-server -np 8", null, "inf", 1000, 700),
    row(2, "llama-server -np 4", null, "inf", 700, 1000),
    row(1, "minedraft ar", "ar", 8, 400, 200),
    row(1, "minedraft auto", "auto", 8, 400, 210),
  ];

  it("per round and rate: best mode over best incumbent, lowest median E2EL each side, auto over the best fixed mode", () => {
    const c = compareServe(results);
    expect(c.map((x) => `${x.round}@${x.rate}`)).toEqual(["1@inf", "2@inf", "1@8"]);
    expect(c[0]).toMatchObject({
      bestMode: "minedraft ar",
      bestIncumbent: "llama-server -np 8",
      bestIncumbentTokensPerSecond: 800,
      throughputRatio: 1000 / 800,
      e2eRatio: 650 / 800,
      autoVsBestFixed: 0.9,
    });
    expect(c[1]).toMatchObject({ bestMode: "minedraft auto", throughputRatio: 0.84, e2eRatio: 790 / 700 });
    expect(c[1]!.autoVsBestFixed).toBeCloseTo(1.05, 12);
    // no incumbent at that rate: only auto's ratio
    expect(c[2]).toMatchObject({ throughputRatio: null, e2eRatio: null, autoVsBestFixed: 1 });
  });

  it("over rounds: median and range per rate, printed as one line per rate", () => {
    const s = summarizeComparisons(compareServe(results));
    const inf = s.find((x) => x.rate === "inf")!;
    expect(inf.throughputRatio).toEqual({ median: (1.25 + 0.84) / 2, min: 0.84, max: 1.25, n: 2 });
    expect(inf.autoVsBestFixed!.min).toBe(0.9);
    const text = formatComparisons(s);
    expect(text).toMatch(/median over 2 rounds/);
    expect(text).toMatch(/^inf\s+1\.04x \[0\.84-1\.25\]\s+0\.97x \[0\.81-1\.13\]\s+0\.98x \[0\.90-1\.05\]$/m);
    expect(text).toMatch(/^8\s+-\s+-\s+1\.00x$/m);
    expect(formatComparisons(summarizeComparisons(compareServe([row(1, "minedraft ar", "ar", 1, 5, 5)])))).toBe("");
  });
});

describe("prompt screening", () => {
  it("keeps the distinct prompts whose greedy text is valid UTF-8, in order; asks for greedy text at max tokens", async () => {
    const asked: { prompt: string; maxTokens: number; temperature: number }[] = [];
    const engine = {
      generate: async (prompt: string, o: { maxTokens: number; temperature: number }) => {
        asked.push({ prompt, ...o });
        return { text: prompt.startsWith("bad") ? `ok \uFFFD then` : `fine ${prompt}` };
      },
    };
    const r = await screenPrompts(engine, ["a", "bad1", "b", "a", "bad2", "b"], 48);
    expect(r).toEqual({ kept: ["a", "b"], dropped: ["bad1", "bad2"] });
    expect(asked).toHaveLength(4); // each distinct prompt once
    for (const a of asked) expect(a).toMatchObject({ maxTokens: 48, temperature: 0 });
  });
});
