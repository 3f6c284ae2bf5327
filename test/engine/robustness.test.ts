// Aborts, close, option validation and backend failures: requests settle, nothing hangs, and the
// engine keeps serving the others.
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import type { Mode } from "../../src/engine/types.js";
import { FakeBackend, makePrompt } from "./fake-backend.js";
import { makeEngine, rejection, sleep, workload } from "./helpers.js";

const MODES: Mode[] = ["ar", "sd", "psd"];
const SLOW = { draftDelayMs: 1, verifyDelayMs: 3 };

describe("abort", () => {
  for (const mode of MODES) {
    it(`${mode}: aborting one request mid-flight leaves the others exact`, { timeout: 20_000 }, async () => {
      const w = workload(9, 1);
      w.maxTokens = w.maxTokens.map(() => 25);
      const { engine, fake } = makeEngine({ mode, batchSize: 3, draftTokens: 3 }, SLOW);
      const controller = new AbortController();
      let pieces = 0;
      const promises = w.prompts.map((p, i) =>
        engine.generate(p, {
          maxTokens: w.maxTokens[i],
          signal: i === 1 ? controller.signal : undefined,
          onText: i === 1 ? () => ++pieces === 3 && controller.abort() : undefined,
        }),
      );
      const settled = await Promise.allSettled(promises);
      const aborted = settled[1]!;
      expect(aborted.status).toBe("rejected");
      expect((aborted as PromiseRejectedResult).reason.name).toBe("AbortError");
      settled.forEach((s, i) => {
        if (i === 1) return;
        expect(s.status).toBe("fulfilled");
        expect((s as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(
          fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!),
        );
      });
      await engine.close();
      expect(fake.liveSeqs("target")).toEqual([]);
      expect(fake.liveSeqs("draft")).toEqual([]);
    });
  }

  it("aborting every request rejects them all and the engine stays usable", async () => {
    const w = workload(10, 2);
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 }, SLOW);
    const controllers = w.prompts.map(() => new AbortController());
    const promises = w.prompts.map((p, i) => engine.generate(p, { maxTokens: 40, signal: controllers[i]!.signal }));
    await sleep(25);
    controllers.forEach((c) => c.abort());
    const errors = await Promise.all(promises.map(rejection));
    expect(errors.map((e) => e.name)).toEqual(errors.map(() => "AbortError"));

    const again = await engine.generate(w.prompts[0]!, { maxTokens: 12 });
    expect(again.tokens).toEqual(fake.greedyContinuation(w.prompts[0]!, 12));
    await engine.close();
    expect(fake.liveSeqs("target")).toEqual([]);
  });

  it("one signal shared by many requests: one listener on it, and aborting it rejects them all", async () => {
    const w = workload(24, 3);
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 }, SLOW);
    const controller = new AbortController();
    const promises = w.prompts.map((p) => engine.generate(p, { maxTokens: 40, signal: controller.signal }));
    // a listener per request would trip Node's MaxListenersExceededWarning at 11
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    await sleep(25);
    controller.abort();
    const errors = await Promise.all(promises.map(rejection));
    expect(errors.map((e) => e.name)).toEqual(errors.map(() => "AbortError"));
    const again = await engine.generate(w.prompts[0]!, { maxTokens: 8 });
    expect(again.tokens).toEqual(fake.greedyContinuation(w.prompts[0]!, 8));
    await engine.close();
  });

  it("a request aborted while queued, or before submission, rejects at once", async () => {
    const w = workload(4, 3);
    const { engine, fake } = makeEngine({ mode: "sd", batchSize: 1, draftTokens: 2 }, SLOW);
    const queued = new AbortController();
    const first = engine.generate(w.prompts[0]!, { maxTokens: 20 });
    const second = engine.generate(w.prompts[1]!, { maxTokens: 20, signal: queued.signal });
    const third = engine.generate(w.prompts[2]!, { maxTokens: 20 });
    await sleep(5);
    queued.abort(new Error("changed my mind"));
    const error = await rejection(second);
    expect(error.name).toBe("AbortError");
    expect((error as Error & { cause?: unknown }).cause).toEqual(new Error("changed my mind"));
    expect((await first).tokens).toEqual(fake.greedyContinuation(w.prompts[0]!, 20));
    expect((await third).tokens).toEqual(fake.greedyContinuation(w.prompts[2]!, 20));
    expect((await rejection(engine.generate(w.prompts[3]!, { signal: AbortSignal.abort() }))).name).toBe("AbortError");
    // the queued request never reached a worker
    expect(fake.calls.filter((c) => c.kind === "prefill").length).toBe(4); // 2 requests x 2 workers
    await engine.close();
  });
});

