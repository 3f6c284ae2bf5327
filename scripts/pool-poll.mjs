#!/usr/bin/env node
// What waking a threadpool's threads costs a plain decoding pass: back-to-back plain passes over
// --seqs sequences with the target's ggml threadpool sleeping between graphs (poll 0) and polling
// (poll 1), alternating in blocks of --passes in one process (context.setThreadpoolPoll), beside an
// idle draft context as an engine holds. Prints the median ms per pass of each level.
//
//   node scripts/pool-poll.mjs --model T.gguf [--draft D.gguf] [--seqs 8] [--passes 15] [--rounds 8] [--json out.json]
import path from "node:path";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    draft: { type: "string" },
    seqs: { type: "string", default: "8" },
    passes: { type: "string", default: "15" },
    rounds: { type: "string", default: "8" },
    json: { type: "string" },
  },
});
if (!args.model) {
  console.log("usage: node scripts/pool-poll.mjs --model T.gguf [--draft D.gguf] [--seqs 8] [--passes 15] [--rounds 8] [--json out.json]");
  process.exit(2);
}
const { LlamaModel } = await import(path.join(root, "dist/native/model.js"));
const { LlamaContext } = await import(path.join(root, "dist/native/context.js"));
const seqs = Number(args.seqs);
const passes = Number(args.passes);
const rounds = Number(args.rounds);
const model = await LlamaModel.load(args.model, { logLevel: "error" });
const draft = args.draft ? await LlamaModel.load(args.draft, { logLevel: "error" }) : undefined;
const ctx = await LlamaContext.create(model, { sequences: seqs, contextSize: 512, threads: 2 });
const idle = draft ? await LlamaContext.create(draft, { sequences: seqs, contextSize: 512, threads: 2 }) : undefined;
const prompt = model.tokenize("The capital of France is a city that", true);
const state = Array.from({ length: seqs }, () => ({ pos: 0, pending: 0 }));
const restart = async () => {
  for (let s = 0; s < seqs; s++) {
    await ctx.prefill(s, 0, prompt.slice(0, -1));
    state[s] = { pos: prompt.length - 1, pending: prompt.at(-1) };
  }
};
await restart();
const msPerPass = { 0: [], 1: [] };
for (let round = 0; round < rounds; round++) {
  for (const level of [0, 1]) {
    await ctx.setThreadpoolPoll(level);
    if (state[0].pos + passes > 500) await restart();
    const t0 = performance.now();
    for (let i = 0; i < passes; i++) {
      const out = await ctx.verify(state.map((st, s) => ({ seq: s, pos: st.pos, pending: st.pending, draft: [] })));
      state.forEach((st, s) => {
        st.pending = out[s].alt[0];
        st.pos++;
      });
    }
    msPerPass[level].push((performance.now() - t0) / passes);
  }
}
await ctx.dispose();
await idle?.dispose();
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const result = {
  model: path.basename(path.dirname(path.resolve(args.model))),
  seqs,
  passes,
  rounds,
  poll0: { medianMs: median(msPerPass[0]), blocks: msPerPass[0] },
  poll1: { medianMs: median(msPerPass[1]), blocks: msPerPass[1] },
};
console.log(`${result.model}, ${seqs} sequences x 1 token, 2 threads: poll 0 ${result.poll0.medianMs.toFixed(2)} ms/pass, poll 1 ${result.poll1.medianMs.toFixed(2)} ms/pass (${(result.poll0.medianMs / result.poll1.medianMs).toFixed(3)}x), medians of ${rounds} blocks of ${passes}`);
if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
