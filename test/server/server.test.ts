// The HTTP server on real llama.cpp contexts (tiny synthetic f32 pair), with the official `openai`
// client: the OpenAI shapes (chat and completions, streaming or not, include_usage), losslessness over
// HTTP (8 concurrent greedy streams equal engine.generate() and target-only decoding), seeded sampling,
// disconnects, the queue limit, the error statuses, the API key, /health while loading, /metrics.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, type MinedraftEngine } from "../../src/create-engine.js";
import { LlamaModel } from "../../src/native/model.js";
import { createServer, type MinedraftServer, type ServerOptions } from "../../src/server/index.js";
import { tinyPair } from "../helpers/models.js";

const PROMPTS = [
  "Once upon a time",
  "The capital of France is",
  "def fibonacci(n):",
  "In 1492, Columbus sailed",
  "Hello",
  "A B C D E F",
  "The quick brown fox",
  "Rain in Spain falls mainly",
];

let targetModel: LlamaModel;
let draftModel: LlamaModel;
let engine: MinedraftEngine;
let ar: MinedraftEngine;
let server: MinedraftServer;
let url: string;
let client: OpenAI;

/** An engine on the shared models; one thread each (tokens are checked here, not speed). */
function makeEngine(mode: "ar" | "psd", batchSize: number) {
  return createEngine({
    mode,
    batchSize,
    draftTokens: 3,
    contextSize: 256,
    target: { model: targetModel, threads: 1 },
    ...(mode === "ar" ? {} : { draft: { model: draftModel, threads: 1 } }),
  });
}

async function startServer(e: MinedraftEngine | Promise<MinedraftEngine>, options: ServerOptions = {}) {
  const s = createServer(e, { modelName: "tiny", ...options });
  return { server: s, url: await s.listen({ port: 0 }) };
}

function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

/** The `data:` payloads of an SSE body. */
function sseData(text: string): string[] {
  return text
    .split("\n\n")
    .map((block) =>
      block
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n"),
    )
    .filter((d) => d !== "");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

beforeAll(async () => {
  const pair = await tinyPair();
  targetModel = await LlamaModel.load(pair.target);
  draftModel = await LlamaModel.load(pair.draft);
  engine = await makeEngine("psd", 4);
  ar = await makeEngine("ar", 4);
  ({ server, url } = await startServer(engine));
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
  await engine?.close();
  await ar?.close();
  targetModel?.dispose();
  draftModel?.dispose();
});

describe("OpenAI shapes through the official client", () => {
  it("completions: a body, and a stream with the same text and include_usage", async () => {
    const body = await client.completions.create({ model: "tiny", prompt: "Hello there", max_tokens: 12 });
    expect(body.object).toBe("text_completion");
    expect(body.model).toBe("tiny");
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0]!.finish_reason).toBe("length");
    const promptTokens = engine.tokenize("Hello there").length;
    expect(body.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 12, total_tokens: promptTokens + 12 });
    const ext = (body as unknown as { minedraft: Record<string, unknown> }).minedraft;
    expect(ext.mode).toBe("psd");
    expect(ext.draft_tokens as number).toBeGreaterThan(0);

    const stream = await client.completions.create({
      model: "tiny",
      prompt: "Hello there",
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: unknown;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        finish ??= c.finish_reason;
      }
    }
    expect(text).toBe(body.choices[0]!.text);
    expect(finish).toBe("length");
    expect(usage).toEqual(body.usage);
  });

  it("chat: the synthetic model's own template (ChatML) formats the messages; streamed deltas add up to the body", async () => {
    expect(server.chatTemplateSource).toBe("model");
    const messages = [
      { role: "system" as const, content: "Be brief." },
      { role: "user" as const, content: "Why is the sky blue?" },
    ];
    const body = await client.chat.completions.create({ model: "tiny", messages, max_completion_tokens: 10 });
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0]!.message.role).toBe("assistant");
    const expected = await engine.chat(messages, { maxTokens: 10, chatTemplate: "chatml" });
    expect(body.choices[0]!.message.content).toBe(expected.text);
    expect(body.usage?.prompt_tokens).toBe(expected.stats.promptTokens);

    const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 10, stream: true });
    let text = "";
    const roles: string[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      const c = chunk.choices[0]!;
      if (c.delta.role) roles.push(c.delta.role);
      text += c.delta.content ?? "";
      finish ??= c.finish_reason;
    }
    expect(roles).toEqual(["assistant"]);
    expect(text).toBe(expected.text);
    expect(finish).toBe("length");
  });

  it("GET /v1/models lists the served name; a request for another model is a 404", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["tiny"]);
    const error = await client.completions
      .create({ model: "gpt-4", prompt: "x", max_tokens: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).param).toBe("model");
  });
});

