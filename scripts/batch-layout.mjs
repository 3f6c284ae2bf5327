#!/usr/bin/env node
// What a verification pass costs depending on the sequence ids in it, with one KV stream per
// sequence (llama.cpp runs one forward pass per run of consecutive ids) and with unified KV:
//
//   node scripts/batch-layout.mjs --model T.gguf [--threads 2] [--reps 5]
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({ options: { model: { type: "string" }, threads: { type: "string", default: "2" }, reps: { type: "string", default: "5" } } });
if (!args.model) {
  console.error("usage: node scripts/batch-layout.mjs --model T.gguf [--threads 2] [--reps 5]");
  process.exit(2);
}
const { LlamaModel, LlamaContext } = await import(path.join(root, "dist/index.js"));
const model = await LlamaModel.load(args.model, { device: "cpu" });
const prompt = model.tokenize("The history of the printing press");
const pos = prompt.length - 1;
// [name, sequence ids, drafts per sequence]: 4 x 5-token verifications (psd / sd), and 8 x 1-token
// plain passes over one or two runs of ids (auto's sequential steps over two partly filled
// sub-batches, or a tail whose holes were not closed)
const draft4 = [100, 200, 300, 400];
const layouts = [
  ["consecutive 0,1,2,3", [0, 1, 2, 3], draft4],
  ["reversed 3,2,1,0", [3, 2, 1, 0], draft4],
  ["gaps 0,2,4,6", [0, 2, 4, 6], draft4],
  ["one run 0-7", [0, 1, 2, 3, 4, 5, 6, 7], []],
  ["two runs 0-3, 12-15", [0, 1, 2, 3, 12, 13, 14, 15], []],
];
for (const kvUnified of [false, true]) {
  const ctx = await LlamaContext.create(model, { contextSize: 64, sequences: 16, threads: Number(args.threads), kvUnified });
  for (let s = 0; s < 16; s++) await ctx.prefill(s, 0, prompt.slice(0, -1));
  for (const [name, seqs, draft] of layouts) {
    const ms = [];
    for (let r = 0; r < Number(args.reps); r++) {
      const t0 = performance.now();
      await ctx.verify(seqs.map((seq) => ({ seq, pos, pending: prompt[pos], draft })));
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    const shape = `${seqs.length} x ${draft.length + 1} token${draft.length ? "s" : ""}`;
    console.log(`${kvUnified ? "unified KV      " : "stream per seq  "} ${name.padEnd(20)} ${shape}: median ${ms[ms.length >> 1].toFixed(1)} ms`);
  }
  await ctx.dispose();
}
model.dispose();
