// The HTML report of `minedraft bench serve`: throughput-vs-rate and latency-vs-rate lines (one per
// system: minedraft's modes, llama-server's configurations), and the table of every figure. One
// self-contained page (inline SVG, no scripts).
import { formatComparisons, median, summarizeComparisons, type ServeComparison } from "./serve-compare.js";
import type { ServeLoadSummary } from "./serve-load.js";
import { esc, niceTicks, r2, tickLabel } from "./svg.js";

export interface ServeRateResult {
  /** 1-based: with --rounds, each system ran once per round */
  round?: number;
  system: string;
  mode: string | null;
  rate: number | "inf";
  summary: ServeLoadSummary;
  spec: { drafts: number; draftTokens: number; acceptedTokens: number; acceptanceRate: number };
  /**
   * times the engine re-placed its threads over this rate's requests (other work held cores: fewer threads per
   * model, see core-governor.ts); null where the system does not say (llama-server)
   */
  coreLimitChanges: number | null;
}

export interface BenchServeReport {
  schema: string;
  createdAt: string;
  machine: { cores: number; cpu: string };
  options: Record<string, unknown>;
  results: ServeRateResult[];
  /** side-by-side ratios per round and rate (serve-compare.ts) */
  comparisons?: ServeComparison[];
}

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#17becf",
  "#bcbd22",
];
const W = 560;
const H = 300;
const PAD = { left: 64, right: 16, top: 16, bottom: 40 };

/** One line per system over the rates (categories, in run order). */
function lineChart(results: readonly ServeRateResult[], title: string, value: (s: ServeLoadSummary) => number): string {
  const rates = [...new Set(results.map((r) => String(r.rate)))];
  const systems = [...new Set(results.map((r) => r.system))];
  const max = Math.max(1e-9, ...results.map((r) => value(r.summary)));
  const ticks = niceTicks(max * 1.05);
  const top = ticks.at(-1)!;
  const x = (i: number) => PAD.left + (rates.length === 1 ? 0.5 : i / (rates.length - 1)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const grid = ticks
    .map(
      (t) =>
        `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${r2(y(t))}" y2="${r2(y(t))}" stroke="#eee"/><text ` +
        `x="${PAD.left - 6}" y="${r2(y(t) + 4)}" text-anchor="end">${esc(tickLabel(t))}</text>`,
    )
    .join("");
  const xLabels = rates
    .map((rate, i) => `<text x="${r2(x(i))}" y="${H - PAD.bottom + 16}" text-anchor="middle">${esc(rate)}</text>`)
    .join("");
  const lines = systems
    .map((system, si) => {
      const points = rates
        .map((rate, i) => {
          // over several rounds, the median of the rounds
          const vs = results.filter((q) => q.system === system && String(q.rate) === rate).map((q) => value(q.summary));
          return vs.length > 0 ? `${r2(x(i))},${r2(y(median(vs)))}` : null;
        })
        .filter((p): p is string => p !== null);
      const color = COLORS[si % COLORS.length]!;
      return (
        `<polyline class="series" data-system="${esc(system)}" fill="none" stroke="${color}" stroke-width="2" ` +
        `points="${points.join(" ")}"/>` +
        points.map((p) => `<circle cx="${p.split(",")[0]}" cy="${p.split(",")[1]}" r="3" fill="${color}"/>`).join("")
      );
    })
    .join("");
  const legend = systems
    .map((s, i) => `<span style="color:${COLORS[i % COLORS.length]}">■</span> ${esc(s)}`)
    .join(" &nbsp; ");
  return (
    `<figure><svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ` +
    `font-size="11">${grid}${xLabels}<text x="${(W + PAD.left) / 2}" y="${H - 6}" text-anchor="middle">requests ` +
    `per second (inf: all at once)</text>${lines}</svg><figcaption>${esc(title)}<br>${legend}</figcaption>` +
    "</figure>"
  );
}

/** The columns of the results table (the CLI's text table and the report's HTML one). */
export const SERVE_TABLE_HEAD = [
  "system",
  "rate",
  "req/s",
  "out tok/s",
  "TTFT med",
  "TTFT p99",
  "TPOT med",
  "ITL med",
  "E2EL med",
  "E2EL p99",
  "amort. E2EL",
  "accept",
  "failed",
];

/** One row of the results table per system and rate (latencies in ms). */
export function serveTableRows(results: readonly ServeRateResult[]): string[][] {
  const f = (n: number, d = 0) => n.toFixed(d);
  const rounds = results.some((r) => (r.round ?? 1) > 1);
  return results.map((r) => {
    const s = r.summary;
    const accept = r.mode === null || r.mode === "ar" ? "-" : `${f(r.spec.acceptanceRate * 100, 1)}%`;
    return [
      rounds ? `${r.system} #${r.round ?? 1}` : r.system,
      String(r.rate),
      f(s.requestsPerSecond, 2),
      f(s.outputTokensPerSecond, 1),
      f(s.ttftMs.median),
      f(s.ttftMs.p99),
      f(s.tpotMs.median, 1),
      f(s.itlMs.median, 1),
      f(s.e2eMs.median),
      f(s.e2eMs.p99),
      f(s.amortizedE2eMs),
      accept,
      String(s.failed),
    ];
  });
}

function table(results: readonly ServeRateResult[]): string {
  const cells = (row: readonly string[], tag: string) => row.map((c) => `<${tag}>${esc(c)}</${tag}>`).join("");
  return `<table><tr>${cells(SERVE_TABLE_HEAD, "th")}</tr>${serveTableRows(results)
    .map((r) => `<tr>${cells(r, "td")}</tr>`)
    .join("")}</table>`;
}

/** The side-by-side ratios (per rate: median and range over the rounds), as text under the table. */
function sideBySide(comparisons: readonly ServeComparison[]): string {
  const text = formatComparisons(summarizeComparisons(comparisons));
  return text ? `<pre>${esc(text)}</pre>` : "";
}

export function renderServeReport(report: BenchServeReport): string {
  const o = report.options;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>minedraft bench serve</title><style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; } \
figure { display: inline-block; margin: 0 24px 24px 0; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; } \
th:first-child, td:first-child { text-align: left; }
.meta, figcaption { color: #555; }
</style></head><body>
<h1>minedraft bench serve</h1>
<p class="meta">${esc(report.createdAt)} · ${esc(report.machine.cpu)}, ${report.machine.cores} \
cores · ${esc(
    `${String(o.numPrompts)} requests of up to ${String(o.maxTokens)} tokens per rate, greedy, seed ` +
      `${String(o.seed)}`,
  )}</p>
<p class="meta">${esc(`target ${String(o.model)}${o.draft ? `, draft ${String(o.draft)}` : ""}`)}</p>
${lineChart(report.results, "output tokens per second", (s) => s.outputTokensPerSecond)}
${lineChart(report.results, "median end-to-end latency (ms)", (s) => s.e2eMs.median)}
${table(report.results)}
${sideBySide(report.comparisons ?? [])}
<p class="meta">Latencies in ms. TTFT: time to first token; TPOT: (E2EL − TTFT) / (tokens − 1) per request; \
ITL: gaps between streamed chunks; amortized E2EL: (last end − first send) / requests.</p>
</body></html>
`;
}
