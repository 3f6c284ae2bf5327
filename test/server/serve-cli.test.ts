// `minedraft serve` as a process (the built CLI, tiny synthetic pair, a free port on 127.0.0.1):
// start-up output, and the SIGTERM drain: a request in flight finishes, the process exits 0; with no
// grace left, the request in flight gets an error event instead of hanging.
import { spawn, type ChildProcess } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { createEngine } from "../../src/index.js";
import { cliPath, ensureBuilt, repoRoot, tinyPair } from "../cli/helpers.js";

let target: string;
let draft: string;

beforeAll(async () => {
  ensureBuilt();
  ({ target, draft } = await tinyPair());
});

interface Serving {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `minedraft serve` and resolves once it says it is ready. */
function serve(extra: string[] = []): Promise<Serving> {
  const args = [
    cliPath,
    "serve",
    "--model",
    target,
    "--draft",
    draft,
    "--mode",
    "psd",
    "--threads",
    "1",
    "--draft-threads",
    "1",
    "--ctx-size",
    "256",
    "--port",
    "0",
    ...extra,
  ];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MINEDRAFT_API_KEY: undefined },
  });
  let stdout = "";
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  void exited.then(() => clearTimeout(killer));
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url && stdout.includes("ready:")) resolve({ child, url, stdout: () => stdout, exited });
    });
    void exited.then(({ code }) => reject(new Error(`serve exited (${code}) before it was ready: ${stdout}${stderr}`)));
  });
}

async function streamCompletion(url: string, maxTokens: number) {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "Once upon a time", max_tokens: maxTokens, stream: true }),
  });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const first = await reader.read();
  text += decoder.decode(first.value, { stream: true });
  const rest = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return { rest }; // wrapped: an async function returning the promise would wait for it
}

describe("minedraft serve", () => {
  it(
    "prints its URL, models, mode and chat template, and drains on SIGTERM: " +
      "the request in flight finishes, exit 0",
    async () => {
      const s = await serve();
      expect(s.stdout()).toMatch(/mode psd, batch 4, k 4, context 256 tokens per request/);
      // the synthetic pair speaks ChatML (its GGUF says so; pairs cached before it did get it from the engine)
      expect(s.stdout()).toContain("chat template: the model's own");
      expect(((await (await fetch(`${s.url}/v1/models`)).json()) as { data: { id: string }[] }).data[0]!.id).toBe(
        "target",
      );

      const body = await streamCompletion(s.url, 120);
      s.child.kill("SIGTERM");
      // while the request finishes, /health answers 503 (a load balancer sends nothing new)
      let health = 200;
      for (let i = 0; i < 100 && health === 200; i++) {
        health = (await fetch(`${s.url}/health`)).status;
        if (health === 200) await new Promise((r) => setTimeout(r, 10));
      }
      expect(health).toBe(503);
      const text = await body.rest;
      const finish = text
        .split("\n")
        .filter((l) => l.startsWith("data: {"))
        .map((l) => JSON.parse(l.slice(6)) as { choices: { finish_reason: string | null }[] })
        .at(-1)!;
      expect(finish.choices[0]!.finish_reason).toBe("length");
      expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
      expect(await s.exited).toEqual({ code: 0, signal: null });
      // no new connections once drained
      await expect(fetch(`${s.url}/health`)).rejects.toThrow();
      expect(s.stdout()).toContain("shutting down");
      expect(s.stdout()).toContain("stopped");
    },
  );

  for (const [name, extra, sources] of [
    ["--draft ngram serves prompt-lookup drafts (sd, no draft model)", ["--draft", "ngram", "--mode", "sd"], ["ngram"]],
    ["--draft D --ngram serves lookup and the draft model combined (psd)", ["--ngram"], ["ngram", "model"]],
  ] as const) {
    it(`${name}: greedy output equals ar's; stats and metrics per source`, async () => {
      const s = await serve([...extra]);
      try {
        expect(s.stdout()).toMatch(/mode (sd|psd)/);
        const prompt = "Once upon a time, once upon a time, once upon a";
        const r = await fetch(`${s.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt, max_tokens: 24, temperature: 0, return_tokens: true }),
        });
        expect(r.status).toBe(200);
        const body = (await r.json()) as {
          choices: { tokens: number[] }[];
          minedraft: { draft_tokens: number; draft_sources: Record<string, { draft_tokens: number }> };
        };
        const ar = await createEngine({ mode: "ar", target: { model: target, threads: 1 }, contextSize: 256 });
        try {
          expect(body.choices[0]!.tokens).toEqual((await ar.generate(prompt, { maxTokens: 24 })).tokens);
        } finally {
          await ar.close();
        }
        const bySource = body.minedraft.draft_sources;
        expect(Object.keys(bySource).sort()).toEqual([...sources].sort());
        expect(Object.values(bySource).reduce((n, x) => n + x.draft_tokens, 0)).toBe(body.minedraft.draft_tokens);
        const metrics = await (await fetch(`${s.url}/metrics`)).text();
        expect(metrics).toMatch(/minedraft:spec_decode_num_draft_tokens_by_source_total\{source="ngram"\} \d+/);
      } finally {
        s.child.kill("SIGTERM");
        expect((await s.exited).code).toBe(0);
      }
    });
  }

  it("with no grace left, a request in flight ends with an error event instead of hanging; exit 0", async () => {
    const s = await serve(["--shutdown-grace", "0"]);
    const body = await streamCompletion(s.url, 250);
    s.child.kill("SIGTERM");
    const text = await body.rest;
    expect(text).toContain('"error":');
    expect(text).toContain("shut down before the request finished");
    expect(await s.exited).toEqual({ code: 0, signal: null });
  });
});
