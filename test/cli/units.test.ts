// The CLI's pure parts in process: argument parsers, prompt files, atomic writes, ordered output,
// the bench timeline window and the HTML report renderer.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { overlapIntervals, renderHtmlReport, timelineSvg } from "../../src/bench/html-report.js";
import { niceTicks } from "../../src/bench/svg.js";
import {
  autoChoiceShares,
  loadReport,
  phaseStats,
  summarizeRuns,
  unionMs,
  withSpeedups,
} from "../../src/bench/summarize.js";
import { timelineWindow } from "../../src/bench/timeline.js";
import { BENCH_SCHEMA, type BenchReport, type ModeResult } from "../../src/bench/types.js";
import { writeFileAtomic } from "../../src/cli/atomic-write.js";
import { modeFromFlags } from "../../src/cli/engine-flags.js";
import { inOrder } from "../../src/cli/output-sink.js";
import { choiceList, decimal, integer, probability } from "../../src/cli/parsers.js";
import { parsePrompts } from "../../src/cli/prompts-file.js";
import type { Mode, Placement, RunStats, TraceEvent } from "../../src/index.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "minedraft-cli-units-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("parsers", () => {
  it("integer() takes only whole numbers in range", () => {
    const k = integer(1, 32);
    expect(k("4")).toBe(4);
    expect(k(" 32 ")).toBe(32);
    for (const bad of ["abc", "1.5", "NaN", "", "1e1", "0", "33", "4x"]) expect(() => k(bad), bad).toThrow();
    expect(integer(-1)("-1")).toBe(-1);
  });

  it("decimal() rejects NaN, infinities and junk; probability() is (0, 1]", () => {
    const t = decimal(0);
    expect(t("0.7")).toBe(0.7);
    expect(t(".5")).toBe(0.5);
    expect(t("1e-2")).toBe(0.01);
    for (const bad of ["NaN", "Infinity", "1e999", "1x", "", "-0.1"]) expect(() => t(bad), bad).toThrow();
    expect(probability("1")).toBe(1);
    for (const bad of ["0", "1.1", "-0.5"]) expect(() => probability(bad), bad).toThrow();
  });

  it("choiceList() splits, trims, dedupes and rejects unknown words", () => {
    const modes = choiceList(["ar", "sd", "psd"] as const);
    expect(modes("psd, ar,psd")).toEqual(["psd", "ar"]);
    expect(() => modes("ar,fast")).toThrow(/fast/);
    expect(() => modes(",")).toThrow();
  });
});

describe("prompt files", () => {
  it("reads plain lines and JSON lines, skipping blank lines", () => {
    expect(parsePrompts('one\n\n{"prompt": "two", "id": 7}\r\n  {"prompt":"three"}\nfour {x}\n', "f")).toEqual([
      { prompt: "one" },
      { prompt: "two", id: 7 },
      { prompt: "three" },
      { prompt: "four {x}" },
    ]);
  });

  it("names the file and line of a bad entry", () => {
    expect(() => parsePrompts("ok\n{not json}\n", "p.txt")).toThrow(/p\.txt line 2: invalid JSON/);
    expect(() => parsePrompts('{"text": "x"}', "p.txt")).toThrow(/line 1: expected a non-empty string "prompt"/);
    expect(() => parsePrompts("\n  \n", "p.txt")).toThrow(/no prompts in p\.txt/);
  });
});

describe("output", () => {
  it("writeFileAtomic replaces a file and leaves no temporary file", async () => {
    const file = path.join(tmp, "out.txt");
    await writeFileAtomic(file, "first");
    await writeFileAtomic(file, "second");
    expect(await readFile(file, "utf8")).toBe("second");
    expect(await readdir(tmp)).toEqual(["out.txt"]);
    await expect(writeFileAtomic(path.join(tmp, "no-such-dir", "x"), "x")).rejects.toThrow();
  });

  it("inOrder emits results in index order as soon as they can be", () => {
    const seen: number[] = [];
    const emit = inOrder<string>((i) => seen.push(i));
    emit(2, "c");
    emit(0, "a");
    expect(seen).toEqual([0]);
    emit(1, "b");
    expect(seen).toEqual([0, 1, 2]);
  });
});

