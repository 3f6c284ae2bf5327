#!/usr/bin/env node
// auto's decisions step by step, beside ar, on one cold wave of requests (the setting of the
// incumbents' 8-request run, docs/performance.md "Against llama.cpp's tools"): where auto's time goes against
// plain decoding.
//
//   npm run build:ts
//   node scripts/auto-trail.mjs --model T.gguf --draft D.gguf [--requests 8] [--max-tokens 48] [-k 4] [--rounds 1]
//
// Each round opens a fresh engine per mode (ar over all requests; auto with sub-batches of half),
// warms it up on 4 tokens, then runs the requests at once. Per auto step it prints the choice
// (s = sequential, o = overlapped; k; P = calibration or probe), the step's wall ms, and its calls
// (draft / verify: requests / tokens in the pass).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    draft: { type: "string" },
    requests: { type: "string", default: "8" },
    "max-tokens": { type: "string", default: "48" },
    k: { type: "string", short: "k", default: "4" },
    rounds: { type: "string", default: "1" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help || !args.model || !args.draft) {
  console.log(
    "usage: node scripts/auto-trail.mjs --model T.gguf --draft D.gguf [--requests 8] [--max-tokens 48] [-k 4] " +
      "[--rounds 1]",
  );
  process.exit(args.help ? 0 : 2);
}
const { createEngine } = await import(path.join(root, "dist/index.js"));
const { BUILTIN_PROMPTS } = await import(path.join(root, "dist/bench/prompts.js"));
const { unionMs } = await import(path.join(root, "dist/bench/summarize.js"));

const requests = Number(args.requests);
const prompts = Array.from({ length: requests }, (_, i) => BUILTIN_PROMPTS[i % BUILTIN_PROMPTS.length]);
const maxTokens = Number(args["max-tokens"]);

/** Steps of a trace, in order: choice, wall span and calls. */
function steps(trace) {
  const byStep = new Map();
  for (const e of trace) {
    if (e.kind === "prefill") continue;
    const s = byStep.get(e.step) ?? { start: e.start, end: e.end, decision: e.decision, calls: [] };
    s.start = Math.min(s.start, e.start);
    s.end = Math.max(s.end, e.end);
    s.calls.push(`${e.kind} ${e.requests.length}${e.tokens ? `/${e.tokens}` : ""}`);
    byStep.set(e.step, s);
  }
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([step, s]) => ({ step, ...s }));
}

const ratios = [];
for (let round = 1; round <= Number(args.rounds); round++) {
  const rate = {};
  for (const mode of ["ar", "auto"]) {
    const engine = await createEngine({
      target: { model: args.model },
      draft: mode === "ar" ? undefined : { model: args.draft },
      mode,
      draftTokens: Number(args.k),
      batchSize: mode === "ar" ? requests : Math.ceil(requests / 2),
      contextSize: 1024,
    });
    try {
      await engine.generate(prompts[0], { maxTokens: 4 }); // warm-up (touches every weight)
      engine.resetStats();
      await Promise.all(prompts.map((p) => engine.generate(p, { maxTokens, temperature: 0 })));
      const s = engine.stats();
      const trace = engine.trace();
      const st = steps(trace);
      const stepMs = st.reduce((n, x) => n + x.end - x.start, 0);
      const prefillMs = unionMs(trace.filter((e) => e.kind === "prefill"));
      rate[mode] = s.tokensPerSecond;
      console.log(
        `round ${round} ${mode}: ${s.tokensPerSecond.toFixed(2)} tok/s, ${st.length} steps ` +
          `(${stepMs.toFixed(0)} ms), prefill ${prefillMs.toFixed(0)} ms`,
      );
      if (mode === "auto") {
        for (const x of st) {
          const d = x.decision;
          const choice = d ? `${d.schedule[0]}${d.k}${d.probe ? "P" : ""}` : "-";
          console.log(
            `  ${String(x.step).padStart(3)} ${choice.padEnd(4)} ${(x.end - x.start).toFixed(0).padStart(5)} ms ` +
              ` ${x.calls.join(", ")}`,
          );
        }
      }
    } finally {
      await engine.close();
    }
  }
  ratios.push(rate.auto / rate.ar);
  console.log(`round ${round} auto / ar: ${(rate.auto / rate.ar).toFixed(2)}x`);
}
if (ratios.length > 1)
  console.log(`auto / ar over ${ratios.length} rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")}`);