describe("losslessness through HTTP", () => {
  it("8 concurrent greedy streams return exactly engine.generate()'s and target-only decoding's tokens", async () => {
    const maxTokens = 20;
    const streamed = await Promise.all(
      PROMPTS.map(async (prompt) => {
        const response = await post(url, "/v1/completions", {
          model: "tiny",
          prompt,
          max_tokens: maxTokens,
          temperature: 0,
          stream: true,
          return_tokens: true,
        });
        expect(response.status).toBe(200);
        const chunks = sseData(await response.text());
        expect(chunks.at(-1)).toBe("[DONE]");
        const parsed = chunks
          .slice(0, -1)
          .map(
            (d) => JSON.parse(d) as { choices: { text: string; finish_reason: string | null; tokens?: number[] }[] },
          );
        const last = parsed.at(-1)!.choices[0]!;
        return {
          text: parsed.map((c) => c.choices[0]!.text).join(""),
          tokens: last.tokens!,
          finish: last.finish_reason,
        };
      }),
    );
    for (const [i, prompt] of PROMPTS.entries()) {
      const direct = await engine.generate(prompt, { maxTokens, temperature: 0 });
      const targetOnly = await ar.generate(prompt, { maxTokens, temperature: 0 });
      expect(streamed[i]!.tokens).toEqual(direct.tokens);
      expect(streamed[i]!.tokens).toEqual(targetOnly.tokens);
      expect(streamed[i]!.text).toBe(direct.text);
      expect(streamed[i]!.tokens).toHaveLength(maxTokens);
    }
  });

  it("a seeded sampled request gives what engine.generate() gives with that seed", async () => {
    const opts = { temperature: 0.9, top_p: 0.95, top_k: 40, seed: 1234 };
    const body = (await (
      await post(url, "/v1/completions", { prompt: "Rain in Spain", max_tokens: 16, return_tokens: true, ...opts })
    ).json()) as { choices: { tokens: number[] }[] };
    const direct = await engine.generate("Rain in Spain", {
      maxTokens: 16,
      temperature: 0.9,
      topP: 0.95,
      topK: 40,
      seed: 1234,
    });
    expect(body.choices[0]!.tokens).toEqual(direct.tokens);
  });

  it("an array of prompts gives one choice each, in order, each seeded seed + i", async () => {
    const response = await client.completions.create({
      model: "tiny",
      prompt: ["Hello", "A B C"],
      max_tokens: 6,
      temperature: 0.8,
      seed: 7,
    });
    expect(response.choices.map((c) => c.index)).toEqual([0, 1]);
    const second = await engine.generate("A B C", { maxTokens: 6, temperature: 0.8, seed: 8 });
    expect(response.choices[1]!.text).toBe(second.text);
    expect(response.usage?.completion_tokens).toBe(12);
  });
});

