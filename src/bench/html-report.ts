// The benchmark as one self-contained HTML page: inline CSS and SVG only (no scripts, no network).
// Shows throughput per mode and, per mode, a timeline of a few decode steps with one lane for the
// draft worker and one for the target worker, so psd's overlap (or sd's turn-taking) is visible.
import type { TraceEvent } from "../index.js";
import { threadsLabel } from "./summarize.js";
import { esc, niceTicks, r2, tickLabel } from "./svg.js";
import type { BenchReport, ModeResult, ModelReport, Timeline } from "./types.js";

const KIND_COLORS: Record<TraceEvent["kind"], string> = { draft: "#4e79a7", verify: "#e8772e", prefill: "#9a9a9a" };
const MODE_COLORS: Record<string, string> = {
  ar: "#8c8c8c",
  sd: "#4e79a7",
  psd: "#2a9d5b",
  auto: "#b07aa1",
  "psd-tetris": "#59a14f",
  "sd-ngram": "#76b7b2",
  "auto-ngram": "#edc948",
};
const OVERLAP_COLOR = "#2a9d5b";

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 980px; \
padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; \
padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 4px; }
.meta, .caption { color: #555; } .warning { background: #fff4e0; border-left: 4px solid #e8a33d; padding: 6px 10px; } \
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 3px 10px; border-bottom: 1px solid #eee; \
text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f6f6f6; } .kv td, .kv th { text-align: left; } \
code { font-size: 12px; }
svg text { font: 12px system-ui, sans-serif; fill: #333; } .legend span { display: inline-block; width: 12px; \
height: 12px; margin: 0 4px -2px 12px; }
`;

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}
function pct(n: number): string {
  return Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : "-";
}
function times(n: number | null): string {
  return n === null || !Number.isFinite(n) ? "-" : `${n.toFixed(2)}x`;
}

/** Horizontal bars of mean tokens/s per mode, with the min..max of the runs as a whisker. */
export function throughputSvg(modes: readonly ModeResult[]): string {
  const width = 760;
  const left = 60;
  const right = 90;
  const rowH = 34;
  const top = 10;
  const plotW = width - left - right;
  const max = Math.max(...modes.map((m) => m.summary.tokensPerSecondMax), 1e-9);
  const ticks = niceTicks(max, 6);
  const scaleMax = Math.max(max, ticks[ticks.length - 1]!);
  const x = (v: number) => left + (v / scaleMax) * plotW;
  const axisY = top + modes.length * rowH + 4;
  const height = axisY + 44;
  const parts: string[] = [];
  for (const t of ticks) {
    parts.push(`<line x1="${r2(x(t))}" y1="${top}" x2="${r2(x(t))}" y2="${axisY}" stroke="#eee"/>`);
    parts.push(`<text x="${r2(x(t))}" y="${axisY + 16}" text-anchor="middle">${esc(tickLabel(t))}</text>`);
  }
  modes.forEach((m, i) => {
    const y = top + i * rowH + 6;
    const s = m.summary;
    parts.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-weight="bold">${esc(m.mode)}</text>`);
    parts.push(
      `<rect class="bar" data-mode="${esc(m.mode)}" x="${left}" y="${y}" ` +
        `width="${r2(Math.max(1, x(s.tokensPerSecond) - left))}" height="22" ` +
        `fill="${MODE_COLORS[m.mode] ?? "#777"}">` +
        "<title>" +
        `${esc(
          `${m.mode}: ${fmt(s.tokensPerSecond)} tokens/s (runs ` +
            `${fmt(s.tokensPerSecondMin)}..${fmt(s.tokensPerSecondMax)})`,
        )}` +
        "</title></rect>",
    );
    if (m.runs.length > 1) {
      parts.push(
        `<line x1="${r2(x(s.tokensPerSecondMin))}" y1="${y + 11}" x2="${r2(x(s.tokensPerSecondMax))}" ` +
          `y2="${y + 11}" stroke="#222" stroke-width="1.5"/>`,
      );
    }
    parts.push(
      `<text x="${r2(x(s.tokensPerSecondMax) + 6)}" y="${y + 15}">${esc(`${fmt(s.tokensPerSecond)} tok/s`)}</text>`,
    );
  });
  parts.push(`<line x1="${left}" y1="${axisY}" x2="${left + plotW}" y2="${axisY}" stroke="#999"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${axisY + 36}" text-anchor="middle">throughput (tokens/s)</text>`);
  return (
    `<svg class="throughput" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ` +
    `${width} ${height}" role="img" aria-label="throughput per mode">${parts.join("")}</svg>`
  );
}