describe("close", () => {
  it("rejects in-flight and queued requests with AbortError, then closes the backend", async () => {
    const w = workload(10, 4);
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 }, SLOW);
    const promises = w.prompts.map((p) => engine.generate(p, { maxTokens: 60 }));
    const errors = Promise.all(promises.map(rejection));
    await sleep(20);
    await engine.close();
    expect((await errors).map((e) => e.name)).toEqual(promises.map(() => "AbortError"));
    expect(fake.closed).toBe(true);
    expect((await rejection(engine.generate([1, 2, 3]))).message).toMatch(/closed/);
    await engine.close(); // idempotent
  });

  it("every pending request rejects (none hangs)", async () => {
    const w = workload(7, 6);
    const { engine } = makeEngine({ mode: "sd", batchSize: 2, draftTokens: 2 }, SLOW);
    const promises = w.prompts.map((p) => engine.generate(p, { maxTokens: 60 }));
    await sleep(10);
    const closing = engine.close();
    const errors = await Promise.all(promises.map(rejection));
    expect(new Set(errors.map((e) => e.name))).toEqual(new Set(["AbortError"]));
    await closing;
  });

  it("closing an idle engine closes the backend", async () => {
    const { engine, fake } = makeEngine({ mode: "ar" });
    await engine.close();
    expect(fake.closed).toBe(true);
  });
});

describe("option validation", () => {
  const fake = new FakeBackend({ nSeqMax: 8, nCtx: 64 });
  const make = (options: object) => () => new Engine(fake, options as never);

  it("rejects bad engine options with precise errors", () => {
    expect(make({ mode: "fast" })).toThrow(RangeError);
    expect(make({ mode: "fast" })).toThrow(/mode must be one of "ar", "sd", "psd", "auto", got "fast"/);
    expect(make({ mode: "sd", draftTokens: 0 })).toThrow(/draftTokens must be an integer in 1..32, got 0/);
    expect(make({ mode: "psd", draftTokens: 33 })).toThrow(RangeError);
    expect(make({ mode: "psd", draftTokens: 2.5 })).toThrow(RangeError);
    expect(make({ mode: "ar", batchSize: 0 })).toThrow(/batchSize must be an integer in 1..256, got 0/);
    expect(make({ mode: "ar", temperature: NaN })).toThrow(
      /temperature must be a finite number in 0..1000000, got NaN/,
    );
    expect(make({ mode: "ar", temperature: -1 })).toThrow(RangeError);
    expect(make({ mode: "ar", temperature: "hot" })).toThrow(TypeError);
    expect(make({ mode: "ar", topP: 0 })).toThrow(/topP must be a finite number in 1e-9..1, got 0/);
    expect(make({ mode: "ar", topP: 1.5 })).toThrow(RangeError);
    expect(make({ mode: "ar", topK: -1 })).toThrow(/topK must be an integer in 0..2147483647, got -1/);
    expect(make({ mode: "sd", draftTemperature: -0.1 })).toThrow(/draftTemperature/);
    expect(make({ mode: "psd", batchSize: 5 })).toThrow(/2 x batchSize = 10 .* at most 8/);
    expect(make({ mode: "sd", batchSize: 9 })).toThrow(/batchSize = 9 .* at most 8/);
    expect(make({ mode: "psd", batchSize: 4 })).not.toThrow();
    // one rule per option, whatever the mode: a draft length of 0 is wrong in ar too
    expect(make({ mode: "ar", draftTokens: 0 })).toThrow(/draftTokens must be an integer in 1..32, got 0/);
  });

  it("requires a draft model for sd and psd", () => {
    const targetOnly = new FakeBackend({ withDraft: false });
    expect(() => new Engine(targetOnly, { mode: "psd" })).toThrow(/mode "psd" needs a draft model/);
    expect(() => new Engine(targetOnly, { mode: "sd" })).toThrow(/draft model/);
    expect(() => new Engine(targetOnly, { mode: "ar" })).not.toThrow();
  });

  it("rejects bad requests", async () => {
    const engine = new Engine(fake, { mode: "sd", batchSize: 2 });
    expect(await rejection(engine.generate([1, 2], { maxTokens: 0 }))).toBeInstanceOf(RangeError);
    expect((await rejection(engine.generate([1, 2], { maxTokens: 0 }))).message).toMatch(
      /maxTokens must be an integer >= 1, got 0/,
    );
    expect((await rejection(engine.generate([1, 2], { temperature: NaN }))).message).toMatch(/temperature/);
    expect((await rejection(engine.generate([1, 2], { topP: 2 }))).message).toMatch(/topP/);
    expect((await rejection(engine.generate([]))).message).toMatch(/prompt is empty/);
    expect((await rejection(engine.generate("", { rawPrompt: true }))).message).toMatch(/prompt is empty/);
    expect(await rejection(engine.generate([1, 99]))).toBeInstanceOf(RangeError);
    const long = makePrompt(1, 65);
    const error = await rejection(engine.generate(long));
    expect(error.message).toMatch(/65/);
    expect(error.message).toMatch(/64/);
    expect((await rejection(engine.generate([1, 2], { stop: [""] }))).message).toMatch(/stop/);
    await engine.close();
  });
});