/** A psd-like trace: step s drafts sub-batch s%2 while verifying the other, each 10 ms. */
function psdTrace(steps: number): TraceEvent[] {
  const events: TraceEvent[] = [
    { worker: "target", kind: "prefill", start: 0, end: 5, step: 1, requests: [1, 2], batch: -1 },
  ];
  for (let s = 1; s <= steps; s++) {
    const t = 5 + (s - 1) * 10;
    events.push({
      worker: "draft",
      kind: "draft",
      start: t,
      end: t + 8,
      step: s,
      requests: [s % 2 ? 1 : 2],
      batch: s % 2,
    });
    events.push({
      worker: "target",
      kind: "verify",
      start: t + 1,
      end: t + 10,
      step: s,
      requests: [s % 2 ? 2 : 1],
      batch: 1 - (s % 2),
    });
  }
  return events;
}

describe("phase statistics", () => {
  it("counts prefill wall time once where both workers prefill at once (psd), in full where they take turns", () => {
    expect(unionMs([])).toBe(0);
    expect(
      unionMs([
        { start: 0, end: 10 },
        { start: 2, end: 6 },
        { start: 12, end: 15 },
        { start: 14, end: 20 },
      ]),
    ).toBe(18);
    const pre = (worker: "target" | "draft", start: number, end: number): TraceEvent => ({
      worker,
      kind: "prefill",
      start,
      end,
      step: 1,
      requests: [1],
      batch: -1,
    });
    // psd: both workers prefill the same admission concurrently (the target's part is the longer)
    const together = phaseStats(
      [
        pre("target", 0, 100),
        pre("draft", 0, 12),
        ...psdTrace(3)
          .slice(1)
          .map((e) => ({ ...e, start: e.start + 100, end: e.end + 100 })),
      ],
      3,
      135,
    );
    expect(together.prefill.totalMs).toBe(112);
    expect(together.prefill.wallMs).toBe(100);
    // sd: one after the other
    const turns = phaseStats([pre("target", 0, 100), pre("draft", 100, 112)], 0, 112);
    expect(turns.prefill.wallMs).toBe(112);
  });
});

describe("auto choice shares", () => {
  it("lists the choices by share of steps, most frequent first, with or without threads", () => {
    const d = (schedule: string, k: number, steps: number, t: number) => ({
      schedule,
      k,
      steps,
      threads: { target: t, draft: t },
    });
    const decisions = [d("overlapped", 1, 1, 1), d("sequential", 0, 6, 2), d("sequential", 1, 3, 2)];
    expect(autoChoiceShares(decisions)).toBe(
      "sequential k=0 at 2/2 threads 60%, sequential k=1 at 2/2 threads 30%, overlapped k=1 at 1/1 threads 10%",
    );
    expect(autoChoiceShares(decisions, { top: 2, threads: false })).toBe("sequential k=0 60%, sequential k=1 30%");
    expect(autoChoiceShares([])).toBe("");
  });
});

describe("timeline", () => {
  it("takes consecutive steps from the middle of the run and clips events to the window", () => {
    const w = timelineWindow(psdTrace(20), 6);
    const steps = [...new Set(w.events.map((e) => e.step))];
    expect(Math.min(...steps)).toBeGreaterThanOrEqual(8);
    expect(Math.max(...steps) - Math.min(...steps)).toBeLessThanOrEqual(6);
    for (const e of w.events) {
      expect(e.start).toBeGreaterThanOrEqual(w.startMs);
      expect(e.end).toBeLessThanOrEqual(w.endMs);
    }
    expect(w.events.some((e) => e.worker === "draft") && w.events.some((e) => e.worker === "target")).toBe(true);
  });

  it("handles short and empty traces", () => {
    expect(timelineWindow([], 6).events).toEqual([]);
    expect(new Set(timelineWindow(psdTrace(2), 6).events.map((e) => e.step))).toEqual(new Set([1, 2]));
  });

  it("finds the time both workers are busy", () => {
    const both = overlapIntervals(psdTrace(2));
    expect(both).toEqual([
      [6, 13],
      [16, 23],
    ]);
  });

  it("draws two lanes with an ms axis", () => {
    const svg = timelineSvg("psd", timelineWindow(psdTrace(10), 4));
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('data-worker="draft"');
    expect(svg).toContain('data-worker="target"');
    expect(svg).toContain("time (ms)");
    expect((svg.match(/class="event draft"/g) ?? []).length).toBeGreaterThan(0);
    expect((svg.match(/class="event verify"/g) ?? []).length).toBeGreaterThan(0);
  });

  it("uses 1-2-5 ticks", () => {
    expect(niceTicks(95)).toEqual([0, 20, 40, 60, 80]);
    expect(niceTicks(0.9, 3)).toEqual([0, 0.5]);
    expect(niceTicks(0)).toEqual([0]);
  });
});

