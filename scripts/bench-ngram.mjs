#!/usr/bin/env node
// Prompt lookup (n-gram) drafts against ar, side by side in one process: one request at a time, a
// workload whose output repeats its context (lookup finds matches) and one whose output is new text.
//   node scripts/bench-ngram.mjs MODEL_DIR OUT.json [tokens] [rounds]   (after npx tsc; uses MODEL_DIR/target.gguf only)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createEngine } from "../dist/index.js";

const [dir, outFile, tokensArg, roundsArg] = process.argv.slice(2);
const tokens = Number(tokensArg ?? 96);
const rounds = Number(roundsArg ?? 2);
const target = path.join(dir, "target.gguf");
const PASSAGE =
  "The committee met on Tuesday to review the budget. After a long discussion, the members agreed to " +
  "postpone the vote until the next meeting, when the final figures from the finance office will be available.";
const WORKLOADS = {
  // the answer copies the prompt's text: lookup finds what follows
  copy: [
    `Repeat the following text exactly.\nText: ${PASSAGE}\nRepeated text: ${PASSAGE}\nRepeated text again:`,
    `def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n    return a * b\n\ndef div(a, b):\n`,
  ],
  // new text: little to look up
  novel: ["Once upon a time, in a small village,", "Write a short poem about the sea:"],
};
const CONFIGS = [
  { name: "ar", opts: { mode: "ar" } },
  { name: "sd ngram k4", opts: { draft: { ngram: { maxN: 3 } }, draftTokens: 4 } },
  { name: "sd ngram k8", opts: { draft: { ngram: { maxN: 3 } }, draftTokens: 8 } },
];
const rows = [];
for (let round = 0; round < rounds; round++) {
  for (const [workload, prompts] of Object.entries(WORKLOADS)) {
    for (const c of CONFIGS) {
      const engine = await createEngine({ batchSize: 1, contextSize: 1024, target: { model: target }, ...c.opts });
      try {
        await engine.generate("warm up", { maxTokens: 4 });
        for (const prompt of prompts) {
          engine.resetStats();
          const t0 = performance.now();
          const r = await engine.generate(prompt, { maxTokens: tokens });
          const ms = performance.now() - t0;
          const s = engine.stats();
          rows.push({
            round,
            workload,
            config: c.name,
            prompt: prompt.slice(0, 40),
            tokens: r.tokens.length,
            ms,
            tokensPerSecond: r.tokens.length / (ms / 1000),
            acceptanceRate: s.acceptanceRate,
            meanAcceptanceLength: s.meanAcceptanceLength,
            ngram: s.draftSources?.ngram ?? null,
            outputHash: `${r.tokens.join(",").length}:${r.tokens.slice(0, 8).join(",")}`,
            placement: { targetThreads: engine.placement.targetThreads, mode: engine.placement.mode },
          });
          console.error(
            `${workload} ${c.name}: ${r.tokens.length} tokens ${(r.tokens.length / (ms / 1000)).toFixed(1)} t/s, ` +
              `accepted ${s.acceptedTokens}/${s.draftedTokens}`,
          );
        }
      } finally {
        await engine.close();
      }
    }
  }
}
// per workload and config: total tokens / total time, and the speedup over ar
const summary = {};
for (const w of Object.keys(WORKLOADS)) {
  summary[w] = {};
  for (const c of CONFIGS) {
    const rs = rows.filter((r) => r.workload === w && r.config === c.name);
    const tok = rs.reduce((n, r) => n + r.tokens, 0);
    const ms = rs.reduce((n, r) => n + r.ms, 0);
    const drafted = rs.reduce((n, r) => n + (r.ngram?.draftedTokens ?? 0), 0);
    const accepted = rs.reduce((n, r) => n + (r.ngram?.acceptedTokens ?? 0), 0);
    summary[w][c.name] = { tokens: tok, tokensPerSecond: tok / (ms / 1000), drafted, accepted };
  }
  for (const c of CONFIGS) summary[w][c.name].vsAr = summary[w][c.name].tokensPerSecond / summary[w].ar.tokensPerSecond;
}
// lossless: every config emitted ar's tokens
const lossless = rows.every(
  (r) =>
    r.outputHash === rows.find((a) => a.config === "ar" && a.prompt === r.prompt && a.round === r.round).outputHash,
);
const out = { model: target, tokens, rounds, batchSize: 1, lossless, summary, rows };
writeFileSync(outFile, `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify({ lossless, summary }, null, 2));
