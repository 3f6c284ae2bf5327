#!/usr/bin/env node
// Soak test: many requests through one psd engine on the tiny synthetic pair (random prompts and lengths, some
// aborted, some sampled), sampling the process RSS every N completed requests. Fails (exit 1) when RSS grows by more
// than --max-growth after the warm-up, or when a request fails with anything but an AbortError.
//
//   npm run soak                        # 1,000 requests, tiny pair, RSS every 50 requests, 5% limit after 200
//   node scripts/soak.mjs --requests 3000 --pair micro --json soak.json
//
// Options: --requests N (1000) --pair tiny|micro (tiny) --sample-every N (50) --warmup N (200) --max-growth F (0.05)
//          --concurrency N (16) --seed N (1) --json FILE. Needs dist/ (npm run build). Runs itself with --expose-gc.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { rng } from "../test/support/gguf.mjs";

const self = fileURLToPath(import.meta.url);
if (typeof globalThis.gc !== "function") {
  const r = spawnSync(process.execPath, ["--expose-gc", self, ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

const root = path.resolve(path.dirname(self), "..");
const opts = {
  requests: 1000,
  pair: "tiny",
  sampleEvery: 50,
  warmup: 200,
  maxGrowth: 0.05,
  concurrency: 16,
  seed: 1,
  json: undefined,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in opts)) {
    console.error(`soak: unknown option ${argv[i]}`);
    process.exit(2);
  }
  const v = argv[++i];
  opts[key] = key === "pair" || key === "json" ? v : Number(v);
}
if (opts.warmup >= opts.requests) {
  console.error("soak: --warmup must be less than --requests");
  process.exit(2);
}

const lib = await import(pathToFileURL(path.join(root, "dist", "index.js")).href).catch(() => {
  console.error("soak: dist/ is not built (npm run build)");
  process.exit(2);
});
let tmp;
let pair;
if (opts.pair === "micro") {
  const { microPair } = await import("../test/support/gguf-fuzz.mjs");
  tmp = mkdtempSync(path.join(os.tmpdir(), "minedraft-soak-"));
  pair = await microPair(tmp);
} else {
  pair = await lib.ensureSyntheticPair(undefined, {
    preset: opts.pair,
    dtype: opts.pair === "tiny" ? "f32" : undefined,
  });
}

const r = rng(opts.seed);
const WORDS = (
  "once upon a time there was a little model that drafted tokens " + "for a bigger one and the big one checked them all"
).split(" ");
const rss = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().rss;
};
const mb = (b) => (b / 1048576).toFixed(1);

const engine = await lib.createEngine({
  mode: "psd",
  batchSize: 4,
  draftTokens: 4,
  contextSize: 512,
  target: { model: pair.target, threads: 1 },
  draft: { model: pair.draft, threads: 1 },
});

const heap = () => process.memoryUsage().heapUsed;
const samples = [{ done: 0, rss: rss(), heap: heap(), ms: 0 }];
const t0 = Date.now();
let submitted = 0;
let done = 0;
let aborted = 0;
const failed = [];
let tokens = 0;
const finish = new Map();

async function one(i) {
  // the first 2 x concurrency requests are the largest (longest prompts and outputs, all at once): llama.cpp's
  // compute buffers grow to the largest batch they have seen, and that high-water mark belongs to the warm-up
  const big = i < 2 * opts.concurrency;
  const prompt = Array.from({ length: big ? 24 : 1 + r.int(24) }, () => r.pick(WORDS)).join(" ");
  const maxTokens = big ? 64 : 1 + r.int(64);
  const sampled = r.next() < 0.25;
  const abortAfter = r.next() < 0.1 ? r.int(40) : -1;
  const ctrl = new AbortController();
  const timer = abortAfter >= 0 ? setTimeout(() => ctrl.abort(), abortAfter) : undefined;
  try {
    const out = await engine.generate(prompt, {
      maxTokens,
      signal: ctrl.signal,
      ...(sampled ? { temperature: 0.8, seed: i } : {}),
    });
    tokens += out.tokens.length;
    finish.set(out.stats.finishReason, (finish.get(out.stats.finishReason) ?? 0) + 1);
  } catch (e) {
    if (e?.name === "AbortError") aborted++;
    else failed.push(String(e?.stack ?? e));
  } finally {
    clearTimeout(timer);
    done++;
    if (done % opts.sampleEvery === 0) {
      samples.push({ done, rss: rss(), heap: heap(), ms: Date.now() - t0 });
      const s = samples.at(-1);
      process.stderr.write(
        `soak: ${done}/${opts.requests} requests, RSS ${mb(s.rss)} MB (JS heap ${mb(s.heap)} MB), ` +
          `${(s.ms / 1000).toFixed(0)} s\n`,
      );
    }
  }
}

