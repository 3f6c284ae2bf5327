// Per-mode figures from the measured runs, and speedups between modes of the same bench.
import type { RunStats, TraceEvent } from "../index.js";
import type {
  AutoSummary,
  BenchMode,
  DraftCost,
  LoadReport,
  ModeResult,
  ModeSummary,
  PhaseStats,
  RunRecord,
  VerifyCost,
} from "./types.js";

type Speedups = "speedupVsSd" | "speedupVsAr" | "speedupVsBestFixed";

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function stdev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarizeRuns(runs: readonly RunStats[]): Omit<ModeSummary, Speedups> {
  const of = (pick: (s: RunStats) => number) => mean(runs.map(pick));
  const tps = runs.map((s) => s.tokensPerSecond);
  return {
    // the median: one run disturbed by other work does not move it (with 2 runs it is their mean)
    tokensPerSecond: median(tps),
    tokensPerSecondMean: mean(tps),
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
    idleFraction: of((s) => (s.wallMs > 0 ? s.idleMs / s.wallMs : 0)),
    ...(runs.some((s) => s.auto) ? { auto: summarizeAuto(runs) } : {}),
    ...(runs.some((s) => s.tetris) ? { tetris: summarizeTetris(runs) } : {}),
  };
}

function summarizeAuto(runs: readonly RunStats[]): AutoSummary {
  const byKey = new Map<string, AutoSummary["decisions"][number]>();
  let steps = 0;
  for (const s of runs) {
    for (const d of s.auto?.decisions ?? []) {
      const key = `${d.schedule}/${d.k}/${d.threads.target}/${d.threads.draft}`;
      const e = byKey.get(key) ?? { ...d, threads: { ...d.threads }, steps: 0, share: 0 };
      e.steps += d.steps;
      byKey.set(key, e);
      steps += d.steps;
    }
  }
  const decisions = [...byKey.values()].sort((a, b) => b.steps - a.steps);
  for (const d of decisions) d.share = steps > 0 ? d.steps / steps : 0;
  const last = runs[runs.length - 1]!.auto!;
  return {
    decisions,
    probeSteps: runs.reduce((n, s) => n + (s.auto?.probeSteps ?? 0), 0),
    switches: runs.reduce((n, s) => n + (s.auto?.switches ?? 0), 0),
    model: last.model,
  };
}

function summarizeTetris(runs: readonly RunStats[]): NonNullable<ModeSummary["tetris"]> {
  const ts = runs.map((s) => s.tetris).filter((t) => t !== undefined);
  return {
    extra: ts[0]!.extra,
    draftedTokens: mean(ts.map((t) => t.draftedTokens)),
    verifiedTokens: mean(ts.map((t) => t.verifiedTokens)),
    acceptanceRate: mean(ts.map((t) => t.acceptanceRate)),
    acceptedPerVerify: mean(ts.map((t) => t.acceptedPerVerify)),
  };
}

/** A mode's runs spread more than this (fastest / slowest tokens/s): the bench warns. */
const SPREAD_WARNING = 1.5;
/** Others used more than this many cores during a run: the bench warns. */
const LOAD_WARNING = 0.35;

/**
 * Whether other work disturbed the bench: the cores others used during each measured run, the
 * spread of each mode's runs, and the engine re-placing its threads; each finding as a warning.
 */
