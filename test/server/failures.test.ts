// The server over the engine's fake backend, where a worker failure can be injected: an internal
// failure is a 500 (or, mid-stream, an error event) for the requests it hit, and the server goes on.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createServer, type MinedraftServer } from "../../src/server/index.js";
import { makeEngine } from "../engine/helpers.js";
import type { FakeBackend } from "../engine/fake-backend.js";
import type { Engine } from "../../src/engine/engine.js";

let engine: Engine;
let fake: FakeBackend;
let server: MinedraftServer;
let url: string;

const post = (body: unknown) =>
  fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  ({ engine, fake } = makeEngine({ mode: "sd", batchSize: 2, draftTokens: 2 }, { verifyDelayMs: 1 }));
  server = createServer(engine, { modelName: "fake" });
  url = await server.listen({ port: 0 });
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
  await engine?.close();
});

it("a failed verification is a 500 for the request it hit; the next request is served", async () => {
  fake.failOn("target", "verify", 2, new Error("boom in the target worker"));
  const failed = await post({ prompt: [1, 2, 3], max_tokens: 20 });
  expect(failed.status).toBe(500);
  const { error } = (await failed.json()) as { error: { type: string; message: string } };
  expect(error.type).toBe("server_error");
  expect(error.message).toContain("boom in the target worker");
  const ok = await post({ prompt: [1, 2, 3], max_tokens: 20, return_tokens: true });
  expect(ok.status).toBe(200);
  const body = (await ok.json()) as { choices: { tokens: number[] }[] };
  expect(body.choices[0]!.tokens).toEqual(fake.greedyContinuation([1, 2, 3], 20));
});

it("mid-stream, the failure is an error event and the stream ends without [DONE]", async () => {
  fake.failOn("target", "verify", 3, new Error("boom mid-stream"));
  const response = await post({ prompt: [1, 2], max_tokens: 30, stream: true });
  expect(response.status).toBe(200);
  const text = await response.text();
  const events = text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));
  const last = JSON.parse(events.at(-1)!) as { error?: { type: string; message: string } };
  expect(last.error?.type).toBe("server_error");
  expect(last.error?.message).toContain("boom mid-stream");
  expect(events.length).toBeGreaterThan(1); // text came before the failure
  expect(text).not.toContain("[DONE]");
  expect((await post({ prompt: [1, 2], max_tokens: 4 })).status).toBe(200);
});
