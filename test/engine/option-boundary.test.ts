// One boundary for bad input: every public option, wrong in every way (type, range, NaN, Infinity,
// huge, wrong nesting), gets a TypeError or RangeError naming the user's option path, before any
// model loads; bad requests never disturb a good one running beside them.
import { describe, expect, it } from "vitest";
import { createEngine, type CreateEngineOptions } from "../../src/create-engine.js";
import { optionOf } from "../../src/common/validate.js";
import { makePrompt } from "./fake-backend.js";
import { makeEngine } from "./helpers.js";

/** A model path that does not exist: an error about it means the options check let the call through. */
const NOWHERE = "/nonexistent/minedraft-test.gguf";
const base = { target: { model: NOWHERE }, draft: { model: NOWHERE } };

const T = TypeError;
const R = RangeError;
type Case = [string, Record<string, unknown>, typeof TypeError | typeof RangeError, string];

const createCases: Case[] = [
  ["mode: an unknown name", { mode: "fast" }, R, "mode"],
  ["mode: a number", { mode: 1 }, T, "mode"],
  ["draftTokens: 0", { draftTokens: 0 }, R, "draftTokens"],
  ["draftTokens: 33", { draftTokens: 33 }, R, "draftTokens"],
  ["draftTokens: a string", { draftTokens: "4" }, T, "draftTokens"],
  ["batchSize: NaN", { batchSize: NaN }, R, "batchSize"],
  ["batchSize: a string", { batchSize: "4" }, T, "batchSize"],
  ["batchSize: 200 in psd (400 sequences)", { mode: "psd", batchSize: 200 }, R, "batchSize"],
  ["batchSize: 1e9", { batchSize: 1e9 }, R, "batchSize"],
  ["contextSize: 1e9", { contextSize: 1e9 }, R, "contextSize"],
  ["contextSize: 600000 with 8 sequences", { mode: "psd", contextSize: 600_000 }, R, "contextSize"],
  ["contextSize: a string", { contextSize: "2048" }, T, "contextSize"],
  ["contextSize: 8", { contextSize: 8 }, R, "contextSize"],
  ["temperature: 1e30", { temperature: 1e30 }, R, "temperature"],
  ["temperature: -Infinity", { temperature: -Infinity }, R, "temperature"],
  ["temperature: a string", { temperature: "hot" }, T, "temperature"],
  ["topP: 1e-30", { topP: 1e-30 }, R, "topP"],
  ["topP: 2", { topP: 2 }, R, "topP"],
  ["topK: -1", { topK: -1 }, R, "topK"],
  ["topK: 1.5", { topK: 1.5 }, R, "topK"],
  ["draftTemperature: NaN", { draftTemperature: NaN }, R, "draftTemperature"],
  ["target.threads: 1000", { target: { model: NOWHERE, threads: 1000 } }, R, "target.threads"],
  ["draft.threads: 0", { draft: { model: NOWHERE, threads: 0 } }, R, "draft.threads"],
  ["draft.threads: a string", { draft: { model: NOWHERE, threads: "2" } }, T, "draft.threads"],
  ["target.gpuLayers: a string", { target: { model: NOWHERE, gpuLayers: "abc" } }, T, "target.gpuLayers"],
  ["target.gpuLayers: -2", { target: { model: NOWHERE, gpuLayers: -2 } }, R, "target.gpuLayers"],
  ["target.device: 42", { target: { model: NOWHERE, device: 42 } }, T, "target.device"],
  ["target.tensorSplit: a string", { target: { model: NOWHERE, tensorSplit: "3,1" } }, T, "target.tensorSplit"],
  [
    "target.tensorSplit: one device",
    { target: { model: NOWHERE, device: "RPC0", tensorSplit: [1] } },
    R,
    "target.tensorSplit",
  ],
  [
    "target.tensorSplit: 2 shares for 3 devices",
    { target: { model: NOWHERE, device: "RPC0,RPC1,RPC2", tensorSplit: [1, 1] } },
    R,
    "target.tensorSplit",
  ],
  [
    "draft.tensorSplit: negative",
    { draft: { model: NOWHERE, device: "RPC0,RPC1", tensorSplit: [1, -1] } },
    R,
    "draft.tensorSplit",
  ],
  [
    "target.tensorSplit: all 0",
    { target: { model: NOWHERE, device: "RPC0,RPC1", tensorSplit: [0, 0] } },
    R,
    "target.tensorSplit",
  ],
  [
    "target.tensorSplit: cpu listed",
    { target: { model: NOWHERE, device: "cpu,RPC0", tensorSplit: [1, 1] } },
    R,
    "target.tensorSplit",
  ],
  ["target.model: 123", { target: { model: 123 } }, T, "target.model"],
  ["target.model: empty", { target: { model: "" } }, R, "target.model"],
  ["target: missing", { target: undefined }, T, "target.model"],
  ["target: a string", { target: NOWHERE }, T, "target"],
  ["draft.model: missing in psd", { mode: "psd", draft: undefined }, T, "draft.model"],
  ["threads at the top level (belongs to target)", { threads: 2 }, T, "threads"],
  ["device at the top level", { device: 42 }, T, "device"],
  ["tetris in sd", { mode: "sd", tetris: { extra: 2 } }, R, "tetris"],
  ["tetris.extra: 0", { mode: "psd", tetris: { extra: 0 } }, R, "tetris.extra"],
  ["auto.probeBudget: 2", { mode: "auto", auto: { probeBudget: 2 } }, R, "auto.probeBudget"],
  ["auto.unknown", { mode: "auto", auto: { probeEvry: 3 } }, T, "auto.probeEvry"],
  ["spinMicros: -1", { spinMicros: -1 }, R, "spinMicros"],
  ["kvUnified: a string", { kvUnified: "yes" }, T, "kvUnified"],
  ["flashAttention: maybe", { flashAttention: "maybe" }, R, "flashAttention"],
  ["logLevel: loud", { logLevel: "loud" }, R, "logLevel"],
  ["adaptThreads: 1", { adaptThreads: 1 }, T, "adaptThreads"],
];

