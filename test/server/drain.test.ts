// The drain as a load balancer sees it (engine on the fake backend): while requests are in flight the
// listener stays open, /health and new requests get 503s at once (/metrics still answers), the requests
// in flight finish whole, and only then is the listener closed.
import { afterAll, expect, it } from "vitest";
import type { Engine } from "../../src/engine/engine.js";
import { createServer } from "../../src/server/index.js";
import { makeEngine } from "../engine/helpers.js";

let engine: Engine | undefined;

afterAll(async () => {
  await engine?.close();
});

it("close(): /health and new requests 503 while requests finish; then connections are refused", async () => {
  ({ engine } = makeEngine({ mode: "sd", batchSize: 2, draftTokens: 2 }, { verifyDelayMs: 5, eogToken: null }));
  const server = createServer(engine, { modelName: "fake" });
  const url = await server.listen({ port: 0 });
  const post = (body: unknown) =>
    fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  const streaming = await post({ prompt: [1, 2, 3], max_tokens: 40, stream: true });
  expect(streaming.status).toBe(200);
  const rest = streaming.text();
  const plain = post({ prompt: [4, 5], max_tokens: 40 });
  await new Promise((r) => setTimeout(r, 20)); // both admitted
  const closed = server.close({ graceMs: 30_000 });

  const health = await fetch(`${url}/health`);
  expect(health.status).toBe(503);
  expect(((await health.json()) as { error: { message: string } }).error.message).toBe("Shutting down");
  const refused = await post({ prompt: [1], max_tokens: 2 });
  expect(refused.status).toBe(503);
  expect(refused.headers.get("connection")).toBe("close");
  expect((await fetch(`${url}/metrics`)).status).toBe(200);

  // what was accepted before the drain is answered in full
  expect((await rest).trimEnd().endsWith("data: [DONE]")).toBe(true);
  const answered = await plain;
  expect(answered.status).toBe(200);
  expect(((await answered.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(40);
  await closed;
  await expect(fetch(`${url}/health`)).rejects.toThrow();
});