// a bounded pool of in-flight requests (the engine queues beyond its 8 slots)
await new Promise((resolve) => {
  const next = () => {
    if (submitted >= opts.requests) {
      if (done === opts.requests) resolve();
      return;
    }
    const i = submitted++;
    one(i).then(next);
  };
  for (let k = 0; k < opts.concurrency; k++) next();
});
const stats = engine.stats();
await engine.close();
samples.push({ done, rss: rss(), heap: heap(), ms: Date.now() - t0, afterClose: true });
if (tmp) rmSync(tmp, { recursive: true, force: true });

const warm = samples.find((s) => s.done >= opts.warmup);
const end = samples.filter((s) => !s.afterClose).at(-1);
const after = samples.filter((s) => s.done >= opts.warmup && !s.afterClose);
const peak = Math.max(...after.map((s) => s.rss));
const growth = (end.rss - warm.rss) / warm.rss;
// least-squares slope of RSS over requests after warm-up
const n = after.length;
const mx = after.reduce((a, s) => a + s.done, 0) / n;
const my = after.reduce((a, s) => a + s.rss, 0) / n;
const slope =
  after.reduce((a, s) => a + (s.done - mx) * (s.rss - my), 0) /
  Math.max(
    1,
    after.reduce((a, s) => a + (s.done - mx) ** 2, 0),
  );
const report = {
  command: `node scripts/soak.mjs ${process.argv.slice(2).join(" ")}`.trim(),
  pair: opts.pair,
  requests: opts.requests,
  completed: done - aborted - failed.length,
  aborted,
  failed: failed.length,
  generatedTokens: tokens,
  finishReasons: Object.fromEntries(finish),
  seconds: +(end.ms / 1000).toFixed(1),
  tokensPerSecond: +stats.tokensPerSecond.toFixed(1),
  acceptanceRate: +stats.acceptanceRate.toFixed(3),
  rssMb: {
    start: +mb(samples[0].rss),
    afterWarmup: +mb(warm.rss),
    peakAfterWarmup: +mb(peak),
    end: +mb(end.rss),
    afterClose: +mb(samples.at(-1).rss),
  },
  growthAfterWarmup: +(growth * 100).toFixed(2),
  slopeBytesPerRequest: Math.round(slope),
  maxGrowthPercent: opts.maxGrowth * 100,
  jsHeapMb: { afterWarmup: +mb(warm.heap), end: +mb(end.heap) },
  samples: samples.map((s) => ({ done: s.done, rssMb: +mb(s.rss), heapMb: +mb(s.heap), s: +(s.ms / 1000).toFixed(1) })),
};
const pass = failed.length === 0 && growth <= opts.maxGrowth;
console.log(
  `soak: ${report.requests} requests on the ${opts.pair} pair in ${report.seconds} s (${report.completed} ` +
    `completed, ${aborted} aborted, ${failed.length} failed; ${tokens} tokens, ${report.tokensPerSecond} tok/s)`,
);
console.log(
  `soak: RSS ${report.rssMb.start} MB at start, ${report.rssMb.afterWarmup} MB after ${warm.done} requests ` +
    `(warm-up), peak ${report.rssMb.peakAfterWarmup} MB, ${report.rssMb.end} MB at the end, ` +
    `${report.rssMb.afterClose} MB after close()`,
);
console.log(`soak: JS heap ${report.jsHeapMb.afterWarmup} MB after warm-up, ${report.jsHeapMb.end} MB at the end`);
console.log(
  `soak: growth after warm-up ${report.growthAfterWarmup}% (limit ${report.maxGrowthPercent}%), trend ` +
    `${report.slopeBytesPerRequest} bytes/request: ${pass ? "PASS" : "FAIL"}`,
);
for (const f of failed.slice(0, 5)) console.log(`soak: failed request: ${f}`);
if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
process.exit(pass ? 0 : 1);
