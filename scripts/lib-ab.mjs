#!/usr/bin/env node
// Two llama.cpp library folders side by side under one addon: each run is a fresh process whose
// LD_LIBRARY_PATH names one folder (the RUNPATH of an addon built by build:source yields to it; Linux),
// in ABBA order per round, so machine drift hits both alike. Made for builds that differ in a build flag only, e.g. OpenMP:
//
//   cp -a build-source/lib /tmp/a-lib                       # one build:source variant
//   npm run build:source -- --gpu cpu --openmp && cp -a build-source/lib /tmp/b-lib
//   node scripts/lib-ab.mjs --a /tmp/a-lib --b /tmp/b-lib --model T.gguf [--draft D.gguf] [--mode ar]
//       [--batch-size 4] [--prompts 4] [--max-tokens 48] [--rounds 2] [--json out.json]
//
// A run: one warm-up, then 3 measured passes of every prompt at once through engine.generate();
// its figure is the median tokens/s (and auto's decisions, from stats()).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string" },
    model: { type: "string" },
    draft: { type: "string" },
    mode: { type: "string", default: "ar" },
    "batch-size": { type: "string", default: "4" },
    prompts: { type: "string", default: "4" },
    "max-tokens": { type: "string", default: "48" },
    rounds: { type: "string", default: "2" },
    json: { type: "string" },
    child: { type: "boolean", default: false },
  },
});

if (args.child) {
  const dist = (p) => pathToFileURL(path.join(root, "dist", p)).href;
  const { createEngine } = await import(dist("index.js"));
  const { BUILTIN_PROMPTS } = await import(dist("bench/prompts.js"));
  const { engineRequests, runServeLoad, summarizeServeLoad } = await import(dist("bench/serve-load.js"));
  const engine = await createEngine({
    target: { model: args.model },
    ...(args.draft && args.mode !== "ar" ? { draft: { model: args.draft } } : {}),
    mode: args.mode,
    batchSize: Number(args["batch-size"]),
    logLevel: "error",
  });
  // the prebuilt backend picks its CPU library by path, past LD_LIBRARY_PATH: only a build:source addon swaps
  const lib = path.resolve(process.env.LD_LIBRARY_PATH ?? "");
  if (!readFileSync("/proc/self/maps", "utf8").includes(`${lib}/libggml-cpu`)) {
    console.error(
      `llama.cpp's CPU library was not loaded from ${lib}: build the addon with npm run build:source first`,
    );
    process.exit(1);
  }
  const send = engineRequests(engine, Number(args["max-tokens"]));
  const prompts = Array.from({ length: Number(args.prompts) }, (_, i) => BUILTIN_PROMPTS[i % BUILTIN_PROMPTS.length]);
  await runServeLoad({ send, prompts, rate: Infinity, seed: 99, timeoutMs: 600_000 });
  const rates = [];
  for (let i = 0; i < 3; i++) {
    const { records, durationMs } = await runServeLoad({ send, prompts, rate: Infinity, seed: i, timeoutMs: 600_000 });
    rates.push(summarizeServeLoad(records, durationMs).outputTokensPerSecond);
  }
  rates.sort((x, y) => x - y);
  const decisions = engine.stats().auto?.decisions.map((d) => `${d.schedule}/${d.k}@${d.threads.target}: ${d.steps}`);
  await engine.close();
  process.stdout.write(`${JSON.stringify({ tokensPerSecond: rates[1], decisions })}\n`);
  process.exit(0);
}

if (!args.a || !args.b || !args.model) {
  console.error("usage: node scripts/lib-ab.mjs --a LIBDIR --b LIBDIR --model T.gguf [--draft D.gguf] [--mode ar] ...");
  process.exit(2);
}
const childArgs = ["model", "draft", "mode", "batch-size", "prompts", "max-tokens"].flatMap((k) =>
  args[k] !== undefined ? [`--${k}`, args[k]] : [],
);
const runs = [];
for (let round = 1; round <= Number(args.rounds); round++) {
  for (const side of ["a", "b", "b", "a"]) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...childArgs, "--child"], {
      env: { ...process.env, LD_LIBRARY_PATH: path.resolve(args[side]) },
      encoding: "utf8",
    });
    if (r.status !== 0) {
      console.error(`lib-ab: the ${side} run failed:\n${r.stderr}`);
      process.exit(1);
    }
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1));
    runs.push({ round, side, ...out });
    console.error(
      `round ${round} ${side}: ${out.tokensPerSecond.toFixed(1)} tok/s${out.decisions ? ` ${out.decisions.join(", ")}` : ""}`,
    );
  }
}
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const of = (side) => median(runs.filter((r) => r.side === side).map((r) => r.tokensPerSecond));
const ratio = of("b") / of("a");
console.log(`b / a: ${ratio.toFixed(3)} (medians ${of("b").toFixed(1)} / ${of("a").toFixed(1)} tok/s)`);
if (args.json)
  writeFileSync(
    args.json,
    `${JSON.stringify({ options: { ...args, child: undefined }, runs, bOverA: ratio }, null, 2)}\n`,
  );
