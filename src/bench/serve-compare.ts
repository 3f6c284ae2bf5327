// The serving benchmark's side-by-side ratios, per round and rate, from rows measured in the same run:
// minedraft's best mode against llama-server's best configuration (output tokens/s, and the lowest
// median E2EL of each side), and `auto` against the best fixed mode. Across rounds: median and range,
// since a single ~1 s run on a shared 2-core machine reads as ±10%.
import type { ServeLoadSummary } from "./serve-load.js";

/** What a comparison reads of one result row (serve-report.ts's ServeRateResult). */
interface ServeRateResult {
  round?: number;
  system: string;
  mode: string | null;
  rate: number | "inf";
  summary: Pick<ServeLoadSummary, "completed" | "outputTokensPerSecond" | "failedOutputTokensPerSecond" | "e2eMs">;
}

export interface ServeComparison {
  round: number;
  rate: number | "inf";
  /** minedraft's mode with the most tokens/s over HTTP, and that figure */
  bestMode: string;
  bestModeTokensPerSecond: number;
  /** llama-server's configuration with the most tokens/s (its failed requests' tokens counted), when it ran */
  bestIncumbent: string | null;
  bestIncumbentTokensPerSecond: number | null;
  /** bestMode's tokens/s ÷ bestIncumbent's */
  throughputRatio: number | null;
  /** the lowest median E2EL of minedraft's modes ÷ that of llama-server's configurations (< 1: minedraft's lower) */
  e2eRatio: number | null;
  /** auto's tokens/s ÷ the best of the other modes, where auto and another mode ran */
  autoVsBestFixed: number | null;
}

/** Tokens/s a system streamed, its failed requests' included (llama-server fails some after generating them). */
const streamed = (r: ServeRateResult) => r.summary.outputTokensPerSecond + r.summary.failedOutputTokensPerSecond;

const best = <T>(xs: readonly T[], by: (x: T) => number): T | undefined =>
  xs.reduce<T | undefined>((b, x) => (b === undefined || by(x) > by(b) ? x : b), undefined);

/** One comparison per round and rate present in `results` (minedraft's in-process library rows left out). */
export function compareServe(results: readonly ServeRateResult[]): ServeComparison[] {
  const out: ServeComparison[] = [];
  const keys = [...new Set(results.map((r) => `${r.round ?? 1}|${r.rate}`))];
  for (const key of keys) {
    const rows = results.filter((r) => `${r.round ?? 1}|${r.rate}` === key);
    const modes = rows.filter((r) => r.mode !== null && !r.system.endsWith(" library"));
    const incumbents = rows.filter((r) => r.mode === null);
    const top = best(modes, streamed);
    if (!top) continue;
    const topInc = best(incumbents, streamed);
    const lowestE2e = (xs: readonly ServeRateResult[]) =>
      Math.min(...xs.filter((x) => x.summary.completed > 0).map((x) => x.summary.e2eMs.median));
    const auto = modes.find((r) => r.mode === "auto");
    const fixed = best(
      modes.filter((r) => r.mode !== "auto"),
      streamed,
    );
    const e2eRatio = topInc ? lowestE2e(modes) / lowestE2e(incumbents) : null;
    out.push({
      round: rows[0]!.round ?? 1,
      rate: rows[0]!.rate,
      bestMode: top.system,
      bestModeTokensPerSecond: streamed(top),
      bestIncumbent: topInc?.system ?? null,
      bestIncumbentTokensPerSecond: topInc ? streamed(topInc) : null,
      throughputRatio: topInc && streamed(topInc) > 0 ? streamed(top) / streamed(topInc) : null,
      e2eRatio: e2eRatio !== null && Number.isFinite(e2eRatio) ? e2eRatio : null,
      autoVsBestFixed: auto && fixed && streamed(fixed) > 0 ? streamed(auto) / streamed(fixed) : null,
    });
  }
  return out;
}

export interface RatioSpread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function spread(xs: readonly number[]): RatioSpread | null {
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

export interface RateComparison {
  rate: number | "inf";
  throughputRatio: RatioSpread | null;
  e2eRatio: RatioSpread | null;
  autoVsBestFixed: RatioSpread | null;
}

/** Per rate, each ratio's median and range over the rounds. */
export function summarizeComparisons(comparisons: readonly ServeComparison[]): RateComparison[] {
  const rates = [...new Set(comparisons.map((c) => c.rate))];
  return rates.map((rate) => {
    const cs = comparisons.filter((c) => c.rate === rate);
    const of = (f: (c: ServeComparison) => number | null) => spread(cs.map(f).filter((x): x is number => x !== null));
    return {
      rate,
      throughputRatio: of((c) => c.throughputRatio),
      e2eRatio: of((c) => c.e2eRatio),
      autoVsBestFixed: of((c) => c.autoVsBestFixed),
    };
  });
}

/** The per-rate summary as text lines (nothing when no ratio could be formed). */
export function formatComparisons(summary: readonly RateComparison[]): string {
  const cell = (s: RatioSpread | null) =>
    s === null
      ? "-"
      : s.n === 1
        ? `${s.median.toFixed(2)}x`
        : `${s.median.toFixed(2)}x [${s.min.toFixed(2)}-${s.max.toFixed(2)}]`;
  const rows = summary
    .filter((s) => s.throughputRatio || s.e2eRatio || s.autoVsBestFixed)
    .map((s) => [String(s.rate), cell(s.throughputRatio), cell(s.e2eRatio), cell(s.autoVsBestFixed)]);
  if (rows.length === 0) return "";
  const n = Math.max(
    ...summary.flatMap((s) => [s.throughputRatio?.n ?? 0, s.e2eRatio?.n ?? 0, s.autoVsBestFixed?.n ?? 0]),
  );
  const head = [
    "rate",
    "best mode ÷ best llama-server (tok/s)",
    "lowest median E2EL ÷ llama-server's",
    "auto ÷ best fixed mode",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [`side by side${n > 1 ? ` (median over ${n} rounds [min-max])` : ""}:`, line(head), ...rows.map(line)].join(
    "\n",
  );
}