describe("backend failures", () => {
  for (const [worker, kind] of [
    ["target", "verify"],
    ["draft", "draft"],
    ["target", "prefill"],
    ["draft", "prefill"],
  ] as const) {
    it(`a failing ${worker} ${kind} rejects exactly the requests it served`, { timeout: 10_000 }, async () => {
      const w = workload(10, 7);
      const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 }, SLOW);
      const boom = new Error(`${worker} ${kind} exploded`);
      fake.failOn(worker, kind, 3, boom);
      const settled = await Promise.allSettled(runAll());
      function runAll() {
        return w.prompts.map((p, i) => engine.generate(p, { maxTokens: w.maxTokens[i] }));
      }
      const failed = settled.flatMap((s, i) => (s.status === "rejected" ? [i] : []));
      expect(failed.length).toBeGreaterThan(0);
      for (const i of failed) expect((settled[i] as PromiseRejectedResult).reason).toBe(boom);
      settled.forEach((s, i) => {
        if (s.status === "fulfilled")
          expect(s.value.tokens).toEqual(fake.greedyContinuation(w.prompts[i]!, w.maxTokens[i]!));
      });
      // the failed call is the third of its kind in the trace; it served exactly the rejected requests
      const traceKind = kind === "prefill" ? "prefill" : kind;
      const events = engine
        .trace()
        .filter((e) => e.worker === worker && e.kind === traceKind)
        .sort((a, b) => a.start - b.start);
      if (kind !== "prefill") {
        const ids = failed.map((i) => i + 1);
        expect([...events[2]!.requests].sort((a, b) => a - b)).toEqual(ids);
      } else {
        expect(failed).toHaveLength(1);
      }
      // still usable
      const after = await engine.generate(w.prompts[0]!, { maxTokens: 10 });
      expect(after.tokens).toEqual(fake.greedyContinuation(w.prompts[0]!, 10));
      await engine.close();
    });
  }

  it(
    "a worker that throws synchronously, " + "or returns the wrong number of outputs, rejects instead of crashing",
    async () => {
      const fake = new FakeBackend();
      const engine = new Engine(fake, { mode: "sd", batchSize: 2, draftTokens: 2 });
      const verify = fake.target.verify;
      fake.target.verify = () => {
        throw new Error("sync failure");
      };
      expect((await rejection(engine.generate([1, 2, 3], { maxTokens: 5 }))).message).toBe("sync failure");
      fake.target.verify = async (specs) => (await verify(specs)).slice(1);
      expect((await rejection(engine.generate([1, 2, 3], { maxTokens: 5 }))).message).toMatch(
        /returned 0 outputs for 1/,
      );
      fake.target.verify = verify;
      expect((await engine.generate([1, 2, 3], { maxTokens: 5 })).tokens).toEqual(
        fake.greedyContinuation([1, 2, 3], 5),
      );
      await engine.close();
    },
  );
});

