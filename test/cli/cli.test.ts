// The built CLI end to end (node dist/cli/main.js) on the tiny synthetic pair: help, usage errors
// (exit 2), runtime errors (exit 1), generate's JSON schema, prompt files, --output, Ctrl-C,
// bench's JSON and HTML report, demo --quick, inspect and synth.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devices } from "../../src/index.js";
import { ensureBuilt, lines, repoRoot, runCli, tinyPair } from "./helpers.js";

let tmp: string;
let target: string;
let draft: string;
let hasGpuDevice = false;
/** engine flags that keep runs short and stable on a busy 2-core machine */
const small = ["--threads", "1", "--draft-threads", "1", "--ctx-size", "256"];

beforeAll(async () => {
  ensureBuilt();
  const pair = await tinyPair();
  target = pair.target;
  draft = pair.draft;
  hasGpuDevice = (await devices()).some((d) => d.type === "gpu" || d.type === "igpu");
  tmp = await mkdtemp(path.join(os.tmpdir(), "minedraft-cli-"));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** stderr less the bench's warnings about other work on the machine (they depend on the machine, not on the code) */
function withoutLoadWarnings(stderr: string): string {
  return stderr
    .split("\n")
    .filter((l) => !/^warning: (the machine was loaded|the engine ran on fewer cores|\w+'s runs spread)/.test(l))
    .join("\n");
}

const REQUEST_STATS = [
  "promptTokens",
  "generatedTokens",
  "steps",
  "draftedTokens",
  "acceptedTokens",
  "acceptanceRate",
  "meanAcceptanceLength",
  "perPositionAcceptance",
  "ttftMs",
  "e2eMs",
  "tokensPerSecond",
  "finishReason",
];
const RUN_STATS = [
  "mode",
  "requests",
  "generatedTokens",
  "wallMs",
  "tokensPerSecond",
  "draftedTokens",
  "acceptedTokens",
  "acceptanceRate",
  "meanAcceptanceLength",
  "perPositionAcceptance",
  "meanTtftMs",
  "meanE2eMs",
  "amortizedE2eMs",
  "steps",
  "draftMs",
  "verifyMs",
  "overlapMs",
  "idleMs",
  "hiddenDraftFraction",
];

function expectOneLineError(stderr: string, pattern: RegExp): void {
  const ls = lines(stderr);
  expect(ls, stderr).toHaveLength(1);
  expect(ls[0]).toMatch(/^error: /);
  expect(ls[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe("help", () => {
  const cases: [string[], string[]][] = [
    [[], ["generate", "bench", "demo", "inspect", "synth"]],
    [
      ["generate"],
      [
        "--model",
        "--draft",
        "--prompt",
        "--prompts",
        "--mode",
        "--draft-tokens",
        "--temp",
        "--top-k",
        "--top-p",
        "--draft-temp",
        "--seed",
        "--max-tokens",
        "--batch-size",
        "--ctx-size",
        "--chat",
        "--system",
        "--stop",
        "--threads",
        "--draft-threads",
        "--gpu-layers",
        "--draft-gpu-layers",
        "--device",
        "--draft-device",
        "--json",
        "--stats",
        "--log-level",
        "--output",
        "--verbose",
      ],
    ],
    [
      ["bench"],
      [
        "--model",
        "--draft",
        "--prompts",
        "--modes",
        "--batch-size",
        "--draft-tokens",
        "--temp",
        "--max-tokens",
        "--repeat",
        "--threads",
        "--json",
        "--report",
      ],
    ],
    [["demo"], ["--preset", "--quick", "MINEDRAFT_DEMO_QUICK"]],
    [["inspect"], ["[model]", "[draft]", "--devices", "--json", "--gpu", "--vulkan-devices"]],
    [["synth"], ["--out", "--preset", "--vocab", "--eps", "--attn-scale", "--dtype", "--seed", "tinyllama"]],
  ];
  for (const [command, mentions] of cases) {
    it(`minedraft ${command.join(" ") || "(root)"} --help`, async () => {
      const r = await runCli([...command, "--help"]);
      expect(r.code, r.stderr).toBe(0);
      for (const m of mentions) expect(r.stdout).toContain(m);
    });
  }
});

describe("bad usage exits 2 with a one-line message", () => {
  it("--tensor-split with one device (checked before anything loads)", async () => {
    const r = await runCli([
      "generate",
      "--model",
      target,
      "--prompt",
      "hi",
      "--device",
      "RPC0",
      "--tensor-split",
      "1",
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/two or more devices.*\(--tensor-split\)/);
  });

  const cases: [string, string[], RegExp][] = [
    ["generate without --model", ["generate", "--prompt", "hi"], /--model/],
    ["non-integer -k", ["generate", "--model", "m.gguf", "--prompt", "hi", "-k", "abc"], /draft-tokens.*abc/],
    ["unknown mode", ["generate", "--model", "m.gguf", "--prompt", "hi", "--mode", "xyz"], /--mode.*xyz/],
    ["NaN temperature", ["generate", "--model", "m.gguf", "--prompt", "hi", "--temp", "NaN"], /--temp/],
    [
      "fractional --max-tokens",
      ["generate", "--model", "m.gguf", "--prompt", "hi", "--max-tokens", "1.5"],
      /--max-tokens/,
    ],
    [
      "--prompt with --prompts",
      ["generate", "--model", "m.gguf", "--prompt", "a", "--prompts", "f.txt"],
      /cannot be used with/,
    ],
    ["no prompt", ["generate", "--model", "m.gguf"], /--prompt/],
    ["psd without a draft", ["generate", "--model", "m.gguf", "--prompt", "hi", "--mode", "psd"], /draft/],
    ["unknown option", ["generate", "--model", "m.gguf", "--prompt", "hi", "--bogus"], /unknown option '--bogus'/],
    ["unknown bench mode", ["bench", "--model", "m.gguf", "--draft", "d.gguf", "--modes", "ar,fast"], /fast/],
    ["bench sd without a draft", ["bench", "--model", "m.gguf", "--modes", "sd"], /draft/],
    ["synth without --out", ["synth"], /--out/],
    ["synth --attn-scale out of range", ["synth", "--out", "x", "--attn-scale", "101"], /--attn-scale/],
    ["inspect without a model", ["inspect"], /model/],
    ["unknown GPU backend", ["inspect", "--devices", "--gpu", "metal9"], /--gpu.*metal9/],
    ["--rpc-timeout-ms not a number", ["inspect", "--devices", "--rpc-timeout-ms", "soon"], /--rpc-timeout-ms/],
    [
      "--tensor-split all zero",
      ["generate", "--model", "m.gguf", "--prompt", "hi", "--tensor-split", "0,0"],
      /--tensor-split/,
    ],
    ["bad Vulkan device list", ["inspect", "--devices", "--vulkan-devices", "0,x"], /--vulkan-devices.*device indices/],
    [
      "repeated Vulkan device",
      ["generate", "--model", "m.gguf", "--prompt", "hi", "--vulkan-devices", "1,1"],
      /distinct/,
    ],
    ["unknown command", ["frobnicate"], /unknown command/],
  ];
  for (const [name, args, pattern] of cases) {
    it(name, async () => {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(2);
      expectOneLineError(r.stderr, pattern);
      expect(r.stdout).toBe("");
    });
  }
});

describe("runtime failures exit 1", () => {
  it("a missing model file gives a clear one-line message", async () => {
    const r = await runCli(["generate", "--model", path.join(tmp, "missing.gguf"), "--prompt", "hi"]);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, /model file not found: .*missing\.gguf/);
  });

  it("a file that is not a GGUF model is reported, with a stack trace under --verbose", async () => {
    const bogus = path.join(tmp, "bogus.gguf");
    await writeFile(bogus, "not a model");
    const plain = await runCli(["inspect", bogus]);
    expect(plain.code).toBe(1);
    expectOneLineError(plain.stderr, /bogus\.gguf/);
    const verbose = await runCli(["inspect", bogus, "--verbose"]);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  it("a missing prompts file is reported", async () => {
    const r = await runCli(["generate", "--model", target, "--prompts", path.join(tmp, "none.txt")]);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, /prompts file not found/);
  });
});

describe("generate", () => {
  it("--chat and --system work on the synthetic pair (ChatML)", async () => {
    const r = await runCli([
      "generate",
      "--model",
      target,
      "--draft",
      draft,
      "--system",
      "be brief",
      "--prompt",
      "Hello there",
      "--max-tokens",
      "4",
      "--json",
      ...small,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).requests[0].tokens.length).toBeGreaterThan(0);
  });

  it("--json prints one object with requests and a summary", async () => {
    const r = await runCli([
      "generate",
      "--model",
      target,
      "--draft",
      draft,
      "--prompt",
      "Hello there",
      "--max-tokens",
      "8",
      "--seed",
      "3",
      "--json",
      ...small,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(["requests", "summary"]);
    expect(doc.requests).toHaveLength(1);
    const [req] = doc.requests;
    expect(req.id).toBe(1);
    expect(req.prompt).toBe("Hello there");
    expect(typeof req.text).toBe("string");
    expect(req.tokens.length).toBeGreaterThan(0);
    expect(req.tokens.length).toBeLessThanOrEqual(8);
    for (const t of req.tokens) expect(Number.isInteger(t)).toBe(true);
    for (const k of REQUEST_STATS) expect(req.stats, k).toHaveProperty(k);
    expect(req.stats.generatedTokens).toBe(req.tokens.length);
    for (const k of RUN_STATS) expect(doc.summary, k).toHaveProperty(k);
    // no --mode with a draft: auto where the models share the CPU cores, psd with the target on a GPU
    const mode = hasGpuDevice ? "psd" : "auto";
    expect(doc.summary.mode).toBe(mode);
    expect(doc.summary.requests).toBe(1);
    expect(doc.summary.placement).toMatchObject({ mode, targetThreads: 1, draftThreads: 1 });
    // no GPU backend in CI: the default placement puts both models on the CPU and says so
    if (!hasGpuDevice)
      expect(doc.summary.placement).toMatchObject({
        targetDevice: "cpu",
        draftDevice: "cpu",
        deviceNote: expect.stringMatching(/no GPU/),
        kvUnified: { target: false, draft: false },
      });
  });

  it("--tetris-extra without --mode runs psd with TETRIS; with another mode it is a usage error", async () => {
    const r = await runCli([
      "generate",
      "--model",
      target,
      "--draft",
      draft,
      "--prompt",
      "Hello there",
      "--max-tokens",
      "6",
      "--tetris-extra",
      "1",
      "--json",
      ...small,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.summary.mode).toBe("psd");
    expect(doc.summary.tetris).toBeDefined();
    const bad = await runCli([
      "generate",
      "--model",
      target,
      "--draft",
      draft,
      "--prompt",
      "Hello there",
      "--mode",
      "auto",
      "--tetris-extra",
      "1",
      ...small,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--tetris-extra works with --mode psd only \(mode is auto\)/);
  });

  it("--pre-verify (psd, one request) gives ar's tokens and reports its rounds; outside psd it is a usage error", async () => {
    const common = ["--model", target, "--prompt", "Hello there", "--max-tokens", "24", "--json", ...small];
    const ar = await runCli(["generate", ...common, "--mode", "ar"]);
    const pre = await runCli(["generate", ...common, "--draft", draft, "--mode", "psd", "--pre-verify"]);
    expect(pre.code, pre.stderr).toBe(0);
    const doc = JSON.parse(pre.stdout);
    expect(doc.requests[0].tokens).toEqual(JSON.parse(ar.stdout).requests[0].tokens);
    expect(doc.summary.preVerify.rounds).toBeGreaterThan(0);
    const bad = await runCli(["generate", ...common, "--draft", draft, "--mode", "sd", "--pre-verify"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/preVerify works with mode "psd" only.*\(--pre-verify\)/);
  });

  it("--draft D --ngram combines prompt lookup with the draft model; --stats shows each source", async () => {
    const prompt = "the cat sat on the mat and the cat sat on the";
    const args = ["generate", "--model", target, "--prompt", prompt, "--max-tokens", "24", ...small];
    const [ar, both] = [
      await runCli([...args, "--json"]),
      await runCli([...args, "--draft", draft, "--ngram", "--mode", "sd", "--json", "--stats"]),
    ];
    expect(both.code, both.stderr).toBe(0);
    const tokens = (r: { stdout: string }) => JSON.parse(r.stdout).requests[0].tokens;
    expect(tokens(both)).toEqual(tokens(ar));
    expect(both.stderr).toMatch(/prompt lookup: \d+\/\d+ lookups found a match/);
    expect(both.stderr).toMatch(/draft model \(where lookup found nothing\): \d+\/\d+ drafts accepted/);
    const bad = await runCli([...args, "--ngram"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--ngram combines prompt lookup with a draft model/);
  });

  it(
    "--kv-unified / --no-kv-unified set both contexts' KV layout; " + "the greedy output is the same on the CPU",
    async () => {
      const args = [
        "generate",
        "--model",
        target,
        "--draft",
        draft,
        "--prompt",
        "Hello there",
        "--max-tokens",
        "8",
        "--seed",
        "3",
        "--json",
        ...small,
      ];
      const [unified, perSeq] = [await runCli([...args, "--kv-unified"]), await runCli([...args, "--no-kv-unified"])];
      expect(unified.code, unified.stderr).toBe(0);
      expect(perSeq.code, perSeq.stderr).toBe(0);
      const [u, p] = [JSON.parse(unified.stdout), JSON.parse(perSeq.stdout)];
      expect(u.summary.placement.kvUnified).toEqual({ target: true, draft: true });
      expect(p.summary.placement.kvUnified).toEqual({ target: false, draft: false });
      expect(u.requests[0].tokens).toEqual(p.requests[0].tokens);
    },
  );

  it("streams a single prompt's text to stdout: the same text --json reports", async () => {
    const args = [
      "generate",
      "--model",
      target,
      "--draft",
      draft,
      "--prompt",
      "Stream me",
      "--max-tokens",
      "10",
      "--seed",
      "5",
      ...small,
    ];
    const [streamed, json] = [await runCli(args), await runCli([...args, "--json"])];
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stderr).toBe("");
    expect(streamed.stdout).toBe(`${JSON.parse(json.stdout).requests[0].text}\n`);
  });

  it("--prompts runs every prompt of the file; --output writes it atomically; --stats goes to stderr", async () => {
    const file = path.join(tmp, "prompts.txt");
    await writeFile(file, 'Hello\n{"prompt": "World", "id": "w"}\n\nThe third prompt\n');
    const out = path.join(tmp, "out", "result.json");
    await import("node:fs/promises").then((fs) => fs.mkdir(path.dirname(out), { recursive: true }));
    const r = await runCli([
      "generate",
      "--model",
      target,
      "--draft",
      draft,
      "--prompts",
      file,
      "--max-tokens",
      "6",
      "--batch-size",
      "2",
      "--json",
      "--stats",
      "--output",
      out,
      ...small,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/tokens\/s/);
    expect(r.stderr).toMatch(/placement: /);
    expect(r.stderr).toMatch(/devices: /);
    if (!hasGpuDevice) {
      // the default mode with a draft on the CPU: auto, which says what it chose
      expect(r.stderr).toMatch(/^auto: \d+ steps: (sequential|overlapped) k=\d/m);
      expect(r.stderr).toMatch(/\(auto picks per step\)/);
    }
    const doc = JSON.parse(await readFile(out, "utf8"));
    expect(doc.requests.map((q: { id: unknown }) => q.id)).toEqual([1, "w", 3]);
    expect(doc.requests.map((q: { prompt: string }) => q.prompt)).toEqual(["Hello", "World", "The third prompt"]);
    expect(doc.summary.requests).toBe(3);
    expect(await readdir(path.dirname(out))).toEqual(["result.json"]);
  });

  it("prints several prompts' texts in separate blocks (ar without a draft)", async () => {
    const file = path.join(tmp, "two.txt");
    await writeFile(file, "One\nTwo\n");
    const r = await runCli(["generate", "--model", target, "--prompts", file, "--max-tokens", "4", ...small]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^=== \[1\/2\] One ===\n/);
    expect(r.stdout).toMatch(/\n=== \[2\/2\] Two ===\n/);
  });

  it("Ctrl-C aborts the requests, exits 130 and leaves no output file", async () => {
    const out = path.join(tmp, "interrupted.txt");
    const r = await runCli(
      [
        "generate",
        "--model",
        target,
        "--draft",
        draft,
        "--prompt",
        "Go on forever",
        "--max-tokens",
        "100000",
        "--ctx-size",
        "4096",
        "--output",
        out,
      ],
      {
        after: { ms: 2500, run: (child) => child.kill("SIGINT") },
      },
    );
    expect(r.code, r.stderr).toBe(130);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(tmp)).filter((f) => f.includes("interrupted"))).toEqual([]);
  });
});

describe("bench", () => {
  it("--json has a row per mode with every figure; --report writes an SVG timeline with both lanes", async () => {
    const prompts = path.join(tmp, "bench-prompts.txt");
    await writeFile(prompts, "Alpha beta\nThe quick brown fox\nOnce upon a time\nLorem ipsum dolor\n");
    const json = path.join(tmp, "bench.json");
    const html = path.join(tmp, "bench.html");
    const r = await runCli(
      [
        "bench",
        "--model",
        target,
        "--draft",
        draft,
        "--prompts",
        prompts,
        "--modes",
        "ar,sd,psd",
        "--batch-size",
        "2",
        "--max-tokens",
        "8",
        "--repeat",
        "1",
        "--json",
        json,
        "--report",
        html,
        ...small,
      ],
      { timeoutMs: 90_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    // no progress bar when stderr is not a TTY (a load warning is legitimate: other test files may run)
    expect(withoutLoadWarnings(r.stderr)).toBe("");
    expect(r.stdout).toMatch(
      new RegExp(
        /mode\s+tok\/s\s+E2EL ms\s+amort\. E2EL ms\s+TTFT ms\s+/.source +
          /accept\s+acc\. len\s+hidden draft\s+vs sd\s+vs ar\s+threads t\/d/.source,
      ),
    );
    for (const mode of ["ar", "sd", "psd"]) expect(r.stdout).toMatch(new RegExp(`^${mode}\\s+\\d`, "m"));

    const doc = JSON.parse(await readFile(json, "utf8"));
    expect(doc.schema).toBe("minedraft-bench/1");
    expect(doc.machine).toMatchObject({
      cores: expect.any(Number),
      cpuModel: expect.any(String),
      node: process.version,
    });
    expect(doc.machine.os).toHaveProperty("platform");
    expect(doc.models.target).toMatchObject({
      path: target,
      quantization: "F32",
      nParams: expect.any(Number),
      fileSize: expect.any(Number),
    });
    expect(doc.models.draft.path).toBe(draft);
    expect(doc.options).toMatchObject({
      modes: ["ar", "sd", "psd"],
      batchSize: 2,
      maxTokens: 8,
      repeat: 1,
      promptCount: 4,
    });
    expect(doc.modes.map((m: { mode: string }) => m.mode)).toEqual(["ar", "sd", "psd"]);
    for (const m of doc.modes) {
      for (const k of [
        "tokensPerSecond",
        "meanE2eMs",
        "amortizedE2eMs",
        "meanTtftMs",
        "acceptanceRate",
        "meanAcceptanceLength",
        "hiddenDraftFraction",
      ]) {
        expect(typeof m.summary[k], `${m.mode}.${k}`).toBe("number");
      }
      expect(m.summary.speedupVsAr).toBeGreaterThan(0);
      expect(m.summary.speedupVsSd).toBeGreaterThan(0);
      expect(m.placement.mode).toBe(m.mode);
      expect(m.runs).toHaveLength(1);
      expect(m.runs[0].requests).toHaveLength(4);
      for (const k of RUN_STATS) expect(m.runs[0].stats, k).toHaveProperty(k);
      expect(m.timeline.events.length).toBeGreaterThan(0);
    }
    expect(doc.modes[0].summary.speedupVsAr).toBeCloseTo(1, 10);

    const page = await readFile(html, "utf8");
    expect(page).toMatch(/<svg[^>]*class="timeline"/);
    expect(page).toContain('data-worker="draft"');
    expect(page).toContain('data-worker="target"');
    expect(page).toContain("time (ms)");
    expect(page).not.toMatch(/<script|<link|src=|href=/i);

    // renders with headless Chromium where it is installed, else says it skipped
    const check = spawnSync(process.execPath, [path.join(repoRoot, "scripts", "check-report.mjs"), html], {
      encoding: "utf8",
      timeout: 100_000,
    });
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toMatch(existsSync("/usr/bin/chromium") ? /^ok: / : /^skipped: chromium not installed/);
  });

  it("runs ar alone without a draft", async () => {
    const prompts = path.join(tmp, "one-prompt.txt");
    await writeFile(prompts, "Hello\n");
    const r = await runCli([
      "bench",
      "--model",
      target,
      "--modes",
      "ar",
      "--prompts",
      prompts,
      "--max-tokens",
      "4",
      "--repeat",
      "1",
      ...small,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ar\s+\d/m);
    expect(r.stdout).not.toMatch(/^psd\s/m);
  });

  it("prompt-lookup rows (sd-ngram, auto-ngram) need no draft model", async () => {
    const json = path.join(tmp, "bench-ngram.json");
    const args = ["bench", "--model", target, "--modes", "ar,sd-ngram,auto-ngram", "--max-tokens", "8"];
    const r = await runCli([...args, "--repeat", "1", "--json", json, ...small]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sd-ngram\s+\d/m);
    expect(r.stdout).toMatch(/^auto-ngram\s+\d/m);
    const report = JSON.parse(await readFile(json, "utf8")) as {
      modes: { mode: string; runs: { stats: { draftSources?: unknown } }[] }[];
    };
    expect(report.modes.map((x) => x.mode)).toEqual(["ar", "sd-ngram", "auto-ngram"]);
    expect(report.modes[1]!.runs[0]!.stats.draftSources).toBeDefined();
    const bad = await runCli(["bench", "--model", target, "--modes", "sd,sd-ngram"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/modes sd need a draft model/);
  });
});

describe("demo", () => {
  it("--quick prints the table, the meaningless-text notice and writes the report", async () => {
    const cwd = await mkdtemp(path.join(tmp, "demo-"));
    // one thread per model: the default placement gives ar and sd every core, which crawls when another job holds one
    const r = await runCli(["demo", "--quick", "--threads", "1", "--draft-threads", "1"], { cwd, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(withoutLoadWarnings(r.stderr)).toBe("");
    expect(r.stdout).toMatch(/mode\s+tok\/s/);
    for (const mode of ["ar", "sd", "psd"]) expect(r.stdout).toMatch(new RegExp(`^${mode}\\s+\\d`, "m"));
    expect(r.stdout).toContain("meaningless text");
    expect(r.stdout).toContain("minedraft bench --model");
    const report = path.join(cwd, "minedraft-demo.html");
    expect(r.stdout).toContain(report);
    expect(await readFile(report, "utf8")).toContain("<svg");
  });
});

describe("inspect and synth", () => {
  it("describes one model", async () => {
    const r = await runCli(["inspect", target]);
    expect(r.code, r.stderr).toBe(0);
    for (const s of [
      "architecture",
      "llama",
      "parameters",
      "quantization",
      "F32",
      "context length",
      "4096",
      "32000",
      "BOS",
      "add BOS",
      "file size",
      "chat template",
    ]) {
      expect(r.stdout).toContain(s);
    }
    const j = await runCli(["inspect", target, "--json"]);
    const doc = JSON.parse(j.stdout);
    expect(doc.models[0]).toMatchObject({
      architecture: "llama",
      nVocab: 32000,
      quantization: "F32",
      addBos: true,
    });
    // ChatML in the GGUF of pairs made since it is written there (cached older pairs have none)
    expect(typeof doc.models[0].hasChatTemplate).toBe("boolean");
  });

  it("checks a compatible pair and lists devices", async () => {
    const r = await runCli(["inspect", target, draft, "--devices"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/compatibility: compatible/);
    expect(r.stdout).toMatch(/devices:[\s\S]*CPU/);
  });

  it("synth writes a pair; a draft with another tokenizer is reported incompatible", async () => {
    const out = path.join(tmp, "synth-gpt2");
    const s = await runCli([
      "synth",
      "--out",
      out,
      "--preset",
      "tiny",
      "--vocab",
      "gpt-2",
      "--dtype",
      "f16",
      "--seed",
      "1",
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toBe("");
    expect(existsSync(path.join(out, "target.gguf"))).toBe(true);
    expect(existsSync(path.join(out, "draft.gguf"))).toBe(true);
    const r = await runCli(["inspect", target, path.join(out, "draft.gguf"), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.compatibility.compatible).toBe(false);
    expect(doc.compatibility.reason).toMatch(/vocab/i);
  });
});
