#!/usr/bin/env node
// Time the native per-row sampling math (cpp/sampling.cc) on vocabulary-wide rows: the work a verify
// job does for each output row after the decode (greedy: argmax; sampled: the filtered distribution,
// then a residual or plain sample) and a draft job for each drafted token. Rows are random logits,
// normal with the given spread; every build's addon is loaded from its own dist/ (before/after).
//
//   node scripts/sampling-bench.mjs [--dist DIR ...] [--vocab 32000] [--spread 3] [--reps 64] [--json out.json]
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    dist: { type: "string", multiple: true },
    vocab: { type: "string", default: "32000" },
    spread: { type: "string", default: "3" },
    reps: { type: "string", default: "64" },
    json: { type: "string" },
  },
});
const vocab = Number(args.vocab);
const reps = Number(args.reps);
const rowsPerRep = 8;

// Box-Muller over a seeded LCG: the same rows for every build
let seed = 1;
const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) + 0.5) / 2 ** 32;
const rows = Array.from({ length: rowsPerRep }, () =>
  new Float32Array(vocab).map(
    () => Number(args.spread) * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()),
  ),
);

const CASES = [
  { name: "argmax (greedy)", run: (s, x) => s.argmax(x) },
  ...[
    ["filteredDist T 1", { temperature: 1, topK: 0, topP: 1 }],
    ["filteredDist T 0.8 top-k 40", { temperature: 0.8, topK: 40, topP: 1 }],
    ["filteredDist T 0.8 top-p 0.95", { temperature: 0.8, topK: 0, topP: 0.95 }],
    ["filteredDist T 0.8 top-k 40 top-p 0.95", { temperature: 0.8, topK: 40, topP: 0.95 }],
  ].map(([name, sampling]) => ({ name, run: (s, x) => s.filteredDist(x, sampling)[0] })),
];

function time(fn) {
  fn(rows[0]); // warm
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) for (const x of rows) fn(x);
  return ((performance.now() - t0) * 1000) / (reps * rows.length);
}

const builds = args.dist?.length ? args.dist : [path.join(root, "dist")];
const results = [];
for (const dir of builds) {
  const { loadAddon } = await import(pathToFileURL(path.join(path.resolve(dir), "native/addon.js")).href);
  const s = (await loadAddon()).sampling;
  const perRow = {};
  for (const c of CASES) perRow[c.name] = time((x) => c.run(s, x));
  // p and q from different rows: with q = p the residual has no mass and sampleResidual falls back to sampleRow
  const p = s.filteredDist(rows[0], { temperature: 1, topK: 0, topP: 1 });
  const q = s.filteredDist(rows[1], { temperature: 1, topK: 0, topP: 1 });
  perRow["sampleRow + sampleResidual (T 1 rows)"] = time(() => s.sampleRow(p, 0.5) + s.sampleResidual(p, q, 3, 0.3));
  results.push({ build: path.resolve(dir), microsecondsPerRow: perRow });
  console.log(`${path.resolve(dir)}`);
  for (const [name, us] of Object.entries(perRow))
    console.log(`  ${name.padEnd(42)} ${us.toFixed(1).padStart(8)} µs/row`);
}
if (args.json)
  writeFileSync(
    args.json,
    `${JSON.stringify({ vocab, spread: Number(args.spread), reps, rows: rowsPerRep, results }, null, 2)}\n`,
  );
