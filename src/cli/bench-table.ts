// The benchmark's text output: setup lines and the comparison table.
import type { BenchReport, ModelReport } from "../bench/types.js";
import { bytes, count, fixed, percent, ratio, textTable } from "./format.js";

function modelLine(role: string, m: ModelReport | null): string {
  return m ? `${role} ${m.path} (${m.quantization}, ${count(m.nParams)} params, ${bytes(m.fileSize)})` : `${role} none`;
}

export function formatBenchSetup(report: BenchReport): string {
  const o = report.options;
  return [
    modelLine("target:", report.models.target),
    modelLine("draft: ", report.models.draft),
    `${o.promptCount} prompts (${o.promptSource}), batch size ${o.batchSize}, k ${o.draftTokens}, temperature ${o.temperature}, ` +
      `up to ${o.maxTokens} tokens each; 1 warm-up + ${o.repeat} measured run${o.repeat === 1 ? "" : "s"} per mode; ${report.machine.availableParallelism} cores`,
  ].join("\n");
}

export function formatBenchTable(report: BenchReport): string {
  const header = ["mode", "tok/s", "E2EL ms", "amort. E2EL ms", "TTFT ms", "accept", "acc. len", "hidden draft", "vs sd", "vs ar", "threads t/d"];
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
      `${m.placement.targetThreads}/${spec ? m.placement.draftThreads : "-"}`,
    ];
  });
  return textTable(header, rows);
}
