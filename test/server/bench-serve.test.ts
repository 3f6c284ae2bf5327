// `minedraft bench serve`: the load generator's arrivals and summary, and the command end to end on
// the tiny pair (one `minedraft serve` per mode on loopback, requests at a rate and all at once).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  engineRequests,
  httpCompletions,
  poissonArrivals,
  runServeLoad,
  summarizeServeLoad,
  type RequestRecord,
} from "../../src/bench/serve-load.js";
import { LLAMA_SERVER_NGRAM_TYPES, llamaServerConfigs } from "../../src/cli/commands/bench-serve.js";
import type { GenerateOptions, GenerateResult } from "../../src/engine/index.js";
import { ensureBuilt, runCli, tinyPair } from "../cli/helpers.js";

describe("load generator", () => {
  it("Poisson arrivals: seeded, increasing, mean gap 1/rate; inf sends all at once", () => {
    const a = poissonArrivals(2000, 4, 7);
    expect(poissonArrivals(2000, 4, 7)).toEqual(a);
    expect(poissonArrivals(2000, 4, 8)).not.toEqual(a);
    for (let i = 1; i < a.length; i++) expect(a[i]!).toBeGreaterThanOrEqual(a[i - 1]!);
    const meanGap = a.at(-1)! / (a.length - 1);
    expect(meanGap).toBeGreaterThan(225);
    expect(meanGap).toBeLessThan(275);
    expect(poissonArrivals(5, Infinity, 1)).toEqual([0, 0, 0, 0, 0]);
    expect(() => poissonArrivals(5, 0, 1)).toThrow(RangeError);
  });

  it("summary: throughput over the run, TPOT per request, ITL over every gap, failures apart", () => {
    const r = (
      sentAt: number,
      ttftMs: number,
      e2eMs: number,
      outputTokens: number,
      itlMs: number[],
      error?: string,
    ): RequestRecord => ({ sentAt, ttftMs, e2eMs, itlMs, outputTokens, promptTokens: 3, ...(error ? { error } : {}) });
    const s = summarizeServeLoad(
      [
        r(0, 100, 1000, 10, [100, 100]),
        r(500, 200, 1100, 10, [300]),
        r(600, 50, 60, 0, [], "HTTP 429"),
        r(700, 50, 900, 6, [10], "invalid output"),
      ],
      2000,
    );
    expect(s).toMatchObject({
      completed: 2,
      failed: 2,
      requestsPerSecond: 1,
      outputTokensPerSecond: 10,
      failedOutputTokensPerSecond: 3, // what the failed ones streamed before failing, apart
      errors: ["HTTP 429", "invalid output"],
    });
    expect(s.tpotMs.mean).toBeCloseTo((900 / 9 + 900 / 9) / 2, 9);
    expect(s.itlMs.median).toBe(100);
    expect(s.e2eMs.median).toBe(1050);
    expect(s.amortizedE2eMs).toBe(1600 / 2); // last end 1600 - first send 0, over 2 requests
  });
});

describe("HTTP transport", () => {
  it("sends a request again when the server closed the connection before any reply; other failures say why", async () => {
    let seen = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (++seen === 1) return req.socket.destroy(); // as a keep-alive connection closed under the request
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify({ choices: [{ text: "a" }] })}\n\n`);
        res.write(
          `data: ${JSON.stringify({ choices: [{ text: "b" }], usage: { prompt_tokens: 3, completion_tokens: 2 } })}\n\n`,
        );
        res.end("data: [DONE]\n\n");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const send = httpCompletions({ url: `http://127.0.0.1:${port}`, model: "m", maxTokens: 2 });
      const { records } = await runServeLoad({ send, prompts: ["x"], rate: Infinity, seed: 1, timeoutMs: 10_000 });
      expect(seen).toBe(2);
      expect(records[0]).toMatchObject({ outputTokens: 2, promptTokens: 3 });
      expect(records[0]!.error).toBeUndefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    // nothing listens there any more: a refused connection is not sent again, and its reason is kept
    const gone = httpCompletions({ url: `http://127.0.0.1:${port}`, model: "m", maxTokens: 2 });
    const { records } = await runServeLoad({ send: gone, prompts: ["x"], rate: Infinity, seed: 1, timeoutMs: 10_000 });
    expect(records[0]!.error).toMatch(/^fetch failed: .*ECONNREFUSED/);
  });
});