/** Time ranges where both workers are busy. */
export function overlapIntervals(events: readonly TraceEvent[]): [number, number][] {
  const lane = (w: TraceEvent["worker"]) =>
    events.filter((e) => e.worker === w).map((e) => [e.start, e.end] as [number, number]);
  const out: [number, number][] = [];
  for (const [a0, a1] of lane("draft")) {
    for (const [b0, b1] of lane("target")) {
      const s = Math.max(a0, b0);
      const e = Math.min(a1, b1);
      if (e > s) out.push([s, e]);
    }
  }
  return out.sort((p, q) => p[0] - q[0]);
}

/** Two lanes (draft, target) over the timeline window, a "both busy" strip, and an x axis in ms. */
export function timelineSvg(mode: string, timeline: Timeline): string {
  const width = 900;
  const left = 92;
  const right = 20;
  const plotW = width - left - right;
  const laneH = 34;
  const lanes = [
    { worker: "draft" as const, y: 12 },
    { worker: "target" as const, y: 12 + laneH + 10 },
  ];
  const overlapY = lanes[1]!.y + laneH + 8;
  const axisY = overlapY + 14;
  const height = axisY + 44;
  const span = Math.max(timeline.endMs - timeline.startMs, 1e-6);
  const x = (t: number) => left + ((t - timeline.startMs) / span) * plotW;
  const parts: string[] = [];

  const ticks = niceTicks(span, 8);
  for (const t of ticks) {
    const tx = x(timeline.startMs + t);
    parts.push(`<line x1="${r2(tx)}" y1="8" x2="${r2(tx)}" y2="${axisY}" stroke="#eee"/>`);
    parts.push(`<text x="${r2(tx)}" y="${axisY + 16}" text-anchor="middle">${esc(tickLabel(t))}</text>`);
  }
  for (const lane of lanes) {
    const events = timeline.events.filter((e) => e.worker === lane.worker);
    const rects = events.map((e) => {
      const w = Math.max(0.5, x(e.end) - x(e.start));
      const sub = e.batch >= 0 ? `, sub-batch ${e.batch}` : "";
      const choice = e.decision
        ? `, auto: ${e.decision.schedule} k=${e.decision.k}${e.decision.probe ? " (probe)" : ""}`
        : "";
      const tip =
        `${e.worker} ${e.kind}, step ${e.step}${sub}${choice}, requests ${e.requests.join(",")}: ` +
        `${fmt(e.end - e.start, 2)} ms`;
      // psd's second sub-batch is drawn lighter so the alternation of the two sub-batches shows
      const opacity = e.batch === 1 ? 0.6 : 1;
      const label =
        w > 26
          ? `<text x="${r2(x(e.start) + w / 2)}" y="${lane.y + laneH / 2 + 4}" text-anchor="middle" fill="#fff" ` +
            `style="fill:#fff">${esc(e.batch >= 0 ? `b${e.batch}` : e.kind[0]!)}</text>`
          : "";
      return (
        `<rect class="event ${e.kind}" x="${r2(x(e.start))}" y="${lane.y + 3}" width="${r2(w)}" ` +
        `height="${laneH - 6}" fill="${KIND_COLORS[e.kind]}" fill-opacity="${opacity}"><title>${esc(tip)}</title>` +
        `</rect>${label}`
      );
    });
    const empty =
      events.length === 0
        ? `<text x="${left + 8}" y="${lane.y + laneH / 2 + 4}" fill="#888" ` +
          `style="fill:#888">${lane.worker === "draft" && mode === "ar" ? "no draft model in ar" : "idle"}</text>`
        : "";
    parts.push(
      `<g class="lane" data-worker="${lane.worker}"><rect x="${left}" y="${lane.y}" width="${plotW}" ` +
        `height="${laneH}" fill="#f7f7f7"/>` +
        `<text x="${left - 8}" y="${lane.y + laneH / 2 + 4}" text-anchor="end" ` +
        `font-weight="bold">${lane.worker}</text>${rects.join("")}${empty}</g>`,
    );
  }
  const both = overlapIntervals(timeline.events);
  parts.push(
    `<text x="${left - 8}" y="${overlapY + 6}" text-anchor="end" fill="#666" style="fill:#666">both busy</text>`,
  );
  parts.push(
    '<g class="overlap">' +
      `${both
        .map(
          ([s, e]) =>
            `<rect x="${r2(x(s))}" y="${overlapY}" width="${r2(Math.max(0.5, x(e) - x(s)))}" height="7" ` +
            `fill="${OVERLAP_COLOR}"/>`,
        )
        .join("")}` +
      "</g>",
  );
  parts.push(`<line x1="${left}" y1="${axisY}" x2="${left + plotW}" y2="${axisY}" stroke="#999"/>`);
  parts.push(
    `<text x="${left + plotW / 2}" y="${axisY + 36}" text-anchor="middle">time (ms) from ` +
      `${esc(fmt(timeline.startMs, 1))} ms after the engine started</text>`,
  );
  return (
    `<svg class="timeline" data-mode="${esc(mode)}" xmlns="http://www.w3.org/2000/svg" width="${width}" ` +
    `height="${height}" viewBox="0 0 ${width} ${height}" role="img" ` +
    `aria-label="${esc(`${mode} timeline`)}">${parts.join("")}</svg>`
  );
}

