// The benchmark's text output: setup lines and the comparison table.
import type { BenchReport, ModelReport } from "../bench/types.js";
import { autoChoiceShares, threadsLabel } from "../bench/summarize.js";
import { bytes, count, fixed, percent, ratio, textTable } from "./format.js";

function modelLine(role: string, m: ModelReport | null): string {
  return m ? `${role} ${m.path} (${m.quantization}, ${count(m.nParams)} params, ${bytes(m.fileSize)})` : `${role} none`;
}

export function formatBenchSetup(report: BenchReport): string {
  const o = report.options;
  return [
    modelLine("target:", report.models.target),
    modelLine("draft: ", report.models.draft),
    `${o.promptCount} prompts (${o.promptSource}), batch size ${o.batchSize}, k ${o.draftTokens}, ` +
      `temperature ${o.temperature}, up to ${o.maxTokens} tokens each; ` +
      `1 warm-up + ${o.repeat} measured run${o.repeat === 1 ? "" : "s"} per mode; ` +
      `${report.machine.availableParallelism} cores`,
  ].join("\n");
}

export function formatBenchTable(report: BenchReport): string {
  const header = [
    "mode",
    "tok/s",
    "E2EL ms",
    "amort. E2EL ms",
    "TTFT ms",
    "accept",
    "acc. len",
    "hidden draft",
    "vs sd",
    "vs ar",
    "threads t/d",
  ];
  const rows = report.modes.map((m) => {
    const s = m.summary;
    const spec = m.mode !== "ar";
    return [
      m.mode,
      fixed(s.tokensPerSecond),
      fixed(s.meanE2eMs, 0),
      fixed(s.amortizedE2eMs, 0),
      fixed(s.meanTtftMs, 0),
      spec ? percent(s.acceptanceRate) : "-",
      spec ? fixed(s.meanAcceptanceLength, 2) : "-",
      spec ? percent(s.hiddenDraftFraction) : "-",
      ratio(s.speedupVsSd),
      ratio(s.speedupVsAr),
      threadsLabel(m, "|"),
    ];
  });
  return [textTable(header, rows), ...benchNotes(report)].join("\n");
}

/** One line per auto choice share, TETRIS selection, and the orchestration overhead. */
export function benchNotes(report: BenchReport): string[] {
  const lines: string[] = [];
  for (const m of report.modes) {
    const s = m.summary;
    if (s.auto) {
      const total = s.auto.decisions.reduce((n, d) => n + d.steps, 0);
      const shares = autoChoiceShares(s.auto.decisions, { top: 5 });
      lines.push(
        `${m.mode} decisions over ${total} steps: ${shares}; ${s.auto.probeSteps} probe steps, ` +
          `${s.auto.switches} schedule switches` +
          (s.speedupVsBestFixed !== null ? `; ${ratio(s.speedupVsBestFixed)} the best fixed mode` : "") +
          (s.auto.model.overlapBound
            ? "; overlap never measured: it could reach at most " +
              `${fixed(s.auto.model.overlapBound.tokensPerSecond, 1)} tok/s`
            : ""),
      );
    }
    if (s.tetris) {
      const t = s.tetris;
      lines.push(
        `${m.mode}: e=${t.extra}, verified ` +
          `${percent(t.draftedTokens > 0 ? t.verifiedTokens / t.draftedTokens : 0, 0)} of the drafted tokens, ` +
          `acceptance of verified ${percent(t.acceptanceRate)}, ${fixed(t.acceptedPerVerify, 2)} accepted per ` +
          "request-verification",
      );
    }
  }
  // where the models ran (loaded once for every mode)
  if (report.models.placementNote) lines.push(`devices: ${report.models.placementNote}`);
  const idle = report.modes.map((m) => `${m.mode} ${percent(m.summary.idleFraction)}`).join(", ");
  lines.push(`both workers idle (orchestration, synchronisation; % of wall time): ${idle}`);
  return lines.length > 0 ? ["", ...lines] : [];
}
