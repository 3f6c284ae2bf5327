// Per-mode figures from the measured runs, and speedups between modes of the same bench.
import type { Mode, RunStats } from "../index.js";
import type { ModeSummary } from "./types.js";

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function stdev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function summarizeRuns(runs: readonly RunStats[]): Omit<ModeSummary, "speedupVsSd" | "speedupVsAr"> {
  const of = (pick: (s: RunStats) => number) => mean(runs.map(pick));
  const tps = runs.map((s) => s.tokensPerSecond);
  return {
    tokensPerSecond: mean(tps),
    tokensPerSecondMin: Math.min(...tps),
    tokensPerSecondMax: Math.max(...tps),
    tokensPerSecondStdev: stdev(tps),
    meanE2eMs: of((s) => s.meanE2eMs),
    amortizedE2eMs: of((s) => s.amortizedE2eMs),
    meanTtftMs: of((s) => s.meanTtftMs),
    wallMs: of((s) => s.wallMs),
    generatedTokens: of((s) => s.generatedTokens),
    acceptanceRate: of((s) => s.acceptanceRate),
    meanAcceptanceLength: of((s) => s.meanAcceptanceLength),
    hiddenDraftFraction: of((s) => s.hiddenDraftFraction),
    draftMs: of((s) => s.draftMs),
    verifyMs: of((s) => s.verifyMs),
    overlapMs: of((s) => s.overlapMs),
  };
}

/** Adds each mode's speedup over sd and ar (ratios of mean tokens/s measured in this bench). */
export function withSpeedups<T extends { mode: Mode; summary: Omit<ModeSummary, "speedupVsSd" | "speedupVsAr"> }>(
  results: readonly T[],
): (Omit<T, "summary"> & { summary: ModeSummary })[] {
  const tpsOf = (mode: Mode) => results.find((r) => r.mode === mode)?.summary.tokensPerSecond;
  const over = (x: number, base: number | undefined) => (base === undefined || !(base > 0) ? null : x / base);
  return results.map((r) => ({
    ...r,
    summary: { ...r.summary, speedupVsSd: over(r.summary.tokensPerSecond, tpsOf("sd")), speedupVsAr: over(r.summary.tokensPerSecond, tpsOf("ar")) },
  }));
}