describe("library transport", () => {
  it(
    "times each text piece, counts tokens and drafts from the result, " + "and keeps a failure to its own request",
    async () => {
      const engine = {
        async generate(prompt: string, o: GenerateOptions): Promise<GenerateResult> {
          if (prompt === "bad") throw new RangeError("prompt too long");
          for (const piece of ["a", "b", "c"]) {
            await new Promise((r) => setTimeout(r, 5));
            o.onText!(piece);
          }
          const stats = { promptTokens: 2, drafts: 1, draftedTokens: 4, acceptedTokens: 3 } as GenerateResult["stats"];
          return { id: 0, text: "abc", tokens: [7, 8, 9, o.seed!], stats };
        },
      };
      const { records } = await runServeLoad({
        send: engineRequests(engine, 4),
        prompts: ["x", "bad", "y"],
        rate: Infinity,
        seed: 10,
        timeoutMs: 10_000,
      });
      expect(records[0]).toMatchObject({
        outputTokens: 4,
        promptTokens: 2,
        spec: { drafts: 1, draftTokens: 4, acceptedTokens: 3 },
      });
      expect(records[0]!.ttftMs).toBeGreaterThanOrEqual(4);
      expect(records[0]!.itlMs).toHaveLength(2);
      expect(records[1]!.error).toBe("prompt too long");
      expect(records[2]!.error).toBeUndefined();
    },
  );
});

