#!/usr/bin/env node
// What the HTTP door costs: the same workload (N prompts at once, greedy) through engine.generate()
// and through the server (streaming /v1/completions over loopback, fetch), on one engine, rounds
// alternating (ABBA) so machine drift hits both alike. Prints JSON: tokens/s of each and their ratio,
// and whether the HTTP tokens equal the library's.
//
//   node scripts/serve-overhead.mjs [--model T.gguf --draft D.gguf] [--mode psd] [--batch-size 4]
//       [--prompts 8] [--max-tokens 48] [--rounds 6] [--json out.json]     (default models: the small synthetic pair)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    draft: { type: "string" },
    mode: { type: "string", default: "psd" },
    "batch-size": { type: "string", default: "4" },
    prompts: { type: "string", default: "8" },
    "max-tokens": { type: "string", default: "48" },
    rounds: { type: "string", default: "6" },
    json: { type: "string" },
  },
});
const lib = await import(pathToFileURL(path.join(root, "dist/index.js")).href);
const { BUILTIN_PROMPTS } = await import(pathToFileURL(path.join(root, "dist/bench/prompts.js")).href);
const pair = args.model
  ? { target: args.model, draft: args.draft }
  : await lib.ensureSyntheticPair(undefined, { preset: "small" });
const prompts = BUILTIN_PROMPTS.slice(0, Number(args.prompts));
const maxTokens = Number(args["max-tokens"]);
const engine = await lib.createEngine({
  mode: args.mode,
  batchSize: Number(args["batch-size"]),
  target: { model: pair.target },
  ...(args.mode === "ar" ? {} : { draft: { model: pair.draft } }),
  contextSize: 512,
});
const server = lib.createServer(engine, { modelName: "m" });
const url = await server.listen({ port: 0 });

async function viaLibrary() {
  const results = await Promise.all(prompts.map((p) => engine.generate(p, { maxTokens, temperature: 0 })));
  return results.map((r) => r.tokens);
}

async function viaHttp() {
  return Promise.all(
    prompts.map(async (prompt) => {
      const response = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true, return_tokens: true }),
      });
      const events = (await response.text()).split("\n\n").filter((e) => e.startsWith("data: {"));
      return JSON.parse(events.at(-1).slice(6)).choices[0].tokens;
    }),
  );
}

const runs = { library: [], http: [] };
let identical = true;
let reference;
const timed = async (name, f) => {
  const start = performance.now();
  const tokens = await f();
  const ms = performance.now() - start;
  runs[name].push((tokens.reduce((n, t) => n + t.length, 0) / ms) * 1000);
  reference ??= JSON.stringify(tokens);
  identical &&= JSON.stringify(tokens) === reference;
};
await viaLibrary(); // warm-up
await viaHttp();
for (let round = 0; round < Number(args.rounds); round++) {
  const order =
    round % 2 === 0
      ? [
          ["library", viaLibrary],
          ["http", viaHttp],
        ]
      : [
          ["http", viaHttp],
          ["library", viaLibrary],
        ];
  for (const [name, f] of order) await timed(name, f);
}
await server.close({ graceMs: 0 });
await engine.close();
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const report = {
  models: pair,
  mode: args.mode,
  prompts: prompts.length,
  maxTokens,
  rounds: Number(args.rounds),
  tokensPerSecond: { library: mean(runs.library), http: mean(runs.http) },
  httpOverLibrary: mean(runs.http) / mean(runs.library),
  runs,
  identicalTokens: identical,
};
console.log(JSON.stringify(report, null, 2));
if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