export function loadReport(results: readonly { mode: BenchMode; runs: readonly RunRecord[] }[]): LoadReport {
  // a reading over a run shorter than ~0.25 s is mostly the kernel's 10 ms tick: left out
  const runs = results.flatMap((r) =>
    r.runs.filter((run) => run.stats.wallMs >= 250).map((run) => ({ mode: r.mode, run })),
  );
  const competing = runs.map((r) => r.run.competingCores ?? 0);
  const maxCompetingCores = competing.length > 0 ? Math.max(...competing) : 0;
  const warnings: string[] = [];
  const loaded = runs.filter((r) => (r.run.competingCores ?? 0) > LOAD_WARNING);
  if (loaded.length > 0) {
    warnings.push(
      `the machine was loaded: other work used up to ${maxCompetingCores.toFixed(2)} cores during ` +
        `${loaded.length} of ${runs.length} measured runs (${[...new Set(loaded.map((r) => r.mode))].join(", ")});` +
        " figures of those runs understate this machine",
    );
  }
  for (const r of results) {
    const tps = r.runs.map((run) => run.stats.tokensPerSecond);
    if (tps.length >= 2 && Math.min(...tps) > 0 && Math.max(...tps) / Math.min(...tps) > SPREAD_WARNING) {
      warnings.push(
        `${r.mode}'s runs spread ${(Math.max(...tps) / Math.min(...tps)).toFixed(2)}x ` +
          `(${Math.min(...tps).toFixed(1)}-${Math.max(...tps).toFixed(1)} tok/s): the machine's speed changed ` +
          "during the bench; the table shows medians",
      );
    }
  }
  const replaced = runs.filter(
    (r) =>
      (r.run.stats.coreLimit?.cores ?? 0) < (r.run.stats.coreLimit?.of ?? 0) ||
      (r.run.stats.coreLimit?.changes ?? 0) > 0,
  );
  if (replaced.length > 0)
    warnings.push(
      `the engine ran on fewer cores during ${replaced.length} of ${runs.length} measured runs: other work held ` +
        "cores (RunStats.coreLimit)",
    );
  return { maxCompetingCores, warnings };
}

/**
 * Adds each mode's speedup over sd and ar (ratios of median tokens/s measured in this bench), and auto's over the best
 * fixed mode.
 */
export function withSpeedups<T extends { mode: BenchMode; summary: Omit<ModeSummary, Speedups> }>(
  results: readonly T[],
): (Omit<T, "summary"> & { summary: ModeSummary })[] {
  const tpsOf = (mode: BenchMode) => results.find((r) => r.mode === mode)?.summary.tokensPerSecond;
  const over = (x: number, base: number | undefined) => (base === undefined || !(base > 0) ? null : x / base);
  const fixed = results.filter((r) => r.mode !== "auto").map((r) => r.summary.tokensPerSecond);
  const bestFixed = fixed.length > 0 ? Math.max(...fixed) : undefined;
  return results.map((r) => ({
    ...r,
    summary: {
      ...r.summary,
      speedupVsSd: over(r.summary.tokensPerSecond, tpsOf("sd")),
      speedupVsAr: over(r.summary.tokensPerSecond, tpsOf("ar")),
      speedupVsBestFixed: r.mode === "auto" ? over(r.summary.tokensPerSecond, bestFixed) : null,
    },
  }));
}

/**
 * Cost of each kind of model work in a trace. A call counts as overlapped when it shares at
 * least half of the shorter of the two with a call of the other worker (a psd verification is
 * overlapped although the drafting beside it is much shorter). O(n log n).
 */
export function phaseStats(events: readonly TraceEvent[], steps: number, wallMs: number): PhaseStats {
  const busyFraction = overlapFractions(events);
  const verify = { alone: [] as TraceEvent[], overlapped: [] as TraceEvent[] };
  const draft = { alone: [] as TraceEvent[], overlapped: [] as TraceEvent[] };
  const prefills: TraceEvent[] = [];
  events.forEach((e, i) => {
    const where = busyFraction[i]! >= 0.5 ? "overlapped" : "alone";
    if (e.kind === "verify") verify[where].push(e);
    else if (e.kind === "draft") draft[where].push(e);
    else prefills.push(e);
  });
  let prefillMs = 0;
  for (const e of prefills) prefillMs += e.end - e.start;
  const prefillCalls = prefills.length;
  return {
    verify: { alone: verifyCost(verify.alone), overlapped: verifyCost(verify.overlapped) },
    draft: { alone: draftCost(draft.alone), overlapped: draftCost(draft.overlapped) },
    prefill: {
      calls: prefillCalls,
      meanMs: prefillCalls > 0 ? prefillMs / prefillCalls : 0,
      totalMs: prefillMs,
      wallMs: unionMs(prefills),
    },
    steps,
    wallMs,
  };
}

/** For each event, the largest shared fraction (of the shorter event) with any event of the other worker. */
function overlapFractions(events: readonly TraceEvent[]): number[] {
  const byWorker = (w: TraceEvent["worker"]) =>
    events
      .filter((e) => e.worker === w)
      .map((e) => [e.start, e.end] as const)
      .sort((a, b) => a[0] - b[0]);
  const lanes = { draft: byWorker("draft"), target: byWorker("target") };
  return events.map((e) => {
    const other = lanes[e.worker === "draft" ? "target" : "draft"];
    const span = e.end - e.start;
    if (span <= 0) return 0;
    // binary search for the first interval that may overlap
    let lo = 0;
    let hi = other.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (other[mid]![1] <= e.start) lo = mid + 1;
      else hi = mid;
    }
    let best = 0;
    for (let j = lo; j < other.length && other[j]![0] < e.end; j++) {
      const shared = Math.min(e.end, other[j]![1]) - Math.max(e.start, other[j]![0]);
      const shorter = Math.min(span, other[j]![1] - other[j]![0]);
      if (shared > 0 && shorter > 0) best = Math.max(best, shared / shorter);
    }
    return best;
  });
}