function runStats(mode: Mode, tokensPerSecond: number): RunStats {
  return {
    mode,
    requests: 2,
    generatedTokens: 20,
    wallMs: 1000,
    tokensPerSecond,
    draftedTokens: 16,
    acceptedTokens: 8,
    acceptanceRate: 0.5,
    meanAcceptanceLength: 2,
    perPositionAcceptance: [0.7, 0.5, 0.4, 0.4],
    meanTtftMs: 50,
    meanE2eMs: 900,
    amortizedE2eMs: 450,
    steps: 10,
    prefillMs: 0,
    draftMs: 400,
    verifyMs: 500,
    overlapMs: mode === "psd" ? 300 : 0,
    idleMs: 100,
    hiddenDraftFraction: mode === "psd" ? 0.75 : 0,
  };
}

function fakeReport(): BenchReport {
  const modes = (["ar", "sd", "psd"] as Mode[]).map((mode, i) => {
    const stats = [runStats(mode, 10 + i * 5), runStats(mode, 12 + i * 5)];
    const placement: Placement = {
      mode,
      cores: 2,
      targetThreads: mode === "psd" ? 1 : 2,
      draftThreads: mode === "ar" ? 0 : mode === "psd" ? 1 : 2,
      concurrent: mode === "psd",
      oversubscribed: false,
      targetDevice: "cpu",
      draftDevice: mode === "ar" ? "none" : "cpu",
      deviceNote: "no GPU found: target and draft on the CPU",
      kvUnified: { target: false, draft: false },
      sequences: 4,
    };
    const trace = mode === "ar" ? psdTrace(12).filter((e) => e.worker === "target") : psdTrace(12);
    return {
      mode,
      placement,
      summary: summarizeRuns(stats),
      warmup: stats[0]!,
      runs: stats.map((s, r) => ({ run: r + 1, stats: s, requests: [] })),
      timeline: timelineWindow(trace),
    };
  });
  return {
    schema: BENCH_SCHEMA,
    minedraftVersion: "0.0.0",
    createdAt: "2025-01-01T00:00:00.000Z",
    durationMs: 1234,
    machine: {
      cpuModel: "Test <CPU>",
      cores: 2,
      availableParallelism: 2,
      totalMemoryBytes: 1,
      os: { platform: "linux", release: "6", arch: "x64" },
      node: "v20",
      llamaSystemInfo: "",
      devices: [],
    },
    models: {
      target: {
        path: "/m/<target>.gguf",
        name: "t",
        architecture: "llama",
        fileSize: 1 << 20,
        quantization: "F16",
        nParams: 5e7,
        nLayer: 8,
        nEmbd: 512,
        nVocab: 32000,
        nCtxTrain: 4096,
        device: "default",
        gpuLayers: null,
      },
      draft: null,
    },
    options: {
      modes: ["ar", "sd", "psd"],
      promptSource: "builtin",
      batchSize: 2,
      draftTokens: 4,
      temperature: 0,
      maxTokens: 8,
      repeat: 2,
      seed: 0,
      contextSize: 256,
      timelineSteps: 6,
      warmupMaxTokens: 8,
      promptCount: 2,
    },
    prompts: ["a", "b"],
    modes: withSpeedups(modes) as unknown as ModeResult[],
  };
}