describe("stream and chat", () => {
  it("stream yields the text piece by piece", async () => {
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 2, draftTokens: 3 });
    const prompt = makePrompt(3, 5);
    const pieces: string[] = [];
    for await (const piece of engine.stream(prompt, { maxTokens: 20 })) pieces.push(piece);
    expect(pieces.length).toBeGreaterThan(3);
    expect(pieces.join("")).toBe(fake.info.detokenize(fake.greedyContinuation(prompt, 20)));
    await engine.close();
  });

  it("the stream's generator returns the request's result when it ends", async () => {
    const { engine, fake } = makeEngine({ mode: "sd", batchSize: 2, draftTokens: 3 });
    const prompt = makePrompt(2, 5);
    const stream = engine.stream(prompt, { maxTokens: 12 });
    let text = "";
    for (let step = await stream.next(); ; step = await stream.next()) {
      if (step.done) {
        expect(step.value.tokens).toEqual(fake.greedyContinuation(prompt, 12));
        expect(step.value.text).toBe(text);
        expect(step.value.stats.finishReason).toBe("maxTokens");
        break;
      }
      text += step.value;
    }
    await engine.close();
  });

  it("chatPrompt applies a named template when given one, and load() counts running and queued requests", async () => {
    const { engine, fake } = makeEngine({ mode: "ar", batchSize: 1 }, { chatTemplate: false, verifyDelayMs: 2 });
    const messages = [{ role: "user", content: "abc" }];
    expect(() => engine.chatPrompt(messages)).toThrow(/chat template/);
    expect(engine.chatTemplate).toBeNull();
    expect(engine.chatPrompt(messages, { chatTemplate: "chatml" })).toEqual(
      fake.info.tokenize(fake.info.applyChatTemplate!(messages, true, "chatml"), true),
    );
    expect(fake.info.applyChatTemplate!(messages, true, "chatml")).toMatch(/^chatml /);
    const running = [engine.generate([1, 2], { maxTokens: 30 }), engine.generate([1, 3], { maxTokens: 30 })];
    expect(engine.load()).toEqual({ running: 0, queued: 2, capacity: 1 });
    await sleep(10); // the first request is admitted and decodes 2 ms steps, the second waits
    expect(engine.load()).toEqual({ running: 1, queued: 1, capacity: 1 });
    await Promise.all(running);
    expect(engine.tokenize("ab")).toEqual(fake.info.tokenize("ab", true));
    expect(() => engine.detokenize([99])).toThrow(/not in the vocabulary/);
    await engine.close();
  });

  it("breaking out of a stream aborts its request; errors propagate", async () => {
    const { engine, fake } = makeEngine({ mode: "sd", batchSize: 2, draftTokens: 3 }, SLOW);
    for await (const piece of engine.stream(makePrompt(4, 5), { maxTokens: 200 })) {
      void piece;
      break;
    }
    await sleep(20);
    await engine.close();
    expect(fake.liveSeqs("target")).toEqual([]);
    const { engine: other } = makeEngine({ mode: "sd" });
    const iterate = async () => {
      for await (const piece of other.stream([1, 2], { maxTokens: -1 })) void piece;
    };
    await expect(iterate()).rejects.toThrow(/maxTokens/);
    await other.close();
  });

  it("chat applies the template and refuses a model without one", async () => {
    const { engine, fake } = makeEngine({ mode: "psd", batchSize: 1, draftTokens: 2 });
    const messages = [{ role: "user", content: "abc" }];
    const result = await engine.chat(messages, { maxTokens: 8 });
    const prompt = fake.info.tokenize(fake.info.applyChatTemplate!(messages, true), true);
    expect(result.tokens).toEqual(fake.greedyContinuation(prompt, 8));
    await engine.close();
    const { engine: plain } = makeEngine({ mode: "ar" }, { chatTemplate: false });
    await expect(plain.chat(messages)).rejects.toThrow(
      /no chat template.*chatTemplate option \(CLI: --chat-template\)/,
    );
    await plain.close();
  });
});
