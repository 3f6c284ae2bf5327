#!/usr/bin/env node
// Fuzzes llama.cpp's model loader through minedraft with seeded mutations of a tiny synthetic model; each file
// loads in a child process, so crashes and hangs are reported with their mutation (runner: test/support/gguf-fuzz.mjs).
//
//   node scripts/fuzz-gguf.mjs [--seed N] [--count N] [--time-limit SECONDS] [--kind KIND] [--keep DIR] [--json]
//   node scripts/fuzz-gguf.mjs --replay FILE...     (loads kept files the same way: one line per file)
//
// Needs the built addon and dist/ (npm run build). Exit codes: 0 no crash, 1 a crash or hang, 2 bad usage.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MUTATION_KINDS } from "../test/support/gguf.mjs";
import { runChild, runFuzz } from "../test/support/gguf-fuzz.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// --- CLI ---------------------------------------------------------------------------------------------------------

function usage(msg) {
  process.stderr.write(
    `fuzz-gguf: ${msg}\nusage: node scripts/fuzz-gguf.mjs [--seed N] [--count N] [--time-limit SECONDS] [--kind ` +
      `${MUTATION_KINDS.join("|")}] [--keep DIR] [--json]\n`,
  );
  process.exit(2);
}

async function replay(files) {
  let crashes = 0;
  for (const file of files) {
    const r = await runChild([file], 60_000);
    if (r.crash) crashes++;
    const d = r.done[0];
    console.log(
      `${file}: ` +
        (r.crash
          ? `CRASH ${r.crash}`
          : d.status === "loaded"
            ? "loaded"
            : `${d.stage !== "load" ? `error after load (${d.stage}) ` : ""}${d.name}: ${d.message}`),
    );
  }
  process.exit(crashes > 0 ? 1 : 0);
}

async function main(argv) {
  if (argv[0] === "--replay") return replay(argv.slice(1));
  const opts = { seed: 1, count: 500, timeLimitMs: Infinity, json: false };
  for (let a = 0; a < argv.length; a++) {
    const arg = argv[a];
    const val = () => argv[++a] ?? usage(`${arg} needs a value`);
    const int = (v) => (/^\d+$/.test(v) ? Number(v) : usage(`${arg} takes a non-negative integer, got ${v}`));
    if (arg === "--seed") opts.seed = int(val());
    else if (arg === "--count") opts.count = int(val());
    else if (arg === "--time-limit") opts.timeLimitMs = int(val()) * 1000;
    else if (arg === "--kind") {
      opts.kind = val();
      if (!MUTATION_KINDS.includes(opts.kind)) usage(`unknown kind ${opts.kind}`);
    } else if (arg === "--keep") opts.keepDir = path.resolve(val());
    else if (arg === "--json") opts.json = true;
    else if (arg === "--help" || arg === "-h") usage("help");
    else usage(`unknown argument ${arg}`);
  }
  if (!existsSync(path.join(root, "dist", "native", "model.js")))
    usage("dist/ is not built: run npx tsc -p tsconfig.json");
  const res = await runFuzz({ ...opts, log: (s) => process.stderr.write(`${s}\n`) });
  if (opts.json) process.stdout.write(`${JSON.stringify({ seed: opts.seed, count: opts.count, ...res }, null, 2)}\n`);
  else {
    const pct = (n) => `${((100 * n) / Math.max(1, res.total)).toFixed(1)}%`;
    console.log(`fuzz-gguf: seed ${opts.seed}, ${res.total} mutated files in ${(res.ms / 1000).toFixed(1)} s`);
    console.log(`  loaded (mutation harmless): ${res.loaded} (${pct(res.loaded)})`);
    console.log(
      `  refused by minedraft's GGUF validation: ${res.rejectedByValidation} (${pct(res.rejectedByValidation)})`,
    );
    console.log(`  refused by llama.cpp's loader (clean error): ${res.rejectedByLlama} (${pct(res.rejectedByLlama)})`);
    console.log(`  other errors: ${res.otherErrors}`);
    console.log(`  crashes / hangs: ${res.crashes.length}`);
    console.log("  by mutation kind (n: loaded / validation / llama.cpp / crash):");
    for (const [k, v] of Object.entries(res.byKind).sort())
      console.log(
        `    ${k.padEnd(9)} ${String(v.n).padStart(4)}: ${v.loaded} / ${v.validation} / ${v.llama} / ${v.crash}`,
      );
    console.log("  most frequent errors:");
    for (const [m, n] of Object.entries(res.messages)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15))
      console.log(`    ${String(n).padStart(4)}  ${m}`);
    for (const c of res.crashes)
      console.log(
        `  CRASH #${c.index} seed ${c.seed} ${c.kind}: ${c.what}\n    ${c.how}${c.file ? `\n    kept: ${c.file}` : ""}`,
      );
  }
  process.exit(res.crashes.length > 0 ? 1 : 0);
}

await main(process.argv.slice(2));
