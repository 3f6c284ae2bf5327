#!/usr/bin/env node
// Two builds of minedraft side by side in one process: an engine from each build's dist/ (same
// models, mode and prompts), warmed up, then measured runs alternating between them (ABBA order),
// so machine drift hits both alike: before/after comparisons without process-to-process noise
// (±5% on the 2-core CI machine). A build of another commit: git worktree add DIR COMMIT, link
// node_modules and deps, npx tsc -p . && node scripts/build-addon.mjs there.
//
//   node scripts/ab-builds.mjs --a DIR --b DIR --model T.gguf [--draft D.gguf] [--mode auto]
//       [--batch-size 4] [-k 4] [--prompts 12] [--max-tokens 48] [--rounds 10] [--json out.json]
//       [--temperature 0] [--top-k 0] [--top-p 1]   (sampling of the measured runs; seeded per request)
import path from "node:path";
import { writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string", default: path.join(root, "dist") },
    model: { type: "string" },
    draft: { type: "string" },
    mode: { type: "string", default: "auto" },
    "batch-size": { type: "string", default: "4" },
    k: { type: "string", short: "k", default: "4" },
    prompts: { type: "string", default: "12" },
    "max-tokens": { type: "string", default: "48" },
    rounds: { type: "string", default: "10" },
    temperature: { type: "string", default: "0" },
    "top-k": { type: "string", default: "0" },
    "top-p": { type: "string", default: "1" },
    json: { type: "string" },
  },
});
if (!args.a || !args.model) {
  console.log(
    "usage: node scripts/ab-builds.mjs --a DIR --b DIR --model T.gguf [--draft D.gguf] [--mode auto] " +
      "[--batch-size 4] [-k 4] [--prompts 12] [--max-tokens 48] [--rounds 10] [--json out.json] [--temperature 0] " +
      "[--top-k 0] [--top-p 1]",
  );
  process.exit(2);
}
const { BUILTIN_PROMPTS } = await import(pathToFileURL(path.join(root, "dist/bench/prompts.js")).href);
const prompts = BUILTIN_PROMPTS.slice(0, Number(args.prompts));
const maxTokens = Number(args["max-tokens"]);
const sampling = { temperature: Number(args.temperature), topK: Number(args["top-k"]), topP: Number(args["top-p"]) };
const builds = { a: path.resolve(args.a), b: path.resolve(args.b) };
const engines = {};
for (const [name, dir] of Object.entries(builds)) {
  const { createEngine } = await import(pathToFileURL(path.join(dir, "index.js")).href);
  engines[name] = await createEngine({
    target: { model: args.model },
    draft: args.draft ? { model: args.draft } : undefined,
    mode: args.mode,
    batchSize: Number(args["batch-size"]),
    draftTokens: Number(args.k),
    contextSize: 512,
    logLevel: "error",
  });
  // warm-up (auto calibrates here, as in minedraft bench)
  await Promise.all(
    prompts.map((p) => engines[name].generate(p, { maxTokens: Math.min(16, maxTokens), temperature: 0 })),
  );
}
const runs = { a: [], b: [] };
const outputs = { a: [], b: [] }; // token ids per round and request: the two builds must agree
for (let round = 0; round < Number(args.rounds); round++) {
  for (const name of round % 2 === 0 ? ["a", "b"] : ["b", "a"]) {
    const engine = engines[name];
    engine.resetStats();
    const results = await Promise.all(
      prompts.map((p, i) => engine.generate(p, { maxTokens, ...sampling, seed: round * 1000 + i })),
    );
    outputs[name][round] = results.map((r) => r.tokens.join(","));
    runs[name].push({
      tokensPerSecond: engine.stats().tokensPerSecond,
      meanTtftMs: results.reduce((s, r) => s + r.stats.ttftMs, 0) / results.length,
    });
  }
}
for (const engine of Object.values(engines)) await engine.close();
const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const summary = Object.fromEntries(
  Object.entries(runs).map(([name, rs]) => [
    name,
    {
      build: builds[name],
      meanTokensPerSecond: mean(rs.map((r) => r.tokensPerSecond)),
      meanTtftMs: mean(rs.map((r) => r.meanTtftMs)),
      runs: rs,
    },
  ]),
);
for (const [name, s] of Object.entries(summary)) {
  console.log(
    `${name} ${s.build}: ${s.meanTokensPerSecond.toFixed(1)} tok/s, TTFT ${s.meanTtftMs.toFixed(0)} ms (mean of ` +
      `${s.runs.length}: ${s.runs.map((r) => r.tokensPerSecond.toFixed(0)).join(" ")})`,
  );
}
console.log(`b / a: ${(summary.b.meanTokensPerSecond / summary.a.meanTokensPerSecond).toFixed(3)}x tokens/s`);
const pairs = outputs.a.flatMap((round, r) => round.map((tokens, i) => tokens === outputs.b[r][i]));
const identical = { requests: pairs.length, same: pairs.filter(Boolean).length };
console.log(`outputs: ${identical.same} of ${identical.requests} requests token-identical between a and b`);
if (args.json)
  writeFileSync(
    args.json,
    `${JSON.stringify(
      {
        mode: args.mode,
        model: args.model,
        draft: args.draft ?? null,
        batchSize: Number(args["batch-size"]),
        k: Number(args.k),
        prompts: prompts.length,
        maxTokens,
        sampling,
        identical,
        ...summary,
      },
      null,
      2,
    )}\n`,
  );
