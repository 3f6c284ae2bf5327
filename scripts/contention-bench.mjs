#!/usr/bin/env node
// Throughput when other work competes for the cores: every mode quiet and with busy competitor
// processes (`node -e 'for(;;){}'`), side by side in one run. Each round runs every mode once quiet and
// once loaded (order alternating), one engine per mode kept open; medians over rounds. Before each
// measured run the engine decodes a few tokens in the new condition (the steady state is measured;
// the engine's adaptation lag is ~0.1 s to fewer cores, ~0.3 s back). JSON on stdout.
//
//   npm run build:ts
//   node scripts/contention-bench.mjs [--model T.gguf --draft D.gguf] [--modes ar,sd,psd,auto] [--rounds 5]
//       [--workload one|batch] [--competitors 1] [--threads N] [--incumbents] [--json out.json] [--engine-option JSON]
//   --incumbents: node-llama-cpp 3.21.1's plain decoding too (all cores, in a child process per run,
//   scripts/incumbents/node-llama-cpp-worker.mjs; generation time only, as its worker reports it)
//   (default models: the small synthetic pair; one: 1 request x 250 greedy tokens; batch: 8 x 48, batch 4)
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    draft: { type: "string" },
    modes: { type: "string", default: "ar,sd,psd,auto" },
    rounds: { type: "string", default: "5" },
    workload: { type: "string", default: "one" },
    competitors: { type: "string", default: "1" },
    "engine-option": { type: "string", default: "{}" },
    threads: { type: "string" },
    incumbents: { type: "boolean" },
    json: { type: "string" },
  },
});
const lib = await import(pathToFileURL(path.join(root, "dist/index.js")).href);
const { BUILTIN_PROMPTS } = await import(pathToFileURL(path.join(root, "dist/bench/prompts.js")).href);
const pair = args.model
  ? { target: args.model, draft: args.draft }
  : await lib.ensureSyntheticPair(undefined, { preset: "small" });
const workload =
  args.workload === "batch"
    ? { prompts: BUILTIN_PROMPTS.slice(0, 8), maxTokens: 48, batchSize: 4 }
    : { prompts: [BUILTIN_PROMPTS[0]], maxTokens: 250, batchSize: 1 };
const modes = args.modes.split(",");
const rounds = Number(args.rounds);
const extra = JSON.parse(args["engine-option"]);
/** --threads N pins both models' threads (the load then changes nothing) */
const pinned = args.threads === undefined ? undefined : Number(args.threads);
const log = (s) => process.stderr.write(`${s}\n`);

/** Starts n busy-looping processes; resolves once they run, with a function that stops them. */
async function competitors(n) {
  const children = Array.from({ length: n }, () => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
  await new Promise((r) => setTimeout(r, 300)); // running, and seen by the load monitor's window
  return () =>
    Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : (c.once("exit", r), c.kill("SIGKILL"))))),
    );
}

const engines = {};
const NLC = "node-llama-cpp ar";
for (const mode of modes) {
  engines[mode] = await lib.createEngine({
    mode,
    target: { model: pair.target, threads: pinned },
    ...(mode === "ar" ? {} : { draft: { model: pair.draft, threads: pinned } }),
    batchSize: workload.batchSize,
    contextSize: 512,
    ...extra,
  });
  await engines[mode].generate(workload.prompts[0], { maxTokens: 8 }); // warm-up
}

/** node-llama-cpp's plain decoding of the workload in a child process (it loads the model itself). */
function nodeLlamaCpp() {
  const job = {
    target: pair.target,
    prompts: workload.prompts,
    sequences: workload.batchSize,
    maxTokens: workload.maxTokens,
    threads: pinned ?? os.availableParallelism(),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(root, "scripts/incumbents/node-llama-cpp-worker.mjs"), JSON.stringify(job)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`node-llama-cpp worker exited with ${code}`));
      const r = JSON.parse(out.trim().split("\n").pop());
      resolve({ ms: r.wallMs, tokensPerSecond: r.tokensPerSecond });
    });
  });
}

async function run(mode) {
  if (mode === NLC) return nodeLlamaCpp();
  const engine = engines[mode];
  const start = performance.now();
  const results = await Promise.all(
    workload.prompts.map((p) => engine.generate(p, { maxTokens: workload.maxTokens, temperature: 0 })),
  );
  const ms = performance.now() - start;
  const tokens = results.reduce((n, r) => n + r.tokens.length, 0);
  return { ms, tokensPerSecond: (tokens / ms) * 1000, threads: engine.backendThreads?.() };
}

if (args.incumbents) modes.push(NLC);
const samples = Object.fromEntries(modes.map((m) => [m, { quiet: [], loaded: [] }]));
for (let round = 0; round < rounds; round++) {
  for (const mode of modes) {
    for (const condition of round % 2 === 0 ? ["quiet", "loaded"] : ["loaded", "quiet"]) {
      const stop = condition === "loaded" ? await competitors(Number(args.competitors)) : null;
      if (!stop) await new Promise((r) => setTimeout(r, 300)); // the same settling time
      // a few tokens first: the engine's load monitor sees the condition (drop to fewer cores: ~0.1 s;
      // back to all cores: ~0.3 s), so the measured run shows the steady state
      if (engines[mode]) {
        await engines[mode].generate(workload.prompts[0], { maxTokens: 8 });
        await new Promise((r) => setTimeout(r, 300));
        await engines[mode].generate(workload.prompts[0], { maxTokens: 8 });
      }
      const r = await run(mode);
      await stop?.();
      samples[mode][condition].push(r.tokensPerSecond);
      log(
        `round ${round + 1}/${rounds} ${mode} ${condition}: ${r.tokensPerSecond.toFixed(1)} tok/s ` +
          `(${r.ms.toFixed(0)} ms)`,
      );
    }
  }
}
for (const e of Object.values(engines)) await e.close();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = Object.fromEntries(
  modes.map((m) => {
    const q = median(samples[m].quiet);
    const l = median(samples[m].loaded);
    // a run "over 3x its median" in time is one under a third of the median rate
    const worst = Math.min(...samples[m].loaded) / l;
    return [
      m,
      {
        quietTokensPerSecond: q,
        loadedTokensPerSecond: l,
        loadedOverQuiet: l / q,
        slowestLoadedRunOverMedianTime: 1 / worst,
      },
    ];
  }),
);
const bestLoaded = Math.max(
  ...modes.filter((m) => m !== "auto" && m !== NLC).map((m) => summary[m].loadedTokensPerSecond),
);
const report = {
  machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model },
  models: pair,
  workload: { prompts: workload.prompts.length, maxTokens: workload.maxTokens, batchSize: workload.batchSize },
  competitors: Number(args.competitors),
  rounds,
  summary,
  ...(summary.auto && modes.length > 1
    ? { autoLoadedOverBestFixedLoaded: summary.auto.loadedTokensPerSecond / bestLoaded }
    : {}),
  samples,
};
console.log(JSON.stringify(report, null, 2));
if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
