// Runs a benchmark with a progress bar on a TTY, prints the setup and the table, and writes the
// optional JSON and HTML files (atomically). Shared by `bench` and `demo`.
import path from "node:path";
import { renderHtmlReport } from "../bench/html-report.js";
import { runBench } from "../bench/runner.js";
import type { BenchConfig, BenchReport } from "../bench/types.js";
import { writeFileAtomic } from "./atomic-write.js";
import { formatBenchSetup, formatBenchTable } from "./bench-table.js";
import { createProgressBar } from "./progress.js";

export interface BenchOutputs {
  json?: string;
  report?: string;
}

/** `signal` (Ctrl-C) aborts the running requests; the engine closes and nothing is written. */
export async function runBenchSession(
  config: BenchConfig,
  outputs: BenchOutputs,
  signal: AbortSignal,
): Promise<BenchReport> {
  const bar = createProgressBar("bench");
  let report: BenchReport;
  bar.update(0, "loading models");
  try {
    report = await runBench(config, {
      signal,
      onProgress: (p) =>
        bar.update(p.done / p.total, `${p.mode} ${p.run === 0 ? "warm-up" : `run ${p.run}/${p.repeat}`}`),
    });
  } finally {
    bar.done();
  }
  signal.throwIfAborted();
  process.stdout.write(`${formatBenchSetup(report)}\n\n${formatBenchTable(report)}\n`);
  for (const w of report.load?.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
  if (outputs.json) {
    await writeFileAtomic(outputs.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nJSON written to ${path.resolve(outputs.json)}\n`);
  }
  if (outputs.report) {
    await writeFileAtomic(outputs.report, renderHtmlReport(report));
    process.stdout.write(`${outputs.json ? "" : "\n"}HTML report written to ${path.resolve(outputs.report)}\n`);
  }
  return report;
}
