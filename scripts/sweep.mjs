#!/usr/bin/env node
// Parameter sweeps of the modes on a synthetic pair, one factor at a time around a base point
// (batch m, k, draft agreement eps), every point's modes side by side (interleaved runs):
//   k      1..6             sd(m), psd(m)                      (ar once, as the reference)
//   batch  1, 4, 8, 16      ar(m), sd(m), psd(m), auto(m), and sd(2m): psd holds 2m requests
//   eps    0.02, 0.05, 0.1  sd, psd, auto (a pair per eps; smaller eps = draft closer to the target)
//
//   npm run build:ts && node scripts/sweep.mjs [--preset tinyllama] [--sweeps k,batch,eps]
//       [--max-tokens 32] [--repeat 1] [--json docs/bench/sweep.json]
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    preset: { type: "string", default: "tinyllama" },
    sweeps: { type: "string", default: "k,batch,eps" },
    batch: { type: "string", default: "4" },
    k: { type: "string", default: "4" },
    "max-tokens": { type: "string", default: "32" },
    repeat: { type: "string", default: "1" },
    ks: { type: "string", default: "1,2,3,4,5,6" },
    batches: { type: "string", default: "1,4,8,16" },
    eps: { type: "string", default: "0.02,0.05,0.1" },
    json: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  console.log("see the header of scripts/sweep.mjs");
  process.exit(0);
}
const { ensureSyntheticPair } = await import(path.join(root, "dist/index.js"));
const { runBench } = await import(path.join(root, "dist/bench/runner.js"));
const { BUILTIN_PROMPTS } = await import(path.join(root, "dist/bench/prompts.js"));

const base = { m: Number(args.batch), k: Number(args.k) };
const maxTokens = Number(args["max-tokens"]);
const repeat = Number(args.repeat);
const list = (s) => s.split(",").map(Number);
const log = (s) => process.stderr.write(`${s}\n`);
const { autoChoiceShares } = await import(path.join(root, "dist/bench/summarize.js"));
/** auto's three most frequent choices with their share of the steps */
const autoChoices = (a) => (a ? autoChoiceShares(a.decisions, { top: 3, threads: false }) : undefined);

/** n prompts: the built-in ones, then numbered variants of them (every request distinct). */
const promptsFor = (n) =>
  Array.from({ length: n }, (_, i) =>
    i < BUILTIN_PROMPTS.length
      ? BUILTIN_PROMPTS[i]
      : `${BUILTIN_PROMPTS[i % BUILTIN_PROMPTS.length]} (${Math.floor(i / BUILTIN_PROMPTS.length)})`,
  );

async function bench(pair, modes, m, k, promptCount) {
  const prompts = promptsFor(promptCount);
  const report = await runBench({
    target: { path: pair.target },
    draft: { path: pair.draft },
    modes,
    prompts,
    promptSource: "sweep",
    batchSize: m,
    draftTokens: k,
    temperature: 0,
    maxTokens,
    repeat,
    seed: 0,
    contextSize: 512,
    interleave: true,
    timelineSteps: 1,
  });
  return report.modes.map((r) => ({
    mode: r.mode,
    batchSize: m,
    k,
    tokensPerSecond: r.summary.tokensPerSecond,
    acceptanceRate: r.mode === "ar" ? null : r.summary.acceptanceRate,
    meanAcceptanceLength: r.mode === "ar" ? null : r.summary.meanAcceptanceLength,
    hiddenDraftFraction: r.summary.hiddenDraftFraction,
    threads:
      r.mode === "ar" ? `${r.placement.targetThreads}/-` : `${r.placement.targetThreads}/${r.placement.draftThreads}`,
    auto: autoChoices(r.summary.auto),
  }));
}

const started = Date.now();
const out = {
  schema: "minedraft-sweep/1",
  createdAt: new Date().toISOString(),
  preset: args.preset,
  base,
  maxTokens,
  repeat,
  sweeps: {},
};
const sweeps = args.sweeps.split(",");
const basePair = await ensureSyntheticPair(undefined, { preset: args.preset });