describe("createEngine: the options are checked before anything loads", () => {
  for (const [what, extra, type, option] of createCases) {
    it(what, async () => {
      const error = await createEngine({ ...base, ...extra } as unknown as CreateEngineOptions).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(type);
      expect(optionOf(error)).toBe(option);
      const message = (error as Error).message;
      expect(message.startsWith(`${option} `) || message.includes(` ${option}`)).toBe(true);
      // never a 31-digit number, never an internal name
      expect(message).not.toMatch(/\d{16,}|nCtx|nSeqMax|is not a function/);
      expect(message).not.toMatch(/not found|failed to load/); // the model was never looked at
    });
  }
  it("options that are not an object", async () => {
    for (const bad of [null, 42, "x", [base]]) {
      const error = await createEngine(bad as unknown as CreateEngineOptions).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/createEngine options must be an object/);
    }
  });
});

const requestCases: Case[] = [
  ["maxTokens: 0", { maxTokens: 0 }, R, "maxTokens"],
  ["maxTokens: a string", { maxTokens: "4" }, T, "maxTokens"],
  ["maxTokens: Infinity", { maxTokens: Infinity }, R, "maxTokens"],
  ["temperature: NaN", { temperature: NaN }, R, "temperature"],
  ["topP: 1e-30", { topP: 1e-30 }, R, "topP"],
  ["seed: 1.5", { seed: 1.5 }, R, "seed"],
  ["seed: -1", { seed: -1 }, R, "seed"],
  ["seed: 2**60", { seed: 2 ** 60 }, R, "seed"],
  ["seed: a string", { seed: "7" }, T, "seed"],
  ["stop: a string", { stop: "x" }, T, "stop"],
  ["stop: an empty string", { stop: [""] }, R, "stop"],
  ["signal: {}", { signal: {} }, T, "signal"],
  ["signal: a string", { signal: "x" }, T, "signal"],
  ["onText: a string", { onText: "x" }, T, "onText"],
  ["rawPrompt: 1", { rawPrompt: 1 }, T, "rawPrompt"],
  ["an unknown option", { max_tokens: 4 }, T, "max_tokens"],
  ["chatTemplate: 42", { chatTemplate: 42 }, T, "chatTemplate"],
];

describe("generate(): bad requests are refused by name, a good one beside them is untouched", () => {
  it("every case, while a good request runs", async () => {
    const { engine, fake } = makeEngine(
      { mode: "psd", batchSize: 2, draftTokens: 3 },
      { verifyDelayMs: 1, draftDelayMs: 1 },
    );
    const prompt = makePrompt(3, 6);
    const good = engine.generate(prompt, { maxTokens: 40 });
    for (const [what, opts, type, option] of requestCases) {
      const error = await engine.generate([1, 2], opts as never).catch((e: unknown) => e);
      expect(error, what).toBeInstanceOf(type);
      expect(optionOf(error), what).toBe(option);
      expect((error as Error).message, what).toContain(option);
    }
    expect((await good).tokens).toEqual(fake.greedyContinuation(prompt, 40));
    await engine.close();
    // after close: one clear message from every door
    for (const call of [() => engine.chat([{ role: "user", content: "x" }]), () => engine.generate([1])]) {
      await expect(Promise.resolve().then(call)).rejects.toThrow(/the engine is closed/);
    }
    expect(() => engine.tokenize("x")).toThrow(/the engine is closed/);
  });
});
