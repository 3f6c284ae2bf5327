#!/usr/bin/env node
// Markdown tables from a `minedraft bench --json` file (the tables of docs/performance.md):
// throughput per mode, the cost of the work per phase, and what auto chose.
//
//   node scripts/bench-tables.mjs docs/bench/X.json
import { readFileSync } from "node:fs";

const { autoChoiceShares } = await import(new URL("../dist/bench/summarize.js", import.meta.url).href);

const file = process.argv[2];
if (!file) {
  console.error("usage: node scripts/bench-tables.mjs BENCH.json");
  process.exit(2);
}
const b = JSON.parse(readFileSync(file, "utf8"));
const f = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
const pct = (x, d = 1) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(d)}%`);
const ratio = (x) => (x === null || x === undefined ? "-" : `${x.toFixed(2)}x`);
const threads = (m) => {
  const p = m.placement;
  if (m.mode === "ar") return `${p.targetThreads} / -`;
  if (p.threadPlans)
    return (
      `${p.threadPlans.sequential.target}/${p.threadPlans.sequential.draft}` +
      (p.threadPlans.overlapped ? ` or ${p.threadPlans.overlapped.target}/${p.threadPlans.overlapped.draft}` : "")
    );
  return `${p.targetThreads} / ${p.draftThreads}`;
};

const o = b.options;
console.log(
  `${b.models.target.name ?? b.models.target.path} / ${b.models.draft?.name ?? "-"}; batch ${o.batchSize}, k ` +
    `${o.draftTokens}, temperature ${o.temperature}, ${o.promptCount} prompts x ${o.maxTokens} tokens, ` +
    `${o.repeat} measured runs${o.interleave ? ", interleaved" : ""}; ${b.machine.cpuModel}, ` +
    `${b.machine.availableParallelism} cores${b.models.placementNote ? `; ${b.models.placementNote}` : ""}\n`,
);
console.log(
  "| mode | tokens/s (runs) | vs ar | vs sd | acceptance | mean acc. length | hidden drafting | idle " +
    "(orchestration) | threads t/d |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const m of b.modes) {
  const s = m.summary;
  const spec = m.mode !== "ar";
  console.log(
    `| ${m.mode} | ${f(s.tokensPerSecond)} (${m.runs.map((r) => f(r.stats.tokensPerSecond)).join(", ")}) | ` +
      `${ratio(s.speedupVsAr)} | ${ratio(s.speedupVsSd)} | ${spec ? pct(s.acceptanceRate) : "-"} | ` +
      `${spec ? f(s.meanAcceptanceLength, 2) : "-"} | ${spec ? pct(s.hiddenDraftFraction) : "-"} | ` +
      `${pct(s.idleFraction)} | ${threads(m)} |`,
  );
}

console.log(
  "\n| mode | verify alone: tokens → ms (calls) | verify overlapped: tokens → ms (calls) | draft ms/step alone " +
    "| draft ms/step overlapped | step ms (wall/steps) |",
);
console.log("|---|---|---|---|---|---|");
const sizes = (c) =>
  c && c.calls > 0
    ? [...c.bySize]
        .sort((x, y) => y.calls - x.calls)
        .slice(0, 3)
        .map((p) => `${p.tokens}→${f(p.meanMs, 0)} (${p.calls})`)
        .join(", ")
    : "-";
for (const m of b.modes) {
  const p = m.phases;
  if (!p) continue;
  const d = (c) => (c && c.calls > 0 ? f(c.msPerStep) : "-");
  console.log(
    `| ${m.mode} | ${sizes(p.verify.alone)} | ${sizes(p.verify.overlapped)} | ${d(p.draft.alone)} | ` +
      `${d(p.draft.overlapped)} | ${f(p.steps > 0 ? p.wallMs / p.steps : null, 0)} |`,
  );
}

for (const m of b.modes) {
  const a = m.summary.auto;
  if (!a) continue;
  const total = a.decisions.reduce((n, d) => n + d.steps, 0);
  const shares = autoChoiceShares(a.decisions);
  const best = m.summary.speedupVsBestFixed;
  console.log(
    `\nWhat \`${m.mode}\` chose (shares of the ${total} measured steps): ${shares}; ${a.probeSteps} probe ` +
      `steps, ${a.switches} schedule switches; ` +
      `${best === null || best === undefined ? "" : `${ratio(best)} the best fixed mode `}(` +
      `${f(m.summary.tokensPerSecond)} tok/s).`,
  );
}