describe("HTML report", () => {
  it("is one self-contained page with throughput bars and a two-lane timeline per mode", () => {
    const html = renderHtmlReport(fakeReport());
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script|<link|<img|src=|href=|url\(/i);
    expect((html.match(/<rect class="bar"/g) ?? []).length).toBe(3);
    expect((html.match(/<svg class="timeline"/g) ?? []).length).toBe(3);
    expect((html.match(/data-worker="draft"/g) ?? []).length).toBe(3);
    expect((html.match(/data-worker="target"/g) ?? []).length).toBe(3);
    expect(html).toContain("no draft model in ar");
    expect(html).toContain("Test &lt;CPU&gt;");
    expect(html).toContain("/m/&lt;target&gt;.gguf");
    expect(html).not.toContain("<CPU>");
  });

  it(
    "warns, in the report too, when the machine was loaded " + "or a mode's runs spread; tokens/s is the runs' median",
    () => {
      const quiet = fakeReport();
      expect(loadReport(quiet.modes)).toEqual({ maxCompetingCores: 0, warnings: [] });
      const noisy = quiet.modes.map((m) => ({
        ...m,
        runs: m.runs.map((r, i) => ({ ...r, competingCores: i === 0 ? 0.9 : 0.05 })),
      }));
      noisy[2] = {
        ...noisy[2]!,
        runs: [...noisy[2]!.runs, { ...noisy[2]!.runs[0]!, run: 3, stats: runStats("psd", 40) }],
      };
      const load = loadReport(noisy);
      expect(load.maxCompetingCores).toBeCloseTo(0.9, 12);
      expect(load.warnings).toHaveLength(2);
      expect(load.warnings[0]).toMatch(
        /loaded: other work used up to 0.90 cores during 4 of 7 measured runs \(ar, sd, psd\)/,
      );
      expect(load.warnings[1]).toMatch(/^psd's runs spread 2.00x/);
      const html = renderHtmlReport({ ...quiet, load });
      expect((html.match(/class="warning"/g) ?? []).length).toBe(2);
      // one slow run out of three does not move the median
      expect(summarizeRuns([runStats("ar", 10), runStats("ar", 2), runStats("ar", 11)]).tokensPerSecond).toBe(10);
    },
  );

  it("speedups are ratios of median tokens/s within the bench", () => {
    const [ar, sd, psd] = fakeReport().modes;
    expect(ar!.summary.speedupVsAr).toBe(1);
    expect(psd!.summary.speedupVsSd).toBeCloseTo(psd!.summary.tokensPerSecond / sd!.summary.tokensPerSecond, 12);
    expect(sd!.summary.tokensPerSecondMin).toBe(15);
    expect(sd!.summary.tokensPerSecondMax).toBe(17);
  });
});

describe("modeFromFlags (generate and serve)", () => {
  it("picks the default mode from the draft flags and names what does not fit", () => {
    expect(modeFromFlags({}, false)).toEqual({ mode: "ar" });
    expect(modeFromFlags({ draft: "d.gguf" }, true)).toEqual({ mode: undefined });
    expect(modeFromFlags({ draft: "ngram" }, true)).toEqual({ mode: "sd" });
    expect(modeFromFlags({ draft: "d.gguf", tetrisExtra: 2 }, true)).toEqual({ mode: "psd" });
    expect(modeFromFlags({ draft: "ngram", mode: "psd" }, true).error).toMatch(/works with --mode sd or auto/);
    expect(modeFromFlags({ draft: "ngram", mode: "auto" }, true)).toEqual({ mode: "auto" });
    expect(modeFromFlags({ draft: "d.gguf", ngramMaxN: 2 }, true).error).toMatch(/--ngram-max-n/);
    expect(modeFromFlags({ draft: "d.gguf", ngram: true, ngramMaxN: 2 }, true)).toEqual({ mode: undefined });
    expect(modeFromFlags({ draft: "ngram", ngram: true }, true).error).toMatch(/--ngram combines/);
    expect(modeFromFlags({ ngram: true }, false).error).toMatch(/--ngram combines/);
    expect(modeFromFlags({ mode: "sd" }, false).error).toBe("mode sd needs a draft model (--draft <path>)");
    expect(modeFromFlags({ draft: "d.gguf", tetrisExtra: 2, mode: "auto" }, true).error).toMatch(/\(mode is auto\)/);
  });
});
