#!/usr/bin/env node
// One request, N tokens, interleaved rounds in one process: psd with pre- and post-verify and with post-verify
// alone (1 + 1 threads) against psd without them (sequential SD at 1 + 1), sd at 1 + 1, and sd / ar / auto at
// their default placement.
//   npm run bench:post-verify -- MODEL_DIR OUT.json [tokens] [rounds]   (after npm run build:ts)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createEngine } from "../dist/index.js";

const [dir, outFile, tokensArg, roundsArg] = process.argv.slice(2);
const tokens = Number(tokensArg ?? 256);
const rounds = Number(roundsArg ?? 3);
const target = path.join(dir, "target.gguf");
const draft = path.join(dir, "draft.gguf");
const PROMPTS = ["Once upon a time", "The history of the city begins", "def parse(tokens):"];
const split = { target: { model: target, threads: 1 }, draft: { model: draft, threads: 1 }, adaptThreads: false };
const CONFIGS = [
  { name: "psd pre+post-verify 1+1", opts: { mode: "psd", batchSize: 1, postVerify: true, preVerify: true, ...split } },
  { name: "psd post-verify 1+1", opts: { mode: "psd", batchSize: 1, postVerify: true, ...split } },
  { name: "psd postVerify:false 1+1", opts: { mode: "psd", batchSize: 1, postVerify: false, ...split } },
  { name: "sd 1+1", opts: { mode: "sd", batchSize: 1, ...split } },
  { name: "sd default", opts: { mode: "sd", batchSize: 1, target: { model: target }, draft: { model: draft } } },
  { name: "ar default", opts: { mode: "ar", batchSize: 1, target: { model: target } } },
  // auto prices post-verify for one request by measuring it (bursts), against its sequential choice
  { name: "auto default", opts: { mode: "auto", batchSize: 1, target: { model: target }, draft: { model: draft } } },
];
const results = Object.fromEntries(CONFIGS.map((c) => [c.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const c of CONFIGS) {
    const engine = await createEngine({ draftTokens: 4, contextSize: 1024, ...c.opts });
    await engine.generate("warm up", { maxTokens: 8 });
    const prompt = PROMPTS[round % PROMPTS.length];
    engine.resetStats?.();
    const t0 = performance.now();
    const r = await engine.generate(prompt, { maxTokens: tokens });
    const ms = performance.now() - t0;
    const s = engine.stats();
    const trace = engine.trace?.() ?? [];
    const busy = (worker, kind) => trace.filter((e) => e.worker === worker && e.kind === kind);
    const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    results[c.name].push({
      prompt,
      tokens: r.tokens.length,
      ms,
      tokensPerSecond: r.tokens.length / (ms / 1000),
      acceptanceRate: s.acceptanceRate,
      meanAcceptanceLength: s.meanAcceptanceLength,
      postVerify: s.postVerify,
      preVerify: s.preVerify,
      plainVerifyMsMean: mean(
        busy("target", "verify")
          .filter((e) => e.k === 0)
          .map((e) => e.end - e.start),
      ),
      autoDecisions: s.auto?.decisions,
      verifyMsMean: mean(busy("target", "verify").map((e) => e.end - e.start)),
      draftMsMean: mean(busy("draft", "draft").map((e) => e.end - e.start)),
      steps: s.steps,
      output: r.tokens,
    });
    console.error(
      `${round} ${c.name}: ${(r.tokens.length / (ms / 1000)).toFixed(1)} tok/s`,
      s.preVerify ?? "",
      s.postVerify ?? "",
    );
    await engine.close();
  }
}
writeFileSync(outFile, JSON.stringify({ tokens, rounds, models: dir, results }, null, 2));