function summaryTable(modes: readonly ModeResult[]): string {
  const head = [
    "mode",
    "tokens/s",
    "mean E2EL ms",
    "amortized E2EL ms",
    "mean TTFT ms",
    "acceptance",
    "mean acc. length",
    "hidden draft",
    "vs sd",
    "vs ar",
    "threads target/draft",
  ];
  const rows = modes.map((m) => {
    const s = m.summary;
    const spec = m.mode !== "ar";
    return [
      m.mode,
      fmt(s.tokensPerSecond),
      fmt(s.meanE2eMs, 0),
      fmt(s.amortizedE2eMs, 0),
      fmt(s.meanTtftMs, 0),
      spec ? pct(s.acceptanceRate) : "-",
      spec ? fmt(s.meanAcceptanceLength, 2) : "-",
      spec ? pct(s.hiddenDraftFraction) : "-",
      times(s.speedupVsSd),
      times(s.speedupVsAr),
      threadsLabel(m),
    ];
  });
  return (
    `<table class="summary"><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>` +
    `${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("")}</table>`
  );
}

/** auto: what it chose (shares of steps over the measured runs) and its cost model's predictions. */
function autoSection(m: ModeResult): string {
  const a = m.summary.auto;
  if (!a) return "";
  const rows = a.decisions
    .map(
      (d) =>
        `<tr><td>${esc(d.schedule)}</td><td>${d.k}</td><td>${d.threads.target}/${d.threads.draft}</td><td>` +
        `${d.steps}</td><td>${pct(d.share)}</td></tr>`,
    )
    .join("");
  const preds = a.model.predictions
    .slice(0, 8)
    .map(
      (p) =>
        `<tr><td>${esc(p.schedule)}</td><td>${p.k}</td><td>${fmt(p.tokensPerSecond)}</td><td>` +
        `${fmt(p.stepMs, 1)}</td><td>${fmt(p.tokensPerVerify, 2)}</td></tr>`,
    )
    .join("");
  const line = (name: string, f: { a: number; b: number } | null, unit: string) =>
    f ? `${name}: ${fmt(f.a, 2)} + ${fmt(f.b, 3)} ms x ${unit}` : `${name}: not measured`;
  const model = [
    line("verify, sequential", a.model.verify.sequential, "tokens"),
    a.model.verify.overlapped === null && a.model.overlapBound
      ? "verify, overlapped: not measured (the overlap could reach at most " +
        `${fmt(a.model.overlapBound.tokensPerSecond)} tok/s, at k = ${a.model.overlapBound.k})`
      : line("verify, overlapped", a.model.verify.overlapped, "tokens"),
    line(`draft call (${a.model.batchSize} requests), sequential`, a.model.draft.sequential, "steps"),
    line(`draft call (${a.model.batchSize} requests), overlapped`, a.model.draft.overlapped, "steps"),
    `acceptance per position: ${a.model.acceptance.map((x) => pct(x)).join(" ")}`,
  ];
  const vs = m.summary.speedupVsBestFixed;
  return (
    `<h3>${esc(m.mode)}: decisions</h3><p class="caption">` +
    `${esc(
      `${a.probeSteps} probe steps, ${a.switches} schedule switches over the measured ` +
        `runs${vs !== null ? `; throughput ${times(vs)} the best fixed mode of this bench` : ""}.`,
    )}` +
    "</p>" +
    '<table class="auto"><tr><th>schedule</th><th>k</th><th>threads ' +
    `t/d</th><th>steps</th><th>share</th></tr>${rows}</table>` +
    `<p class="caption">Cost model at the end of the last run: ${esc(model.join("; "))}.</p>` +
    '<table class="predictions"><tr><th>schedule</th><th>k</th><th>predicted tok/s</th><th>step ' +
    `ms</th><th>tokens / request / verify</th></tr>${preds}</table>`
  );
}

