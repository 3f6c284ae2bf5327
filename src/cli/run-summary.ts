// Human-readable run statistics and thread placement (generate --stats).
import type { Placement, RunStats } from "../index.js";
import { autoChoiceShares } from "../bench/summarize.js";
import { fixed, percent } from "./format.js";

export function describePlacement(p: Placement): string {
  const target = `target ${p.targetThreads} thread${p.targetThreads === 1 ? "" : "s"} (${p.targetDevice})`;
  if (p.mode === "ar") return `${target}, no draft`;
  if (p.draftDevice === "none") return `${target}, drafts by prompt lookup (no draft model), ${p.sequences} sequences`;
  const draft = `draft ${p.draftThreads} thread${p.draftThreads === 1 ? "" : "s"} (${p.draftDevice})`;
  const o = p.threadPlans?.overlapped;
  // auto switches between its sequential placement (the threads above) and the overlapped one
  const timing =
    p.mode === "auto"
      ? `taking turns${o ? `, or ${o.target} + ${o.draft} threads running concurrently` : ""} (auto picks per step)`
      : p.concurrent
        ? "running concurrently"
        : "taking turns";
  return (
    `${target}, ${draft}, ${timing} on ${p.cores} cores${p.oversubscribed ? " (oversubscribed)" : ""}, ` +
    `${p.sequences} sequences`
  );
}

export function formatRunStats(s: RunStats, placement: Placement): string {
  const lines = [
    `mode ${s.mode}: ${s.requests} request${s.requests === 1 ? "" : "s"}, ${s.generatedTokens} tokens in ` +
      `${fixed(s.wallMs, 0)} ms = ${fixed(s.tokensPerSecond)} tokens/s`,
    `latency: mean E2E ${fixed(s.meanE2eMs, 0)} ms, amortized E2E ${fixed(s.amortizedE2eMs, 0)} ms, mean TTFT ` +
      `${fixed(s.meanTtftMs, 0)} ms`,
  ];
  if (s.mode !== "ar") {
    lines.push(
      `speculation: ${s.acceptedTokens}/${s.draftedTokens} drafts accepted (${percent(s.acceptanceRate)}), mean ` +
        `acceptance length ${fixed(s.meanAcceptanceLength, 2)}, ` +
        `per position ${s.perPositionAcceptance.map((a) => percent(a, 0)).join(" ") || "-"}`,
      `workers: draft busy ${fixed(s.draftMs, 0)} ms, target busy ${fixed(s.verifyMs, 0)} ms, overlap ` +
        `${fixed(s.overlapMs, 0)} ms (${percent(s.hiddenDraftFraction)} of drafting hidden), idle ` +
        `${fixed(s.idleMs, 0)} ms`,
    );
  }
  const ngram = s.draftSources?.ngram;
  if (ngram) {
    lines.push(
      `prompt lookup: ${ngram.hits}/${ngram.lookups} lookups found a match; ${ngram.acceptedTokens}/` +
        `${ngram.draftedTokens} of its drafts accepted (${percent(ngram.acceptanceRate)})`,
    );
  }
  const model = s.draftSources?.model;
  if (model) {
    lines.push(
      `draft model (where lookup found nothing): ${model.acceptedTokens}/${model.draftedTokens} drafts accepted ` +
        `(${percent(model.acceptanceRate)})`,
    );
  }
  if (s.auto) {
    const total = s.auto.decisions.reduce((n, d) => n + d.steps, 0);
    lines.push(
      `auto: ${total} steps: ${autoChoiceShares(s.auto.decisions, { top: 5 })}; ${s.auto.probeSteps} probe ` +
        `steps, ${s.auto.switches} schedule switches`,
    );
  }
  lines.push(`placement: ${describePlacement(placement)}`);
  if (placement.deviceNote) lines.push(`devices: ${placement.deviceNote}`);
  if (placement.kvUnified) {
    const kv = (unified: boolean) => (unified ? "one buffer for all sequences" : "one stream per sequence");
    lines.push(
      `kv cache: target ${kv(placement.kvUnified.target)}` +
        (placement.draftDevice === "none" ? "" : `, draft ${kv(placement.kvUnified.draft)}`),
    );
  }
  return lines.join("\n");
}