function verifyCost(events: readonly TraceEvent[]): VerifyCost {
  const bySize = new Map<number, { tokens: number; calls: number; ms: number }>();
  let ms = 0;
  let tokens = 0;
  for (const e of events) {
    const d = e.end - e.start;
    const n = e.tokens ?? e.requests.length * ((e.k ?? 0) + 1);
    ms += d;
    tokens += n;
    const p = bySize.get(n) ?? { tokens: n, calls: 0, ms: 0 };
    p.calls++;
    p.ms += d;
    bySize.set(n, p);
  }
  const calls = events.length;
  return {
    calls,
    meanMs: calls > 0 ? ms / calls : 0,
    meanTokens: calls > 0 ? tokens / calls : 0,
    bySize: [...bySize.values()]
      .sort((a, b) => b.calls - a.calls || a.tokens - b.tokens)
      .map((p) => ({ tokens: p.tokens, calls: p.calls, meanMs: p.ms / p.calls })),
  };
}

function draftCost(events: readonly TraceEvent[]): DraftCost {
  const calls = events.length;
  if (calls === 0) return { calls: 0, meanMs: 0, meanSteps: 0, meanRequests: 0, msPerStep: 0 };
  let ms = 0;
  let steps = 0;
  let requests = 0;
  let perStep = 0;
  for (const e of events) {
    const d = e.end - e.start;
    const k = Math.max(1, e.k ?? 1);
    ms += d;
    steps += k;
    requests += e.requests.length;
    perStep += d / k;
  }
  return {
    calls,
    meanMs: ms / calls,
    meanSteps: steps / calls,
    meanRequests: requests / calls,
    msPerStep: perStep / calls,
  };
}

/** Threads "target/draft" of a mode; auto shows both placements it switches between, joined by `or`. */
export function threadsLabel(m: Pick<ModeResult, "mode" | "placement">, or = " or "): string {
  const p = m.placement;
  if (m.mode === "ar") return `${p.targetThreads}/-`;
  const plans = p.threadPlans;
  if (plans)
    return (
      `${plans.sequential.target}/${plans.sequential.draft}` +
      (plans.overlapped ? `${or}${plans.overlapped.target}/${plans.overlapped.draft}` : "")
    );
  return `${p.targetThreads}/${p.draftThreads}`;
}

/**
 * auto's choices by share of steps, most frequent first, e.g. "sequential k=0 at 2/2 threads 52%,
 * overlapped k=1 at 1/1 threads 3%" (`threads: false` leaves the thread counts out).
 */
export function autoChoiceShares(
  decisions: readonly { schedule: string; k: number; steps: number; threads: { target: number; draft: number } }[],
  opts: { top?: number; threads?: boolean } = {},
): string {
  const total = decisions.reduce((n, d) => n + d.steps, 0);
  return [...decisions]
    .sort((a, b) => b.steps - a.steps)
    .slice(0, opts.top ?? decisions.length)
    .map(
      (d) =>
        `${d.schedule} k=${d.k}` +
        `${opts.threads === false ? "" : ` at ${d.threads.target}/${d.threads.draft} threads`} ` +
        `${total > 0 ? ((100 * d.steps) / total).toFixed(0) : "0"}%`,
    )
    .join(", ");
}

/** Length of the union of the events' intervals (time in which at least one of them ran). O(n log n). */
export function unionMs(events: readonly { start: number; end: number }[]): number {
  const sorted = [...events].sort((a, b) => a.start - b.start);
  let total = 0;
  let from = -Infinity;
  let to = -Infinity;
  for (const e of sorted) {
    if (e.start > to) {
      if (to > from) total += to - from;
      from = e.start;
      to = e.end;
    } else to = Math.max(to, e.end);
  }
  if (to > from) total += to - from;
  return total;
}
