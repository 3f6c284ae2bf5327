#!/usr/bin/env node
// minedraft against the incumbents on the same models, prompts and greedy settings, in one run:
// llama.cpp's own llama-batched-bench (AR at 1 and 8 sequences) and llama-speculative-simple
// (single-sequence SD), and node-llama-cpp 3.21.1 (AR and DraftSequenceTokenPredictor at 1 and 8
// concurrent sequences, each run in a child process under a timeout: a hang is a result).
//
//   bash scripts/build-llama-tools.sh            # once: .cache/llama-tools/bin (not part of CI)
//   npm run build:ts
//   node scripts/incumbents.mjs --model T.gguf --draft D.gguf [--max-tokens 48] [--rounds 2] [--json out.json]
//
// Rounds run every system once, in the same order; ratios use the mean over rounds.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    draft: { type: "string" },
    "max-tokens": { type: "string", default: "48" },
    k: { type: "string", default: "4" },
    rounds: { type: "string", default: "1" },
    threads: { type: "string" },
    tools: { type: "string", default: path.join(root, ".cache/llama-tools/bin") },
    timeout: { type: "string", default: "240" },
    only: { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help || !args.model || !args.draft) {
  console.log(
    readFileSync(fileURLToPath(import.meta.url), "utf8")
      .split("\n")
      .slice(1, 11)
      .map((l) => l.replace(/^\/\/ ?/, ""))
      .join("\n"),
  );
  process.exit(args.help ? 0 : 2);
}
const { createEngine } = await import(path.join(root, "dist/index.js"));
const { BUILTIN_PROMPTS } = await import(path.join(root, "dist/bench/prompts.js"));

const maxTokens = Number(args["max-tokens"]);
const k = Number(args.k);
const cores = Number(args.threads ?? os.availableParallelism());
const timeoutMs = Number(args.timeout) * 1000;
const prompts1 = BUILTIN_PROMPTS.slice(0, 4);
const prompts8 = BUILTIN_PROMPTS.slice(0, 8);
const only = args.only ? new RegExp(args.only) : null;
const log = (s) => process.stderr.write(`${s}\n`);
const { autoChoiceShares, unionMs } = await import(path.join(root, "dist/bench/summarize.js"));
/** auto's three most frequent choices with their share of the steps */
const autoChoices = (a) => (a ? autoChoiceShares(a.decisions, { top: 3, threads: false }) : undefined);

// ---------------------------------------------------------------- minedraft (in this process)
async function minedraft(mode, batchSize, prompts) {
  const engine = await createEngine({
    target: { model: args.model },
    draft: mode === "ar" ? undefined : { model: args.draft },
    mode,
    draftTokens: k,
    batchSize,
    contextSize: 1024,
  });
  try {
    await engine.generate(prompts[0], { maxTokens: 4 }); // warm-up
    engine.resetStats();
    const results = await Promise.all(prompts.map((p) => engine.generate(p, { maxTokens, temperature: 0 })));
    const s = engine.stats();
    // llama.cpp's tools time generation without the prompt: the same figure, admission prefills taken out
    const prefillMs = unionMs(engine.trace().filter((e) => e.kind === "prefill"));
    return {
      tokensPerSecond: s.tokensPerSecond,
      decodeTokensPerSecond: (1000 * s.generatedTokens) / Math.max(1, s.wallMs - prefillMs),
      acceptanceRate: mode === "ar" ? null : s.acceptanceRate,
      outputs: results.map((r) => r.tokens),
      threads: `${engine.placement.targetThreads}/${mode === "ar" ? "-" : engine.placement.draftThreads}`,
      note: mode === "auto" ? autoChoices(s.auto) : undefined,
    };
  } finally {
    await engine.close();
  }
}