function tetrisLine(m: ModeResult): string {
  const t = m.summary.tetris;
  if (!t) return "";
  return `<p class="caption">${esc(
    `TETRIS e=${t.extra}: verified ${pct(t.draftedTokens > 0 ? t.verifiedTokens / t.draftedTokens : 0)} of the ` +
      `drafted tokens; acceptance of the verified ones ${pct(t.acceptanceRate)}; ${fmt(t.acceptedPerVerify, 2)} ` +
      "accepted per request-verification.",
  )}</p>`;
}

function modelRow(role: string, m: ModelReport | null): string {
  if (!m) return `<tr><td>${role}</td><td colspan="5">none</td></tr>`;
  return (
    `<tr><td>${role}</td><td><code>${esc(m.path)}</code></td><td>${esc(m.quantization)}</td><td>` +
    `${esc((m.nParams / 1e6).toFixed(1))}M params</td><td>${esc((m.fileSize / 2 ** 20).toFixed(1))} ` +
    `MiB</td><td>${esc(m.device)}</td></tr>`
  );
}

function timelineSection(m: ModeResult): string {
  const s = m.summary;
  const p = m.placement;
  const caption =
    m.mode === "ar"
      ? `autoregressive: the target decodes one token per request per step; target threads ${p.targetThreads}.`
      : (m.mode === "auto"
          ? "auto: per step, draft and target take turns or run concurrently on two sub-batches"
          : p.concurrent
            ? "draft and target run concurrently on two sub-batches"
            : "draft and target take turns") +
        "; " +
        `${pct(s.hiddenDraftFraction)} of drafting hidden behind verification (mean over runs); threads ` +
        `target/draft ${threadsLabel(m)}; both workers idle ${pct(s.idleFraction)} of the time.`;
  return (
    `<h3>${esc(m.mode)}</h3><p class="caption">${esc(caption)}</p>` +
    `${tetrisLine(m)}${timelineSvg(m.mode, m.timeline)}`
  );
}

export function renderHtmlReport(report: BenchReport): string {
  const o = report.options;
  const mach = report.machine;
  const legend =
    `<p class="legend">` +
    (Object.entries(KIND_COLORS) as [string, string][])
      .map(([k, c]) => `<span style="background:${c}"></span>${esc(k)}`)
      .join("") +
    `<span style="background:${OVERLAP_COLOR}"></span>both workers busy; b0/b1 = psd sub-batch (b1 lighter)</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>minedraft benchmark: ${esc(report.modes.map((m) => m.mode).join(" / "))}</title><style>${STYLE}</style></head>
<body>
<h1>minedraft benchmark</h1>
<p class="meta">${esc(report.createdAt)} · minedraft ${esc(report.minedraftVersion)} \
· ${esc(mach.cpuModel)}, ${mach.availableParallelism} cores · \
${esc(`${mach.os.platform} ${mach.os.release} ${mach.os.arch}`)} · node ${esc(mach.node)} \
· ${esc(fmt(report.durationMs / 1000, 1))} s</p>
${(report.load?.warnings ?? []).map((w) => `<p class="warning">${esc(`Warning: ${w}.`)}</p>`).join("\n")}
<h2>Setup</h2>
<table class="kv"><tr><th>role</th><th>path</th><th>type</th><th>size</th><th>file</th><th>device</th></tr>\
${modelRow("target", report.models.target)}${modelRow("draft", report.models.draft)}</table>\
${report.models.placementNote ? `<p class="caption">${esc(`Devices: ${report.models.placementNote}.`)}</p>` : ""}
<p>${esc(
    `${o.promptCount} prompts (${o.promptSource}) · batch size ${o.batchSize} · k ${o.draftTokens} · temperature ` +
      `${o.temperature} · up to ${o.maxTokens} tokens per prompt · 1 warm-up run (${o.warmupMaxTokens} tokens) + ` +
      `${o.repeat} measured run${o.repeat === 1 ? "" : "s"} per mode · seed ${o.seed}`,
  )}</p>
<h2>Throughput</h2>
${throughputSvg(report.modes)}
${summaryTable(report.modes)}
<p class="caption">Tokens/s: medians over the measured runs (the rest: means); \
speedups are ratios of tokens/s measured in this bench. E2EL: end-to-end latency per request; \
amortized E2EL: (last end − first start) / requests.</p>
${report.modes.map(autoSection).join("\n")}
<h2>Timelines</h2>
<p class="caption">${esc(`A few decode steps from the middle of each mode's last run.`)}</p>
${legend}
${report.modes.map(timelineSection).join("\n")}
</body></html>
`;
}
