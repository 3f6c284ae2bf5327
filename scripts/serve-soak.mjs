#!/usr/bin/env node
// A bounded soak of the HTTP server: N requests from C concurrent clients over loopback (chat and
// completions, streaming or not, greedy and sampled), 20% of them disconnecting mid-stream or
// before their first token, and 5% bad ones. Checks that every request that stayed got a whole
// answer (greedy ones exactly the library's tokens), that the engine ends empty, that /metrics adds up
// (finished, refused, tokens, histograms against what the clients saw) and that RSS stays flat after
// the warm-up (sampled every --sample-every requests; at most --max-growth over it, default 5%).
// Exit 1 on any failure. Loopback only; stops by itself (10 minutes at most).
//
//   npm run soak:serve -- [--requests 300] [--concurrency 16] [--mode psd] [--model T --draft D]
//       [--warmup 100] [--sample-every 50] [--max-growth 0.05] [--json out.json]
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "300" },
    concurrency: { type: "string", default: "16" },
    mode: { type: "string", default: "psd" },
    model: { type: "string" },
    draft: { type: "string" },
    warmup: { type: "string", default: "100" },
    "sample-every": { type: "string", default: "50" },
    "max-growth": { type: "string", default: "0.05" },
    json: { type: "string" },
  },
});
const warmup = Number(args.warmup);
const sampleEvery = Number(args["sample-every"]);
if (warmup >= Number(args.requests)) throw new Error("--warmup must be less than --requests");
const lib = await import(pathToFileURL(path.join(root, "dist/index.js")).href);
const pair = args.model
  ? { target: args.model, draft: args.draft }
  : await lib.ensureSyntheticPair(undefined, { preset: "tiny", dtype: "f32" });
const engine = await lib.createEngine({
  mode: args.mode,
  batchSize: 4,
  target: { model: pair.target, threads: 1 },
  draft: { model: pair.draft, threads: 1 },
  contextSize: 256,
});
const server = lib.createServer(engine, { modelName: "m", maxQueue: 1000 });
const url = await server.listen({ port: 0 });
const total = Number(args.requests);
const deadline = Date.now() + 10 * 60_000;
let seed = 12345;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const prompts = [
  "Once upon a time",
  "The capital of France is",
  "def fibonacci(n):",
  "Hello",
  "Rain in Spain",
  "1, 2, 3,",
];
const counts = {
  ok: 0,
  exact: 0,
  disconnected: 0,
  earlyDisconnects: 0,
  badRequest: 0,
  failed: 0,
  okTokens: 0,
  chat: 0,
};
const failures = [];
// greedy references, one request at a time before the soak: completions from the library, chat through
// the server alone (its template)
const expected = new Map();
let referenceTokens = 0;
const chatMessages = (prompt) => [{ role: "user", content: prompt }];
for (const p of prompts) {
  expected.set(`completion:${p}`, (await engine.generate(p, { maxTokens: 24, temperature: 0 })).tokens.join(","));
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: chatMessages(p), max_tokens: 24, temperature: 0, return_tokens: true }),
  });
  const tokens = (await r.json()).choices[0].tokens;
  expected.set(`chat:${p}`, tokens.join(","));
  referenceTokens += tokens.length;
}
const referenceRequests = prompts.length; // chat references: finished requests in /metrics