describe("minedraft bench serve", () => {
  let tmp: string;
  beforeAll(async () => {
    ensureBuilt();
    tmp = await mkdtemp(path.join(os.tmpdir(), "minedraft-bench-serve-"));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("runs each mode's server at each rate and reports every figure", async () => {
    const { target, draft } = await tinyPair();
    const json = path.join(tmp, "serve.json");
    const html = path.join(tmp, "serve.html");
    const r = await runCli(
      [
        "bench",
        "serve",
        "--model",
        target,
        "--draft",
        draft,
        "--modes",
        "ar,psd",
        "--rates",
        "50,inf",
        "--num-prompts",
        "6",
        "--max-tokens",
        "8",
        "--threads",
        "1",
        "--draft-threads",
        "1",
        "--ctx-size",
        "256",
        "--warmup",
        "2",
        "--json",
        json,
        "--report",
        html,
      ],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/system\s+rate\s+req\/s\s+out tok\/s\s+TTFT med/);
    expect(r.stdout).toMatch(/^minedraft psd\s+inf\s/m);
    const report = JSON.parse(await readFile(json, "utf8")) as {
      schema: string;
      results: {
        mode: string;
        rate: number | string;
        summary: { completed: number; failed: number; outputTokensPerSecond: number; ttftMs: { median: number } };
        spec: { draftTokens: number; acceptedTokens: number };
        coreLimitChanges: number | null;
      }[];
    };
    expect(report.schema).toBe("minedraft-bench-serve/1");
    // each server served an unmeasured burst first; the rates' counts below are only the measured requests
    expect(r.stderr.match(/warmed up with 2 requests/g)).toHaveLength(2);
    // the governor's re-placements per rate, read from each minedraft server's /metrics (a count, never null)
    for (const x of report.results) expect(x.coreLimitChanges).toBeGreaterThanOrEqual(0);
    expect(report.results.map((x) => `${x.mode}@${x.rate}`)).toEqual(["ar@50", "ar@inf", "psd@50", "psd@inf"]);
    for (const x of report.results) {
      expect(x.summary).toMatchObject({ completed: 6, failed: 0 });
      expect(x.summary.outputTokensPerSecond).toBeGreaterThan(0);
      expect(x.summary.ttftMs.median).toBeGreaterThan(0);
    }
    // the server's own counters, per rate: psd drafted and had drafts accepted; ar drafted nothing
    expect(report.results[0]!.spec.draftTokens).toBe(0);
    expect(report.results[3]!.spec.draftTokens).toBeGreaterThan(0);
    expect(report.results[3]!.spec.acceptedTokens).toBeGreaterThan(0);
    // the report: throughput and latency against the rate, a line per system, and the table
    const page = await readFile(html, "utf8");
    expect((page.match(/<svg class="chart"/g) ?? []).length).toBe(2);
    expect((page.match(/<polyline class="series" data-system="minedraft psd"/g) ?? []).length).toBe(2);
    expect((page.match(/<polyline class="series"/g) ?? []).length).toBe(4);
    expect(page).not.toMatch(/<script|src=|href=/i);
  });

  it("--library runs the same load through engine.generate() in the bench's process, beside the server", async () => {
    const { target, draft } = await tinyPair();
    const json = path.join(tmp, "library.json");
    const r = await runCli(
      [
        "bench",
        "serve",
        "--model",
        target,
        "--draft",
        draft,
        "--modes",
        "psd",
        "--library",
        "--rates",
        "inf",
        "--num-prompts",
        "4",
        "--max-tokens",
        "8",
        "--threads",
        "1",
        "--draft-threads",
        "1",
        "--ctx-size",
        "256",
        "--json",
        json,
      ],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(json, "utf8")) as {
      results: {
        system: string;
        summary: { completed: number; failed: number };
        spec: { draftTokens: number; acceptedTokens: number };
      }[];
    };
    expect(report.results.map((x) => x.system)).toEqual(["minedraft psd", "minedraft psd library"]);
    for (const x of report.results) {
      expect(x.summary).toMatchObject({ completed: 4, failed: 0 });
      expect(x.spec.draftTokens).toBeGreaterThan(0);
      expect(x.spec.acceptedTokens).toBeGreaterThan(0);
    }
  });

  it("--incumbents rows: llama-server's n-gram types beside ngram-simple with --draft ngram", () => {
    const specType = (args: string[]) => (args.includes("--spec-type") ? args[args.indexOf("--spec-type") + 1] : null);
    const ngram = llamaServerConfigs({ model: "t.gguf", draft: "ngram" }, 4);
    expect(ngram.map(([name]) => name)).toEqual([
      "llama-server -np 8",
      "llama-server -np 4",
      "llama-server -np 4 ngram",
      "llama-server -np 4 ngram-mod",
      "llama-server -np 4 ngram-map-k",
      "llama-server -np 4 ngram-map-k4v",
      "llama-server -np 4 ngram-cache",
    ]);
    expect(ngram.map(([, args]) => specType(args))).toEqual([null, null, "ngram-simple", ...LLAMA_SERVER_NGRAM_TYPES]);
    for (const [, args] of ngram) expect(args.slice(0, 4)).toEqual(["-m", "t.gguf", "-np", args[3]]);
    // with a draft model: the draft row and ngram-simple only, as before
    const draft = llamaServerConfigs({ model: "t.gguf", draft: "d.gguf", draftTokens: 6 }, 4);
    expect(draft.map(([name]) => name)).toEqual([
      "llama-server -np 8",
      "llama-server -np 4",
      "llama-server -np 4 draft k=6",
      "llama-server -np 4 ngram",
    ]);
    expect(draft.map(([, args]) => specType(args))).toEqual([null, null, "draft-simple", "ngram-simple"]);
    expect(llamaServerConfigs({ model: "t.gguf" }, 4).map(([name]) => name)).toEqual([
      "llama-server -np 8",
      "llama-server -np 4",
      "llama-server -np 4 ngram",
    ]);
  });

  it("--rounds runs every system once per round in a rotated order; --batch-size 2,4 a server per size; --screen-prompts drops prompts whose greedy text is not valid UTF-8", async () => {
    const { target } = await tinyPair();
    const json = path.join(tmp, "rounds.json");
    const r = await runCli(
      [
        ...["bench", "serve", "--model", target, "--batch-size", "2,4", "--rates", "inf"],
        ...["--num-prompts", "3", "--max-tokens", "48", "--rounds", "2", "--screen-prompts", "--warmup", "0"],
        ...["--ctx-size", "256", "--json", json],
      ],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(json, "utf8")) as {
      options: { rounds: number; batchSize: number[]; screenedPrompts: { kept: number; dropped: number } };
      results: { round: number; system: string; summary: { completed: number } }[];
      comparisons: { round: number; autoVsBestFixed: number | null; throughputRatio: number | null }[];
    };
    // 5 of the 12 built-in prompts decode to bytes that are not UTF-8 at 48 tokens on this pair
    expect(report.options.screenedPrompts).toEqual({ kept: 7, dropped: 5 });
    expect(r.stderr).toMatch(/kept 7 of 12 distinct prompts \(5 decode to text that is not valid UTF-8/);
    expect(report.options.rounds).toBe(2);
    expect(report.options.batchSize).toEqual([2, 4]);
    expect(report.results.map((x) => `${x.round}:${x.system}`)).toEqual([
      "1:minedraft ar b2",
      "1:minedraft ar b4",
      "2:minedraft ar b4",
      "2:minedraft ar b2",
    ]);
    for (const x of report.results) expect(x.summary.completed).toBe(3);
    // one comparison per round; no auto and no incumbent here, so no ratio to form
    expect(report.comparisons.map((c) => c.round)).toEqual([1, 2]);
    expect(report.comparisons[0]).toMatchObject({ autoVsBestFixed: null, throughputRatio: null });
    expect(r.stdout).toMatch(/^minedraft ar b4 #2\s+inf\s/m);
  });

  it("--incumbents without a built llama-server fails at once, saying how to build it", async () => {
    const { target } = await tinyPair();
    const r = await runCli(
      [
        "bench",
        "serve",
        "--model",
        target,
        "--incumbents",
        "--tools",
        path.join(tmp, "no-tools"),
        "--num-prompts",
        "2",
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/llama-server is not built .*npm run build:llama-tools/);
    expect(r.stderr).not.toContain("starting minedraft");
  });

  it("--draft ngram: rows named for prompt lookup (sd, auto), and psd refused", async () => {
    const { target } = await tinyPair();
    const json = path.join(tmp, "ngram.json");
    const args = ["bench", "serve", "--model", target, "--draft", "ngram", "--rates", "inf", "--num-prompts", "2"];
    const r = await runCli([...args, "--max-tokens", "8", "--json", json], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(json, "utf8")) as { results: { system: string; mode: string }[] };
    expect(report.results.map((x) => x.system)).toEqual(["minedraft ar", "minedraft sd ngram", "minedraft auto ngram"]);
    const bad = await runCli([...args, "--modes", "sd,psd"], { timeoutMs: 60_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--draft ngram \(prompt lookup alone\) works with modes ar, sd and auto/);
  });

  it("--draft D --ngram: the servers combine lookup with the draft model; rows say so", async () => {
    const { target, draft } = await tinyPair();
    const json = path.join(tmp, "ngram-draft.json");
    const args = ["bench", "serve", "--model", target, "--draft", draft, "--ngram", "--rates", "inf"];
    const r = await runCli([...args, "--modes", "ar,psd", "--num-prompts", "2", "--max-tokens", "8", "--json", json], {
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(await readFile(json, "utf8")) as { results: { system: string }[] };
    expect(report.results.map((x) => x.system)).toEqual(["minedraft ar", "minedraft psd ngram+draft"]);
    const bad = await runCli(["bench", "serve", "--model", target, "--ngram"], { timeoutMs: 60_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--ngram combines prompt lookup with a draft model/);
  });
});
