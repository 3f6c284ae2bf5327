#!/usr/bin/env node
// Where greedy outputs of two runs part (e.g. sd / psd against ar on a GPU, from `generate --json`),
// and how close the two candidate tokens are in the target's own logits, computed here on the CPU:
// a near-tie resolved differently by rounding, or a real disagreement.
//
//   node scripts/greedy-divergence.mjs --model T.gguf --reference ar.json OTHER.json [...]
//
// The reference run's tokens are fed to the target in one CPU pass (logits for every position). For
// each prompt where OTHER differs: the first differing position, both tokens' logits, the top-2 gap.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args, positionals } = parseArgs({
  options: { model: { type: "string" }, reference: { type: "string" } },
  allowPositionals: true,
});
if (!args.model || !args.reference || positionals.length === 0) {
  console.error("usage: node scripts/greedy-divergence.mjs --model T.gguf --reference ar.json OTHER.json [...]");
  process.exit(2);
}
const { LlamaModel, LlamaContext } = await import(path.join(root, "dist/index.js"));
const requests = (file) => JSON.parse(readFileSync(file, "utf8")).requests;
const reference = requests(args.reference);
const model = await LlamaModel.load(args.model, { device: "cpu" });
const V = model.nVocab;
const longest = Math.max(...reference.map((r) => model.tokenize(r.prompt).length + r.tokens.length));
const ctx = await LlamaContext.create(model, {
  contextSize: Math.max(16, longest + 1),
  threads: 2,
  batchSize: Math.max(16, longest + 1),
});

// per prompt: the logits row of every generated position along the reference tokens
const rows = [];
const gaps = [];
for (const r of reference) {
  const p = model.tokenize(r.prompt);
  const all = [...p, ...r.tokens];
  await ctx.clear();
  const logits = await ctx.decode({
    tokens: all,
    pos: all.map((_, j) => j),
    seq: all.map(() => 0),
    logits: all.map(() => 1),
  });
  const at = (t) => logits.subarray((p.length - 1 + t) * V, (p.length + t) * V);
  rows.push(at);
  for (let t = 0; t < r.tokens.length; t++) {
    const row = at(t);
    let a = -Infinity,
      b = -Infinity;
    for (const x of row)
      if (x > a) [a, b] = [x, a];
      else if (x > b) b = x;
    gaps.push(a - b);
  }
}
gaps.sort((x, y) => x - y);
console.log(
  `target logits along ${path.basename(args.reference)}: median top-2 gap ${gaps[gaps.length >> 1].toFixed(4)} ` +
    `over ${gaps.length} positions`,
);

for (const file of positionals) {
  const other = requests(file);
  let same = 0;
  const lines = [];
  for (let i = 0; i < reference.length; i++) {
    const a = reference[i].tokens,
      b = other[i].tokens;
    const d = a.findIndex((x, t) => x !== b[t]);
    if (d < 0) {
      same++;
      continue;
    }
    const row = rows[i](d);
    let best = -Infinity,
      second = -Infinity;
    for (const x of row)
      if (x > best) [best, second] = [x, best];
      else if (x > second) second = x;
    const gap = row[b[d]] - row[a[d]];
    lines.push(
      `  prompt ${i}: position ${d}: reference ${a[d]}, other ${b[d]}; other - reference logit ` +
        `${gap >= 0 ? "+" : ""}${gap.toFixed(4)} (top-2 gap ${(best - second).toFixed(4)})`,
    );
  }
  console.log(`${path.basename(file)}: identical to the reference on ${same}/${reference.length} prompts`);
  for (const l of lines) console.log(l);
}
await ctx.dispose();
model.dispose();