async function one(i) {
  const prompt = prompts[Math.floor(rand() * prompts.length)];
  const kind = rand();
  const controller = new AbortController();
  const stream = rand() < 0.6;
  const sampled = rand() < 0.3;
  const chat = rand() < 0.5;
  const input = chat ? { messages: chatMessages(prompt) } : { prompt };
  const body =
    kind < 0.05
      ? { ...input, max_tokens: "x" }
      : {
          ...input,
          max_tokens: 24,
          stream,
          return_tokens: true,
          ...(sampled ? { temperature: 0.9, seed: i } : { temperature: 0 }),
        };
  const disconnect = kind >= 0.05 && kind < 0.25 ? (rand() < 0.5 ? "early" : "mid") : null;
  if (chat) counts.chat++;
  if (disconnect === "early") setTimeout(() => controller.abort(), Math.floor(rand() * 5));
  try {
    const r = await fetch(`${url}/v1/${chat ? "chat/completions" : "completions"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (kind < 0.05) {
      if (r.status === 400) counts.badRequest++;
      else failures.push(`bad request got ${r.status}`);
      await r.text();
      return;
    }
    if (r.status !== 200) return void failures.push(`status ${r.status}: ${await r.text()}`);
    let tokens;
    let finish;
    if (stream) {
      const reader = r.body.getReader();
      let text = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
        if (disconnect === "mid") return void (controller.abort(), counts.disconnected++);
      }
      if (!text.includes("data: [DONE]")) return void failures.push("stream without [DONE]");
      const last = text
        .split("\n\n")
        .filter((e) => e.startsWith("data: {"))
        .map((e) => JSON.parse(e.slice(6)))
        .find((c) => c.choices[0]?.finish_reason);
      tokens = last.choices[0].tokens;
      finish = last.choices[0].finish_reason;
    } else {
      const choice = (await r.json()).choices[0];
      tokens = choice.tokens;
      finish = choice.finish_reason;
    }
    if (finish !== (tokens.length === 24 ? "length" : "stop"))
      failures.push(`finish_reason ${finish} after ${tokens.length} tokens`);
    counts.ok++;
    counts.okTokens += tokens.length;
    if (!sampled) {
      if (tokens.join(",") === expected.get(`${chat ? "chat" : "completion"}:${prompt}`)) counts.exact++;
      else failures.push(`greedy ${chat ? "chat" : "completion"} tokens differ for "${prompt}"`);
    }
  } catch (e) {
    if (disconnect === "early") counts.earlyDisconnects++;
    if (disconnect) counts.disconnected++;
    else failures.push(`request ${i}: ${e.message}`);
  }
}

const started = Date.now();
let next = 0;
let done = 0;
const samples = [{ done: 0, rss: process.memoryUsage().rss }];
await Promise.all(
  Array.from({ length: Number(args.concurrency) }, async () => {
    while (next < total && Date.now() < deadline) {
      await one(next++);
      if (++done % sampleEvery === 0) {
        samples.push({ done, rss: process.memoryUsage().rss });
        process.stderr.write(
          `serve-soak: ${done}/${total} requests, RSS ${(samples.at(-1).rss / 2 ** 20).toFixed(0)} MiB\n`,
        );
      }
    }
  }),
);
for (let i = 0; i < 200 && engine.load().running + engine.load().queued > 0; i++)
  await new Promise((r) => setTimeout(r, 50));
const load = engine.load();
if (load.running + load.queued > 0) failures.push(`engine not empty after the soak: ${JSON.stringify(load)}`);
const metrics = await (await fetch(`${url}/metrics`)).text();
const mem = process.memoryUsage();
samples.push({ done, rss: mem.rss });
await server.close({ graceMs: 1000 });
await engine.close();

// /metrics against what the clients saw: a disconnected request may or may not have finished in the
// engine before its abort landed, so those bound the counters from both sides
// a metric's value with exactly these labels, or summed over every label set when none are given
const metric = (name, labels) => {
  const match = labels === undefined ? "(?:\\{[^}]*\\})?" : labels.replace(/[{}]/g, "\\$&");
  const re = new RegExp(`^minedraft:${name}${match} (\\S+)$`, "gm");
  return [...metrics.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
};
const finished =
  metric("request_success_total", '{finished_reason="stop"}') +
  metric("request_success_total", '{finished_reason="length"}');
const aborted = metric("request_success_total", '{finished_reason="abort"}');
const rejected = metric("request_rejected_total");
const generated = metric("generation_tokens_total");
// every request the server saw ended once: finished, aborted or refused; an early disconnect may never have arrived
const sent = counts.ok + referenceRequests + counts.badRequest + counts.disconnected;
const checks = {
  "finished = ok .. ok + disconnected":
    finished >= counts.ok + referenceRequests && finished <= sent - counts.badRequest,
  "aborted <= disconnected": aborted <= counts.disconnected,
  "finished + aborted + refused = sent (less early disconnects that never arrived)":
    finished + aborted + rejected <= sent && finished + aborted + rejected >= sent - counts.earlyDisconnects,
  "refused with 400 = bad requests sent": metric("request_rejected_total", '{status="400"}') === counts.badRequest,
  "generated tokens >= the ok clients' tokens, <= + 24 per disconnected":
    generated >= counts.okTokens + referenceTokens &&
    generated <= counts.okTokens + referenceTokens + 24 * counts.disconnected,
  "e2e / ttft histogram counts = finished":
    metric("e2e_request_latency_seconds_count") === finished &&
    metric("time_to_first_token_seconds_count") === finished,
  "accepted <= drafted tokens":
    metric("spec_decode_num_accepted_tokens_total") <= metric("spec_decode_num_draft_tokens_total"),
  "nothing running or waiting": metric("num_requests_running") === 0 && metric("num_requests_waiting") === 0,
};
for (const [name, ok] of Object.entries(checks)) if (!ok) failures.push(`metrics: ${name} does not hold`);

// RSS after the warm-up: growth from the first sample past it to the last, and the peak
const warm = samples.find((x) => x.done >= warmup) ?? samples.at(-1);
const end = samples.at(-1);
const growth = (end.rss - warm.rss) / warm.rss;
const peak = Math.max(...samples.filter((x) => x.done >= warm.done).map((x) => x.rss));
if (growth > Number(args["max-growth"]))
  failures.push(
    `RSS grew ${(100 * growth).toFixed(1)}% after the warm-up (limit ${100 * Number(args["max-growth"])}%)`,
  );
const mib = (b) => +(b / 2 ** 20).toFixed(1);
const report = {
  requests: next,
  seconds: (Date.now() - started) / 1000,
  counts,
  metrics: {
    finished,
    aborted,
    rejected,
    generationTokens: metric("generation_tokens_total"),
    rejected400: metric("request_rejected_total", '{status="400"}'),
    draftTokens: metric("spec_decode_num_draft_tokens_total"),
    acceptedTokens: metric("spec_decode_num_accepted_tokens_total"),
  },
  checks,
  rssMiB: {
    start: mib(samples[0].rss),
    afterWarmup: mib(warm.rss),
    peakAfterWarmup: mib(peak),
    end: mib(end.rss),
    growthAfterWarmupPercent: +(100 * growth).toFixed(2),
  },
  heapUsedMiB: mib(mem.heapUsed),
  samples: samples.map((x) => ({ done: x.done, rssMiB: mib(x.rss) })),
  failures: failures.slice(0, 20),
  failureCount: failures.length,
};
console.log(JSON.stringify(report, null, 2));
if (args.json) (await import("node:fs")).writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
process.exit(failures.length > 0 ? 1 : 0);