describe("errors are OpenAI-shaped with the right status", () => {
  const cases: [string, unknown, number, string | null][] = [
    ["malformed JSON", "{not json", 400, null],
    ["a wrong type", { prompt: "x", max_tokens: "4" }, 400, "max_tokens"],
    ["a missing field", { max_tokens: 4 }, 400, "prompt"],
    ["an unknown field", { prompt: "x", max_tokens: 4, frobnicate: true }, 400, "frobnicate"],
    ["an unsupported field", { prompt: "x", max_tokens: 4, logprobs: 3 }, 400, "logprobs"],
    ["n > 1", { prompt: "x", max_tokens: 4, n: 2 }, 400, "n"],
    ["a penalty", { prompt: "x", max_tokens: 4, presence_penalty: 0.5 }, 400, "presence_penalty"],
    ["a token outside the vocabulary", { prompt: [1, 99999999], max_tokens: 4 }, 400, "prompt"],
    ["temperature out of range", { prompt: "x", temperature: 5 }, 400, "temperature"],
    ["top_k beyond 32 bits", { prompt: "x", max_tokens: 4, top_k: 1e12 }, 400, "top_k"],
    ["an empty prompt list", { prompt: [], max_tokens: 4 }, 400, "prompt"],
    ["a body that is not an object", [1, 2], 400, null],
  ];
  for (const [what, body, status, param] of cases) {
    it(`${what}: ${status}`, async () => {
      const response = await post(url, "/v1/completions", body);
      expect(response.status).toBe(status);
      const json = (await response.json()) as { error: { message: string; type: string; param: string | null } };
      expect(json.error.type).toBe("invalid_request_error");
      expect(json.error.param).toBe(param);
      expect(json.error.message.length).toBeGreaterThan(5);
    });
  }

  it("prompt + max_tokens beyond the context: a 400 naming both lengths", async () => {
    const prompt = "Hello world";
    const n = engine.tokenize(prompt).length;
    const response = await post(url, "/v1/completions", { prompt, max_tokens: 256 });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { message: string; param: string } };
    expect(error.param).toBe("max_tokens");
    expect(error.message).toContain(`${n} in the prompt`);
    expect(error.message).toContain("256 in the completion");
    expect(error.message).toContain("256 tokens");
  });

  it("unknown route: 404; chat with an unknown role: 400", async () => {
    const missing = await fetch(`${url}/v1/embeddings`, { method: "POST" });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
    const role = await post(url, "/v1/chat/completions", { messages: [{ role: "wizard", content: "x" }] });
    expect(role.status).toBe(400);
    expect(((await role.json()) as { error: { param: string } }).error.param).toBe("messages[0].role");
  });

  it("a body over the limit: 413; a key when one is set: 401 without or with a wrong one, /health open", async () => {
    const { server: s, url: u } = await startServer(engine, { apiKey: "sekret", bodyLimit: 2048 });
    try {
      const auth = { authorization: "Bearer sekret" };
      const big = await post(u, "/v1/completions", { prompt: "x".repeat(4096), max_tokens: 1 }, auth);
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
      for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "sekret" }] as Record<
        string,
        string
      >[]) {
        const r = await post(u, "/v1/completions", { prompt: "x", max_tokens: 1 }, headers);
        expect(r.status).toBe(401);
        expect(((await r.json()) as { error: { type: string } }).error.type).toBe("authentication_error");
      }
      expect((await fetch(`${u}/metrics`)).status).toBe(401);
      expect((await fetch(`${u}/health`)).status).toBe(200);
      const ok = new OpenAI({ baseURL: `${u}/v1`, apiKey: "sekret", maxRetries: 0 });
      expect(
        (await ok.completions.create({ model: "tiny", prompt: "x", max_tokens: 2 })).choices[0]!.finish_reason,
      ).toBe("length");
    } finally {
      await s.close({ graceMs: 0 });
    }
  });
});

