#!/usr/bin/env node
// What minedraft adds around the models' own work when steps are short (a small model on a GPU takes
// a few ms per step): the handoff to and from a worker thread, and the TypeScript between two jobs.
// Side by side in one process, round-robin over the variants:
//   - round trip of a trivial native job (no model work) with the worker sleeping between jobs
//     (spinMicros 0) and spinning for the next one (the default), beside an idle second context;
//   - single-request generation (ar, and sd when a draft is given) per variant: ms per token, and
//     the JavaScript gap per step (both workers idle, from the engine's trace).
//
//   npm run build:ts
//   node scripts/step-overhead.mjs [--model T.gguf --draft D.gguf] [--tokens 128] [--rounds 3] [--json out.json]
//
// --merge a.json b.json ... pools the runs of several outputs (e.g. alternating processes of two
// builds) and prints their medians per build (`dist`), variant and mode.
//
// --dist DIR measures another build (e.g. a worktree of an older commit, built) with the same script;
// a build without spinMicros ignores the option, so its variants are all "always sleep".
//
// Without --model it uses the `tiny` synthetic pair (4 x 256, f32; a 3 ms step on 2 CPU threads).
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args, positionals } = parseArgs({
  options: {
    model: { type: "string" },
    draft: { type: "string" },
    tokens: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    spin: { type: "string", default: "0,250" },
    json: { type: "string" },
    dist: { type: "string" },
    merge: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
  allowPositionals: true,
});
if (args.help) {
  console.log(
    "usage: node scripts/step-overhead.mjs [--model T.gguf --draft D.gguf] [--tokens 128] [--rounds 3] " +
      "[--spin 0,250] [--dist DIR] [--json out.json]\n       node scripts/step-overhead.mjs --merge a.json b.json ...",
  );
  process.exit(0);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
if (args.merge) {
  const { readFileSync } = await import("node:fs");
  const pools = new Map();
  const pool = (key) => pools.get(key) ?? (pools.set(key, { roundTrip: [], msPerToken: [], gap: [] }), pools.get(key));
  for (const file of positionals) {
    const r = JSON.parse(readFileSync(file, "utf8"));
    for (const [spin, v] of Object.entries(r.roundTripUs))
      pool(`${r.dist} | round trip | spinMicros ${spin}`).roundTrip.push(...v.runs);
    for (const g of r.generation) {
      const p = pool(`${r.dist} | ${g.mode} | spinMicros ${g.spinMicros}`);
      p.msPerToken.push(...g.runs.msPerToken);
      p.gap.push(...g.runs.jsGapUsPerStep);
    }
  }
  for (const [key, p] of pools) {
    if (p.roundTrip.length) console.log(`${key}: ${median(p.roundTrip).toFixed(1)} us (${p.roundTrip.length} runs)`);
    else
      console.log(
        `${key}: ${median(p.msPerToken).toFixed(3)} ms/token, JS gap ${median(p.gap).toFixed(0)} us/step ` +
          `(${p.msPerToken.length} runs)`,
      );
  }
  process.exit(0);
}
const dist = path.resolve(args.dist ?? path.join(root, "dist"));
const { createEngine, ensureSyntheticPair, LlamaModel, LlamaContext } = await import(path.join(dist, "index.js"));

let model = args.model;
let draft = args.draft;
if (!model) {
  const pair = await ensureSyntheticPair(undefined, { preset: "tiny" });
  model = pair.target;
  draft = pair.draft;
}
const tokens = Number(args.tokens);
const rounds = Number(args.rounds);
const spins = args.spin.split(",").map(Number);
const modes = draft ? ["ar", "sd"] : ["ar"];
const prompt = "The quick brown fox jumps over the lazy dog and";

// 1. Round trip of a trivial job (the KV position query of an empty sequence). Each measured context
// has an idle second one beside it, as an engine has (target and draft): with a single worker
// thread in the process, the kernel tends to wake it on the JS thread's core, which is cheap (12-33
// us measured) but not what an engine sees (~110 us asleep).
const roundTrip = {};
{
  const m = await LlamaModel.load(model);
  const contexts = [];
  const idle = [];
  for (const spin of spins) {
    contexts.push([spin, await LlamaContext.create(m, { contextSize: 64, spinMicros: spin })]);
    idle.push(await LlamaContext.create(m, { contextSize: 64, spinMicros: spin }));
  }
  for (let round = 0; round < rounds; round++) {
    for (const [spin, ctx] of contexts) {
      const n = 1000;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await ctx.positions(0);
      (roundTrip[spin] ??= []).push(((performance.now() - t0) / n) * 1000);
    }
  }
  for (const ctx of [...contexts.map(([, c]) => c), ...idle]) await ctx.dispose();
  m.dispose();
}

// 2. Generation, one request at a time. The JS gap of a run: wall time in which neither worker ran
// a job, from the trace events the run added.
function gapsOf(events, after) {
  const ev = events.filter((e) => e.start >= after).sort((a, b) => a.start - b.start);
  let end = -Infinity;
  let idle = 0;
  for (const e of ev) {
    if (end > -Infinity && e.start > end) idle += e.start - end;
    end = Math.max(end, e.end);
  }
  return { idle, steps: new Set(ev.map((e) => e.step)).size };
}

const engines = [];
for (const mode of modes) {
  for (const spin of spins) {
    const eng = await createEngine({
      target: { model },
      draft: mode === "ar" ? undefined : { model: draft },
      mode,
      batchSize: 1,
      contextSize: 512,
      spinMicros: spin,
    });
    await eng.generate(prompt, { maxTokens: 16 }); // warm-up
    engines.push({ mode, spin, eng, msPerToken: [], gapUs: [] });
  }
}
for (let round = 0; round < rounds; round++) {
  for (const e of engines) {
    const before = e.eng.trace().reduce((m, ev) => Math.max(m, ev.end), -Infinity);
    const t0 = performance.now();
    const res = await e.eng.generate(prompt, { maxTokens: tokens });
    const ms = performance.now() - t0;
    const { idle, steps } = gapsOf(e.eng.trace(), before);
    e.msPerToken.push(ms / res.tokens.length);
    e.gapUs.push((idle / Math.max(1, steps)) * 1000);
  }
}
for (const e of engines) await e.eng.close();

const result = {
  schema: "minedraft-step-overhead/1",
  createdAt: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model },
  dist,
  model,
  draft: draft ?? null,
  tokens,
  rounds,
  roundTripUs: Object.fromEntries(spins.map((s) => [s, { median: median(roundTrip[s]), runs: roundTrip[s] }])),
  generation: engines.map((e) => ({
    mode: e.mode,
    spinMicros: e.spin,
    msPerToken: median(e.msPerToken),
    jsGapUsPerStep: median(e.gapUs),
    runs: { msPerToken: e.msPerToken, jsGapUsPerStep: e.gapUs },
  })),
};
console.log(`trivial job round trip (median of ${rounds} x 1000):`);
for (const s of spins)
  console.log(`  spinMicros ${String(s).padStart(5)}: ${result.roundTripUs[s].median.toFixed(1)} us`);
console.log(`single request, ${tokens} tokens, median of ${rounds} rounds:`);
for (const g of result.generation) {
  const base = result.generation.find((x) => x.mode === g.mode && x.spinMicros === spins[0]);
  console.log(
    `  ${g.mode.padEnd(3)} spinMicros ${String(g.spinMicros).padStart(5)}: ${g.msPerToken.toFixed(3)} ms/token ` +
      `(${(base.msPerToken / g.msPerToken).toFixed(2)}x), JS gap ${g.jsGapUsPerStep.toFixed(0)} us/step`,
  );
}
if (args.json) {
  writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`JSON written to ${args.json}`);
}