if (sweeps.includes("k")) {
  // requests: 2m so psd's two sub-batches are full
  const rows = [];
  const prompts = 2 * base.m;
  rows.push(...(await bench(basePair, ["ar"], base.m, 1, prompts)));
  for (const k of list(args.ks)) {
    rows.push(...(await bench(basePair, ["sd", "psd"], base.m, k, prompts)));
    log(
      `k=${k}: ${rows
        .slice(-2)
        .map((r) => `${r.mode} ${r.tokensPerSecond.toFixed(2)}`)
        .join(", ")}`,
    );
  }
  out.sweeps.k = rows;
}
if (sweeps.includes("batch")) {
  const rows = [];
  for (const m of list(args.batches)) {
    const prompts = Math.max(4, 2 * m);
    const point = await bench(basePair, ["ar", "sd", "psd", "auto"], m, base.k, prompts);
    const sd2m = await bench(basePair, ["sd"], 2 * m, base.k, prompts);
    rows.push(...point, ...sd2m.map((r) => ({ ...r, mode: "sd(2m)" })));
    log(
      `m=${m}: ` +
        `${[...point, ...sd2m].map((r) => `${r.mode}@${r.batchSize} ${r.tokensPerSecond.toFixed(2)}`).join(", ")}`,
    );
  }
  out.sweeps.batch = rows;
}
if (sweeps.includes("eps")) {
  const rows = [];
  for (const eps of list(args.eps)) {
    const pair = await ensureSyntheticPair(undefined, { preset: args.preset, eps });
    const point = await bench(pair, ["ar", "sd", "psd", "auto"], base.m, base.k, 2 * base.m);
    rows.push(...point.map((r) => ({ ...r, eps })));
    log(
      `eps=${eps}: ` +
        `${point
          .map(
            (r) =>
              `${r.mode} ${r.tokensPerSecond.toFixed(2)} (` +
              `${r.acceptanceRate === null ? "-" : (100 * r.acceptanceRate).toFixed(0)}%)`,
          )
          .join(", ")}`,
    );
  }
  out.sweeps.eps = rows;
}
out.durationMs = Date.now() - started;

// tables (markdown) on stdout
const f = (x, d = 1) => (x === null || x === undefined ? "-" : x.toFixed(d));
const pct = (x) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(0)}%`);
if (out.sweeps.k) {
  const ar = out.sweeps.k.find((r) => r.mode === "ar");
  console.log(
    `\n### k (batch ${base.m}, ${2 * base.m} requests; ar ${f(ar.tokensPerSecond)} tok/s)\n\n| k | sd tok/s | ` +
      "psd tok/s | psd/sd | sd/ar | acceptance | mean acc. length |\n|---|---|---|---|---|---|---|",
  );
  for (const k of list(args.ks)) {
    const sd = out.sweeps.k.find((r) => r.mode === "sd" && r.k === k);
    const psd = out.sweeps.k.find((r) => r.mode === "psd" && r.k === k);
    console.log(
      `| ${k} | ${f(sd.tokensPerSecond)} | ${f(psd.tokensPerSecond)} | ` +
        `${f(psd.tokensPerSecond / sd.tokensPerSecond, 2)} | ${f(sd.tokensPerSecond / ar.tokensPerSecond, 2)} | ` +
        `${pct(sd.acceptanceRate)} | ${f(sd.meanAcceptanceLength, 2)} |`,
    );
  }
}
if (out.sweeps.batch) {
  console.log(
    `\n### batch size m (k ${base.k}; 2m requests)\n\n| m | ar | sd(m) | sd(2m) | psd(m) | auto(m) | psd/sd(m) ` +
      "| psd/sd(2m) | auto/best fixed | auto's choices |\n|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const m of list(args.batches)) {
    const g = (mode) =>
      out.sweeps.batch.find((r) => r.mode === mode && (mode === "sd(2m)" ? r.batchSize === 2 * m : r.batchSize === m));
    const [ar, sd, sd2, psd, auto] = ["ar", "sd", "sd(2m)", "psd", "auto"].map(g);
    const best = Math.max(ar.tokensPerSecond, sd.tokensPerSecond, sd2.tokensPerSecond, psd.tokensPerSecond);
    console.log(
      `| ${m} | ${f(ar.tokensPerSecond)} | ${f(sd.tokensPerSecond)} | ${f(sd2.tokensPerSecond)} | ` +
        `${f(psd.tokensPerSecond)} | ${f(auto.tokensPerSecond)} | ` +
        `${f(psd.tokensPerSecond / sd.tokensPerSecond, 2)} | ${f(psd.tokensPerSecond / sd2.tokensPerSecond, 2)} | ` +
        `${f(auto.tokensPerSecond / best, 2)} | ${auto.auto ?? "-"} |`,
    );
  }
}
if (out.sweeps.eps) {
  console.log(
    `\n### draft agreement eps (batch ${base.m}, k ${base.k})\n\n| eps | acceptance | ar | sd | psd | auto | ` +
      "auto/best fixed | auto's choices |\n|---|---|---|---|---|---|---|---|",
  );
  for (const eps of list(args.eps)) {
    const g = (mode) => out.sweeps.eps.find((r) => r.mode === mode && r.eps === eps);
    const [ar, sd, psd, auto] = ["ar", "sd", "psd", "auto"].map(g);
    const best = Math.max(ar.tokensPerSecond, sd.tokensPerSecond, psd.tokensPerSecond);
    console.log(
      `| ${eps} | ${pct(sd.acceptanceRate)} | ${f(ar.tokensPerSecond)} | ${f(sd.tokensPerSecond)} | ` +
        `${f(psd.tokensPerSecond)} | ${f(auto.tokensPerSecond)} | ${f(auto.tokensPerSecond / best, 2)} | ` +
        `${auto.auto ?? "-"} |`,
    );
  }
}
if (args.json) writeFileSync(args.json, `${JSON.stringify(out, null, 2)}\n`);
log(`sweep done in ${((Date.now() - started) / 60000).toFixed(1)} min`);