// ---------------------------------------------------------------- node-llama-cpp (child process)
function nodeLlamaCpp(speculative, sequences, prompts) {
  const job = {
    target: args.model,
    prompts,
    sequences,
    maxTokens,
    threads: cores,
    ...(speculative ? { draft: args.draft, draftThreads: cores, draftMin: k, draftMax: k } : {}),
  };
  const r = spawnSync(
    process.execPath,
    [path.join(root, "scripts/incumbents/node-llama-cpp-worker.mjs"), JSON.stringify(job)],
    { encoding: "utf8", timeout: timeoutMs, maxBuffer: 1 << 26 },
  );
  if (r.error?.code === "ETIMEDOUT" || r.signal === "SIGTERM")
    return { status: "hang", detail: `no result in ${timeoutMs / 1000} s (killed)` };
  if (r.status !== 0) return { status: "error", detail: (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ") };
  const out = JSON.parse(r.stdout.trim().split("\n").pop());
  const p = out.predictions?.reduce(
    (a, x) => ({ validated: a.validated + x.validated, refuted: a.refuted + x.refuted }),
    { validated: 0, refuted: 0 },
  );
  return {
    tokensPerSecond: out.tokensPerSecond,
    acceptanceRate: p ? p.validated / Math.max(1, p.validated + p.refuted) : null,
    outputs: out.outputs,
    threads: speculative ? `${cores}/${cores}` : `${cores}/-`,
  };
}

// ---------------------------------------------------------------- llama.cpp tools
function tool(name) {
  const bin = path.join(args.tools, name);
  if (!existsSync(bin)) return null;
  return bin;
}

function batchedBench(sequences) {
  const bin = tool("llama-batched-bench");
  if (!bin) return { status: "missing", detail: "run scripts/build-llama-tools.sh" };
  const r = spawnSync(
    bin,
    [
      "-m",
      args.model,
      "-c",
      String(1024 * sequences),
      "-b",
      "512",
      "-ub",
      "512",
      "-npp",
      "16",
      "-ntg",
      String(maxTokens),
      "-npl",
      String(sequences),
      "-t",
      String(cores),
      "-tb",
      String(cores),
      "--output-format",
      "jsonl",
    ],
    { encoding: "utf8", timeout: timeoutMs },
  );
  if (r.status !== 0)
    return {
      status: r.error?.code === "ETIMEDOUT" ? "hang" : "error",
      detail: (r.stderr || "").trim().split("\n").slice(-3).join(" "),
    };
  const line = `${r.stdout}\n${r.stderr}`.split("\n").find((l) => l.startsWith("{") && l.includes("speed_tg"));
  const j = JSON.parse(line);
  return {
    tokensPerSecond: null,
    decodeTokensPerSecond: j.speed_tg,
    acceptanceRate: null,
    threads: `${cores}/-`,
    note: "text generation only (prefill excluded), pp 16 tokens",
  };
}

function speculativeSimple(prompts) {
  const bin = tool("llama-speculative-simple");
  if (!bin) return { status: "missing", detail: "run scripts/build-llama-tools.sh" };
  let tokens = 0;
  let seconds = 0;
  let drafted = 0;
  let accepted = 0;
  for (const p of prompts) {
    const r = spawnSync(
      bin,
      [
        "-m",
        args.model,
        "-md",
        args.draft,
        "-p",
        p,
        "-n",
        String(maxTokens),
        "--temp",
        "0",
        "--top-k",
        "1",
        "-t",
        String(cores),
        "-td",
        String(cores),
        "-c",
        "1024",
        "--spec-type",
        "draft-simple",
        "--spec-draft-n-max",
        String(k),
        "--spec-draft-n-min",
        "0",
        "--spec-draft-p-min",
        "0",
        "-ngl",
        "0",
        "-ngld",
        "0",
      ],
      { encoding: "utf8", timeout: timeoutMs },
    );
    if (r.status !== 0)
      return {
        status: r.error?.code === "ETIMEDOUT" ? "hang" : "error",
        detail: (r.stderr || "").trim().split("\n").slice(-3).join(" "),
      };
    const all = `${r.stdout}\n${r.stderr}`;
    const dec = all.match(/decoded\s+(\d+) tokens in\s+([\d.]+) seconds/);
    if (!dec) return { status: "error", detail: "no 'decoded N tokens' line in its output" };
    tokens += Number(dec[1]);
    seconds += Number(dec[2]);
    drafted += Number(all.match(/n_drafted\s*=\s*(\d+)/)?.[1] ?? 0);
    accepted += Number(all.match(/n_accept\s*=\s*(\d+)/)?.[1] ?? 0);
  }
  return {
    tokensPerSecond: null,
    decodeTokensPerSecond: tokens / seconds,
    acceptanceRate: drafted > 0 ? accepted / drafted : null,
    threads: `${cores}/${cores}`,
    note: `k ${k}, greedy, prefill excluded`,
  };
}

// ---------------------------------------------------------------- the run
const systems = [
  // one sequence
  { id: "llama.cpp batched-bench AR (1 seq)", seqs: 1, run: () => batchedBench(1) },
  { id: "llama.cpp speculative-simple (1 seq)", seqs: 1, run: () => speculativeSimple(prompts1) },
  { id: "node-llama-cpp AR (1 seq)", seqs: 1, run: () => nodeLlamaCpp(false, 1, prompts1), outputsOf: "prompts1" },
  {
    id: "node-llama-cpp DraftSequenceTokenPredictor (1 seq)",
    seqs: 1,
    run: () => nodeLlamaCpp(true, 1, prompts1),
    outputsOf: "prompts1",
  },
  {
    id: "minedraft ar (batch 1)",
    seqs: 1,
    run: () => minedraft("ar", 1, prompts1),
    outputsOf: "prompts1",
    reference: "prompts1",
  },
  { id: "minedraft sd (batch 1)", seqs: 1, run: () => minedraft("sd", 1, prompts1), outputsOf: "prompts1" },
  { id: "minedraft auto (batch 1)", seqs: 1, run: () => minedraft("auto", 1, prompts1), outputsOf: "prompts1" },
  // eight concurrent sequences
  { id: "llama.cpp batched-bench AR (8 seqs)", seqs: 8, run: () => batchedBench(8) },
  { id: "node-llama-cpp AR (8 seqs)", seqs: 8, run: () => nodeLlamaCpp(false, 8, prompts8), outputsOf: "prompts8" },
  {
    id: "node-llama-cpp DraftSequenceTokenPredictor (8 seqs)",
    seqs: 8,
    run: () => nodeLlamaCpp(true, 8, prompts8),
    outputsOf: "prompts8",
  },
  {
    id: "minedraft ar (batch 8)",
    seqs: 8,
    run: () => minedraft("ar", 8, prompts8),
    outputsOf: "prompts8",
    reference: "prompts8",
  },
  { id: "minedraft sd (batch 8)", seqs: 8, run: () => minedraft("sd", 8, prompts8), outputsOf: "prompts8" },
  { id: "minedraft psd (2 x 4)", seqs: 8, run: () => minedraft("psd", 4, prompts8), outputsOf: "prompts8" },
  { id: "minedraft auto (2 x 4)", seqs: 8, run: () => minedraft("auto", 4, prompts8), outputsOf: "prompts8" },
].filter((s) => !only || only.test(s.id));

const rounds = Number(args.rounds);
const results = new Map(
  systems.map((s) => [s.id, { id: s.id, sequences: s.seqs, runs: [], decodeRuns: [], status: "ok" }]),
);
const references = {};
const t0 = Date.now();
for (let round = 1; round <= rounds; round++) {
  for (const s of systems) {
    const started = Date.now();
    let r;
    try {
      r = await s.run();
    } catch (e) {
      r = { status: "error", detail: String(e?.message ?? e) };
    }
    const entry = results.get(s.id);
    if (r.status && r.status !== "ok") {
      entry.status = r.status;
      entry.detail = r.detail;
      log(`round ${round} ${s.id}: ${r.status} (${r.detail})`);
      continue;
    }
    if (r.tokensPerSecond !== null) entry.runs.push(r.tokensPerSecond);
    if (r.decodeTokensPerSecond !== undefined) entry.decodeRuns.push(r.decodeTokensPerSecond);
    entry.acceptanceRate = r.acceptanceRate;
    entry.threads = r.threads;
    if (r.note) entry.note = r.note;
    if (s.reference && !references[s.reference]) references[s.reference] = r.outputs;
    if (s.outputsOf && r.outputs) entry.outputs = { of: s.outputsOf, tokens: r.outputs };
    log(
      `round ${round} ${s.id}: ${r.tokensPerSecond?.toFixed(2) ?? "-"} tok/s, decode ` +
        `${r.decodeTokensPerSecond?.toFixed(2) ?? "-"} tok/s (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
}

// greedy agreement with minedraft's ar at the same prompts (itself checked against single-sequence decoding in the
// tests)
const rows = [...results.values()].map((e) => {
  const avg = (xs) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const mean = avg(e.runs);
  let matches = null;
  if (e.outputs && references[e.outputs.of]) {
    const ref = references[e.outputs.of];
    matches = `${e.outputs.tokens.filter((t, i) => JSON.stringify(t) === JSON.stringify(ref[i])).length}/${ref.length}`;
  }
  const { outputs, ...rest } = e;
  return { ...rest, tokensPerSecond: mean, decodeTokensPerSecond: avg(e.decodeRuns), matchesMinedraftAr: matches };
});
const tps = (id) => rows.find((r) => r.id === id)?.tokensPerSecond ?? null;
const dtps = (id) => rows.find((r) => r.id === id)?.decodeTokensPerSecond ?? null;
const ratio = (a, b) => (a !== null && b !== null && b > 0 ? a / b : null);
const bestSpec8 = Math.max(
  ...["minedraft sd (batch 8)", "minedraft psd (2 x 4)", "minedraft auto (2 x 4)"].map((id) => tps(id) ?? 0),
);
const nlcSpec8 = rows.find((r) => r.id === "node-llama-cpp DraftSequenceTokenPredictor (8 seqs)");
const targets = {
  "minedraft ar / llama-batched-bench, 1 seq, generation only (>= 0.9)": ratio(
    dtps("minedraft ar (batch 1)"),
    dtps("llama.cpp batched-bench AR (1 seq)"),
  ),
  "minedraft ar / llama-batched-bench, 8 seqs, generation only (>= 0.9)": ratio(
    dtps("minedraft ar (batch 8)"),
    dtps("llama.cpp batched-bench AR (8 seqs)"),
  ),
  "minedraft sd / llama-speculative-simple, 1 seq, generation only (>= 1.0)": ratio(
    dtps("minedraft sd (batch 1)"),
    dtps("llama.cpp speculative-simple (1 seq)"),
  ),
  "minedraft auto / llama-speculative-simple, 1 seq, generation only": ratio(
    dtps("minedraft auto (batch 1)"),
    dtps("llama.cpp speculative-simple (1 seq)"),
  ),
  "minedraft best speculative / node-llama-cpp speculative, 8 seqs (>= 5)":
    nlcSpec8?.status === "hang"
      ? "node-llama-cpp hung (no result)"
      : ratio(bestSpec8, nlcSpec8?.tokensPerSecond ?? null),
};

const report = {
  schema: "minedraft-incumbents/1",
  createdAt: new Date().toISOString(),
  durationMs: Date.now() - t0,
  machine: { cpuModel: os.cpus()[0]?.model, cores: os.availableParallelism() },
  models: { target: args.model, draft: args.draft },
  options: {
    maxTokens,
    k,
    threads: cores,
    rounds,
    prompts1: prompts1.length,
    prompts8: prompts8.length,
    only: args.only ?? null,
    llamaTools: existsSync(path.join(args.tools, "VERSION"))
      ? readFileSync(path.join(args.tools, "VERSION"), "utf8").trim()
      : null,
  },
  systems: rows,
  targets,
};
const fmt = (x, d = 1) => (x === null || x === undefined ? "-" : typeof x === "string" ? x : x.toFixed(d));
const table = [
  "| system | sequences | tokens/s (end to end) | generation tokens/s (prompt excluded) | runs | acceptance | " +
    "greedy = minedraft ar | threads t/d | status |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${r.id} | ${r.sequences} | ${fmt(r.tokensPerSecond)} | ${fmt(r.decodeTokensPerSecond)} | ` +
      `${(r.runs.length > 0 ? r.runs : r.decodeRuns).map((x) => x.toFixed(1)).join(", ")} | ` +
      `${r.acceptanceRate == null ? "-" : `${(100 * r.acceptanceRate).toFixed(1)}%`} | ` +
      `${r.matchesMinedraftAr ?? "-"} | ${r.threads ?? "-"} | ` +
      `${r.status}${r.detail ? `: ${r.detail}` : ""}${r.note ? ` (${r.note})` : ""} |`,
  ),
  "",
  ...Object.entries(targets).map(([k2, v]) => `- ${k2}: ${typeof v === "number" ? `${v.toFixed(2)}x` : (v ?? "-")}`),
].join("\n");
console.log(table);
if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