describe("capacity, disconnects and the engine's lifecycle", () => {
  it("beyond capacity + queue: 429 with Retry-After; a client that disconnects frees its slot at once", async () => {
    const one = await makeEngine("ar", 1);
    const { server: s, url: u } = await startServer(one, { maxQueue: 0 });
    try {
      const controller = new AbortController();
      const first = await post(
        u,
        "/v1/completions",
        { prompt: "Hello", max_tokens: 200, stream: true },
        {},
        controller.signal,
      );
      const reader = first.body!.getReader();
      await reader.read(); // its first chunk: it holds the only slot
      expect(one.load()).toMatchObject({ running: 1, capacity: 1 });

      const refused = await post(u, "/v1/completions", { prompt: "Hello", max_tokens: 2 });
      expect(refused.status).toBe(429);
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(((await refused.json()) as { error: { type: string } }).error.type).toBe("rate_limit_error");

      controller.abort();
      await until("the aborted request to leave the engine", () => one.load().running + one.load().queued === 0);
      const next = await post(u, "/v1/completions", { prompt: "Hello", max_tokens: 3 });
      expect(next.status).toBe(200);
      expect(((await next.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
      expect(one.stats().requests).toBe(1); // the aborted one produced no result
      // /metrics: one finished, one aborted (vLLM's finished_reason "abort"), one refused with 429
      const metrics = await (await fetch(`${u}/metrics`)).text();
      expect(metrics).toMatch(/^minedraft:request_success_total\{finished_reason="length"\} 1$/m);
      expect(metrics).toMatch(/^minedraft:request_success_total\{finished_reason="abort"\} 1$/m);
      expect(metrics).toMatch(/^minedraft:request_rejected_total\{status="429"\} 1$/m);
    } finally {
      await s.close({ graceMs: 0 });
      await one.close();
    }
  });

  it("a non-streaming client that disconnects before its first token aborts its request only", async () => {
    const finishedBefore = engine.stats().requests;
    const controller = new AbortController();
    const gone = post(
      url,
      "/v1/completions",
      { prompt: "Once upon a time", max_tokens: 200 },
      {},
      controller.signal,
    ).catch((e: unknown) => e);
    const stays = post(url, "/v1/completions", { prompt: "Hello", max_tokens: 30, return_tokens: true });
    await until("both requests to run", () => engine.load().running + engine.load().queued >= 2);
    controller.abort();
    expect(await gone).toBeInstanceOf(Error);
    const kept = (await (await stays).json()) as { choices: { tokens: number[] }[] };
    await until("the engine to empty", () => engine.load().running + engine.load().queued === 0);
    // only the request that stayed produced a result: the other was aborted, not run to its 200 tokens
    expect(engine.stats().requests - finishedBefore).toBe(1);
    expect(kept.choices[0]!.tokens).toEqual((await ar.generate("Hello", { maxTokens: 30 })).tokens);
  });

  it("/health answers 503 until the engine promise resolves; generation meanwhile is a 503 too", async () => {
    let resolve!: (e: MinedraftEngine) => void;
    const pending = new Promise<MinedraftEngine>((r) => (resolve = r));
    const { server: s, url: u } = await startServer(pending);
    try {
      expect((await fetch(`${u}/health`)).status).toBe(503);
      expect((await post(u, "/v1/completions", { prompt: "x", max_tokens: 1 })).status).toBe(503);
      resolve(engine);
      await s.ready();
      expect(await (await fetch(`${u}/health`)).json()).toEqual({ status: "ok" });
    } finally {
      await s.close({ graceMs: 0 });
    }
  });

  it("/metrics is Prometheus text; the accepted-token counter grows with a request", async () => {
    const scrape = async () => {
      const response = await fetch(`${url}/metrics`);
      expect(response.headers.get("content-type")).toContain("text/plain");
      const values = new Map<string, number>();
      for (const line of (await response.text()).split("\n")) {
        if (line === "" || line.startsWith("#")) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
        expect(m, line).not.toBeNull();
        values.set(m![1]!, Number(m![2]));
      }
      return values;
    };
    const before = await scrape();
    await client.completions.create({ model: "tiny", prompt: "The capital of France is", max_tokens: 16 });
    const after = await scrape();
    for (const name of [
      "num_requests_running",
      "num_requests_waiting",
      "hidden_draft_fraction",
      "spec_decode_num_drafts_total",
      "time_to_first_token_seconds_count",
      "e2e_request_latency_seconds_count",
    ]) {
      expect(after.has(`minedraft:${name}`), name).toBe(true);
    }
    const grew = (name: string) => after.get(`minedraft:${name}`)! - (before.get(`minedraft:${name}`) ?? 0);
    expect(grew("spec_decode_num_accepted_tokens_total")).toBeGreaterThan(0);
    expect(grew("spec_decode_num_draft_tokens_total")).toBeGreaterThanOrEqual(
      grew("spec_decode_num_accepted_tokens_total"),
    );
    expect(grew("generation_tokens_total")).toBe(16);
    expect(grew("e2e_request_latency_seconds_count")).toBe(1);
    expect(after.get('minedraft:spec_decode_num_accepted_tokens_per_pos_total{position="0"}')).toBeGreaterThan(0);
  });
});
