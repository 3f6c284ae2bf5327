#!/usr/bin/env node
// The workload tail: 16 requests of mixed lengths (16..256 tokens) through psd at batch 4, so that sub-batches
// empty out as requests finish. psd with post-verify (one running request drafts ahead while the target
// verifies) against psd without it (sequential SD in the tail), and sd / ar, in interleaved rounds in one process.
//   npm run bench:tail -- MODEL_DIR OUT.json [rounds]   (after npm run build:ts)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createEngine } from "../dist/index.js";

const [dir, outFile, roundsArg] = process.argv.slice(2);
if (!dir || !outFile) {
  console.error("usage: npm run bench:tail -- MODEL_DIR OUT.json [rounds]");
  process.exit(2);
}
const rounds = Number(roundsArg ?? 2);
const target = path.join(dir, "target.gguf");
const draft = path.join(dir, "draft.gguf");
const PROMPTS = ["Once upon a time", "The history of the city begins", "def parse(tokens):", "Dear committee,"];
// 16 requests, lengths spread over 16..256 (a fixed shuffle, so every configuration gets the same workload)
const LENGTHS = [256, 16, 128, 48, 224, 32, 96, 160, 16, 192, 64, 240, 24, 112, 80, 256];
const split = { target: { model: target, threads: 1 }, draft: { model: draft, threads: 1 }, adaptThreads: false };
const CONFIGS = [
  { name: "psd post-verify 1+1", opts: { mode: "psd", postVerify: true, ...split } },
  { name: "psd postVerify:false 1+1", opts: { mode: "psd", postVerify: false, ...split } },
  { name: "sd 1+1", opts: { mode: "sd", ...split } },
  { name: "sd default", opts: { mode: "sd", target: { model: target }, draft: { model: draft } } },
  { name: "ar default", opts: { mode: "ar", target: { model: target } } },
];
const results = Object.fromEntries(CONFIGS.map((c) => [c.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const c of CONFIGS) {
    const engine = await createEngine({ batchSize: 4, draftTokens: 4, contextSize: 512, ...c.opts });
    await engine.generate("warm up", { maxTokens: 8 });
    engine.resetStats();
    const t0 = performance.now();
    const out = await Promise.all(
      LENGTHS.map((n, i) => engine.generate(PROMPTS[i % PROMPTS.length], { maxTokens: n })),
    );
    const ms = performance.now() - t0;
    const s = engine.stats();
    const tokens = out.reduce((a, r) => a + r.tokens.length, 0);
    results[c.name].push({
      tokens,
      ms,
      tokensPerSecond: tokens / (ms / 1000),
      meanE2EMs: out.reduce((a, r) => a + r.stats.e2eMs, 0) / out.length,
      acceptanceRate: s.acceptanceRate,
      postVerify: s.postVerify,
      steps: s.steps,
      outputs: out.map((r) => r.tokens),
    });
    console.error(`${round} ${c.name}: ${(tokens / (ms / 1000)).toFixed(1)} tok/s`, s.postVerify ?? "");
    await engine.close();
  }
}
writeFileSync(outFile, JSON.stringify({ lengths: LENGTHS, rounds, models: dir, results }, null, 2));
