#!/usr/bin/env node
// Admission under load: N requests arriving over time (Poisson, a fixed seed, so every configuration gets the same
// arrivals, prompts and lengths) through psd at batch 4, with overlapped admission (a request admitted while others
// hold drafts is prefilled inside the next step) against admission between steps (both workers stop the running
// requests for the prefill). TTFT p50 / p99, mean e2e and throughput (tokens over first submission to last
// completion), in interleaved rounds in one process (the order alternates: ABBA), outputs checked identical.
//   npm run bench:admission -- MODEL_DIR OUT.json [rounds] [rate req/s] [requests]   (after npm run build:ts)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createEngine } from "../dist/index.js";

const [dir, outFile, roundsArg, rateArg, countArg] = process.argv.slice(2);
if (!dir || !outFile) {
  console.error("usage: npm run bench:admission -- MODEL_DIR OUT.json [rounds] [rate req/s] [requests]");
  process.exit(2);
}
const rounds = Number(roundsArg ?? 2);
const rate = Number(rateArg ?? 2);
const count = Number(countArg ?? 24);
const target = path.join(dir, "target.gguf");
const draft = path.join(dir, "draft.gguf");

// a small seeded PRNG (mulberry32): arrivals, prompt lengths and output lengths
let state = 0x2545f491;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const TEXT =
  "The history of the city begins with a small settlement on the river, where traders met to exchange grain, " +
  "salt and cloth. Over the centuries the market grew into a town, the town into a city, and the city into the " +
  "capital of a province whose roads reached the sea. ";
const WORKLOAD = Array.from({ length: count }, (_, i) => {
  const words = TEXT.split(" ");
  const start = Math.floor(random() * words.length);
  const length = 20 + Math.floor(random() * 140); // 20..160 words
  const prompt = Array.from({ length }, (_, j) => words[(start + j) % words.length]).join(" ");
  return {
    prompt: `Request ${i}: ${prompt}`,
    maxTokens: 32 + Math.floor(random() * 97), // 32..128
    gapMs: (-Math.log(1 - random()) / rate) * 1000,
  };
});

const split = { target: { model: target, threads: 1 }, draft: { model: draft, threads: 1 }, adaptThreads: false };
const CONFIGS = [
  { name: "psd overlapAdmission", opts: { mode: "psd", overlapAdmission: true, ...split } },
  { name: "psd overlapAdmission:false", opts: { mode: "psd", overlapAdmission: false, ...split } },
];

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const results = Object.fromEntries(CONFIGS.map((c) => [c.name, []]));
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? CONFIGS : [...CONFIGS].reverse();
  for (const c of order) {
    const engine = await createEngine({ batchSize: 4, draftTokens: 4, contextSize: 1024, ...c.opts });
    await engine.generate("warm up", { maxTokens: 8 });
    engine.resetStats();
    const t0 = performance.now();
    const pending = [];
    for (const w of WORKLOAD) {
      await sleep(w.gapMs);
      pending.push(engine.generate(w.prompt, { maxTokens: w.maxTokens }));
    }
    const out = await Promise.all(pending);
    const ms = performance.now() - t0;
    const s = engine.stats();
    const tokens = out.reduce((a, r) => a + r.tokens.length, 0);
    const ttft = out.map((r) => r.stats.ttftMs);
    const trace = engine.trace();
    const inStep = trace.filter((e) => e.kind === "prefill" && e.batchSizes !== undefined).length;
    const row = {
      round,
      tokens,
      ms,
      tokensPerSecond: tokens / (ms / 1000),
      ttftP50Ms: quantile(ttft, 0.5),
      ttftP99Ms: quantile(ttft, 0.99),
      ttftMeanMs: ttft.reduce((a, b) => a + b, 0) / ttft.length,
      meanE2EMs: out.reduce((a, r) => a + r.stats.e2eMs, 0) / out.length,
      prefillMs: s.prefillMs,
      prefillJobsInSteps: inStep,
      acceptanceRate: s.acceptanceRate,
      steps: s.steps,
      promptTokens: out.map((r) => r.stats.promptTokens),
      outputs: out.map((r) => r.tokens),
    };
    results[c.name].push(row);
    console.error(
      `${round} ${c.name}: ${row.tokensPerSecond.toFixed(1)} tok/s, TTFT p50 ${row.ttftP50Ms.toFixed(0)} ms p99 ${row.ttftP99Ms.toFixed(0)} ms, e2e ${row.meanE2EMs.toFixed(0)} ms, in-step prefill jobs ${inStep}`,
    );
    await engine.close();
  }
}
const [a, b] = CONFIGS.map((c) => results[c.name]);
const identical = a.every((r, i) => JSON.stringify(r.outputs) === JSON.stringify(b[i].outputs));
console.error(`outputs identical across configurations: ${identical}`);
writeFileSync(
  outFile,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      models: dir,
      batchSize: 4,
      draftTokens: 4,
      threads: "1 + 1",
      rate,
      requests: count,
      rounds,
      workload: WORKLOAD.map((w) => ({ maxTokens: w.maxTokens, gapMs: w.gapMs })),
      outputsIdentical: identical,
      results,
    },
    null,
    2,
  ),
);
