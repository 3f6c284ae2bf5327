#!/usr/bin/env node
// The event loop while a long prompt arrives: 8 greedy streams run on one engine, then a 1 MiB prompt
// is submitted (through generate(), and with --http through the server's /v1/completions); prints the
// largest event-loop delay during the run (perf_hooks.monitorEventLoopDelay) as JSON, for each door.
//
//   node scripts/event-loop-delay.mjs [--dist DIR] [--http] [--model T.gguf]   (default: the tiny synthetic pair)
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { monitorEventLoopDelay } from "node:perf_hooks";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    dist: { type: "string", default: path.join(root, "dist") },
    http: { type: "boolean" },
    model: { type: "string" },
  },
});
const lib = await import(pathToFileURL(path.join(args.dist, "index.js")).href);
const target = args.model ?? (await lib.ensureSyntheticPair(undefined, { preset: "tiny", dtype: "f32" })).target;
const engine = await lib.createEngine({ mode: "ar", batchSize: 8, target: { model: target }, contextSize: 512 });
const longPrompt = "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil((1 << 20) / 45)).slice(0, 1 << 20);

async function measure(door, submitLong) {
  const streams = Array.from({ length: 8 }, (_, i) =>
    engine.generate(`Stream ${i}: once upon a time`, { maxTokens: 200 }),
  );
  await new Promise((r) => setTimeout(r, 50)); // the streams are decoding
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await new Promise((r) => setTimeout(r, 20)); // the monitor's timer runs before the long prompt comes
  const started = performance.now();
  const outcome = await submitLong().then(
    () => "accepted",
    (e) => `refused: ${e.message.slice(0, 80)}`,
  );
  const longMs = performance.now() - started;
  await Promise.all(streams);
  h.disable();
  return {
    door,
    maxEventLoopDelayMs: h.max / 1e6,
    p99EventLoopDelayMs: h.percentile(99) / 1e6,
    longPromptMs: longMs,
    outcome,
  };
}

// twice per door: the first long input after start-up also pays V8's compilation of the paths it takes
const results = [];
for (const round of ["first", "second"])
  results.push({ round, ...(await measure("generate()", () => engine.generate(longPrompt, { maxTokens: 4 }))) });
if (args.http) {
  const server = lib.createServer(engine, { modelName: "m", bodyLimit: 4 << 20 });
  const url = await server.listen({ port: 0 });
  // the client's own work (serialising 1 MiB) is done before the measurement: only the server's counts
  const body = Buffer.from(JSON.stringify({ prompt: longPrompt, max_tokens: 4 }));
  const post = () =>
    fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
      async (r) => {
        const t = await r.text();
        if (r.status !== 200) throw new Error(`${r.status} ${t}`);
      },
    );
  for (const round of ["first", "second"]) results.push({ round, ...(await measure("POST /v1/completions", post)) });
  await server.close({ graceMs: 0 });
}
await engine.close();
console.log(JSON.stringify({ dist: args.dist, results }, null, 2));
