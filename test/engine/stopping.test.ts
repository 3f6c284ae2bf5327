// Why generation ends: maxTokens, EOG, stop strings, a full context; and incremental UTF-8 text.
import { describe, expect, it } from "vitest";
import type { Mode } from "../../src/engine/types.js";
import { TextAssembler } from "../../src/engine/text.js";
import { FakeBackend, makePrompt } from "./fake-backend.js";
import { makeEngine } from "./helpers.js";

const MODES: Mode[] = ["ar", "sd", "psd"];
const FAKE = { eogToken: 0, eogBias: -1 };

/** First prompt seed whose greedy continuation meets EOG within `within` tokens (after at least 4). */
function promptEndingInEog(within: number): number[] {
  const fake = new FakeBackend(FAKE);
  for (let seed = 0; ; seed++) {
    const prompt = makePrompt(seed, 6);
    const n = fake.greedyContinuation(prompt, within).length;
    if (n >= 4 && n < within) return prompt;
  }
}

describe("finish reasons", () => {
  for (const mode of MODES) {
    it(`${mode}: maxTokens`, async () => {
      const { engine } = makeEngine({ mode, batchSize: 2, draftTokens: 4 });
      const results = await Promise.all(
        [1, 2, 7, 13].map((n, i) => engine.generate(makePrompt(i, 5), { maxTokens: n })),
      );
      expect(results.map((r) => r.tokens.length)).toEqual([1, 2, 7, 13]);
      expect(
        results.every((r) => r.stats.finishReason === "maxTokens" && r.stats.generatedTokens === r.tokens.length),
      ).toBe(true);
      await engine.close();
    });

    it(`${mode}: end of generation`, async () => {
      const prompt = promptEndingInEog(60);
      const { engine, fake } = makeEngine({ mode, batchSize: 2, draftTokens: 4 }, FAKE);
      const result = await engine.generate(prompt, { maxTokens: 60 });
      expect(result.stats.finishReason).toBe("eog");
      expect(result.tokens).toEqual(fake.greedyContinuation(prompt, 60));
      expect(result.tokens).not.toContain(0);
      await engine.close();
    });

    it(`${mode}: stop strings cut the text before the stop and are never streamed`, async () => {
      const prompt = makePrompt(21, 7);
      const { engine: ar } = makeEngine({ mode: "ar" });
      const full = (await ar.generate(prompt, { maxTokens: 40 })).text;
      const stop = full.slice(12, 15);
      const expected = full.slice(0, full.indexOf(stop));
      const { engine } = makeEngine({ mode, batchSize: 2, draftTokens: 4 });
      const pieces: string[] = [];
      const result = await engine.generate(prompt, {
        maxTokens: 40,
        stop: ["zzz", stop],
        onText: (p) => pieces.push(p),
      });
      expect(result.stats.finishReason).toBe("stop");
      expect(result.text).toBe(expected);
      expect(pieces.join("")).toBe(expected);
      // a stop that never occurs changes nothing
      const free = await engine.generate(prompt, { maxTokens: 40, stop: ["zzz"] });
      expect(free.text).toBe(full);
      await Promise.all([ar.close(), engine.close()]);
    });

    it(`${mode}: a full context ends generation without writing past nCtx`, async () => {
      // the fake throws on any write past nCtx, so k must shrink near the end
      const { engine, fake } = makeEngine({ mode, batchSize: 2, draftTokens: 8 }, { nCtx: 40, draftNoise: 0.3 });
      const prompt = makePrompt(5, 30);
      const [result, exact] = await Promise.all([
        engine.generate(prompt, { maxTokens: 100 }),
        engine.generate(makePrompt(6, 40), { maxTokens: 100 }),
      ]);
      expect(result.stats.finishReason).toBe("contextFull");
      // positions 29..39 hold the pending tokens of 11 verifications: 11 tokens
      expect(result.tokens).toEqual(fake.greedyContinuation(prompt, 11));
      expect(exact.stats.finishReason).toBe("contextFull");
      expect(exact.tokens).toHaveLength(1);
      await engine.close();
    });

    it(`${mode}: a one-token prompt needs no prefill`, async () => {
      const { engine, fake } = makeEngine({ mode, batchSize: 1, draftTokens: 3 });
      const result = await engine.generate([1], { maxTokens: 10 });
      expect(result.tokens).toEqual(fake.greedyContinuation([1], 10));
      await engine.close();
    });
  }
});

describe("TextAssembler", () => {
  const bytes = (...b: number[]) => Uint8Array.from(b);
  const utf8 = (s: string) => new TextEncoder().encode(s);

  it("emits a multi-byte character only once complete", () => {
    const text = new TextAssembler([]);
    expect(text.push(utf8("a")).piece).toBe("a");
    expect(text.push(bytes(0xc3)).piece).toBe("");
    expect(text.push(bytes(0xa9)).piece).toBe("é");
    expect(text.push(bytes(0xf0, 0x9f)).piece).toBe("");
    expect(text.push(bytes(0x98, 0x80)).piece).toBe("😀");
    expect(text.finish()).toBe("");
    expect(text.value).toBe("aé😀");
  });

  it("holds back a possible stop prefix and releases it when it is not one", () => {
    const text = new TextAssembler(["END"]);
    expect(text.push(utf8("abE")).piece).toBe("ab");
    expect(text.push(utf8("N")).piece).toBe("");
    expect(text.push(utf8("x")).piece).toBe("ENx");
    expect(text.push(utf8("yEN")).piece).toBe("y");
    expect(text.push(utf8("D tail"))).toEqual({ piece: "", stopped: true });
    expect(text.value).toBe("abENxy");
  });

  it("finds the earliest of several stops, spanning tokens", () => {
    const text = new TextAssembler(["cd", "bcx"]);
    expect(text.push(utf8("ab"))).toEqual({ piece: "a", stopped: false });
    expect(text.push(utf8("cde"))).toEqual({ piece: "b", stopped: true });
    expect(text.value).toBe("ab");
  });

  it("without a reader of pieces or stop strings, decodes only when the text is read, to the same text", () => {
    const chunks = [
      utf8("a"),
      bytes(0xc3),
      bytes(0xa9),
      bytes(0xf0, 0x9f),
      bytes(0x98, 0x80),
      utf8(" b"),
      bytes(0xe2, 0x82),
    ];
    const streamed = new TextAssembler([]);
    const quiet = new TextAssembler([], false);
    let pieces = "";
    for (const c of chunks) {
      pieces += streamed.push(c).piece;
      expect(quiet.push(c)).toEqual({ piece: "", stopped: false });
    }
    expect(quiet.value).toBe(streamed.value); // a partial character stays pending in both
    expect(quiet.value).toBe("aé😀 b");
    quiet.push(bytes(0xac));
    pieces += streamed.push(bytes(0xac)).piece;
    expect(quiet.finish()).toBe("aé😀 b€");
    expect(pieces + streamed.finish()).toBe("aé😀 b€");
    // stop strings need the text as it comes: pushes decode at once
    const stopping = new TextAssembler(["b"], false);
    expect(stopping.push(utf8("ab"))).toEqual({ piece: "a", stopped: true });
  });

  it("flushes held-back text and an incomplete character at the end", () => {
    const text = new TextAssembler(["xyz"]);
    expect(text.push(utf8("ax")).piece).toBe("a");
    expect(text.push(bytes(0xc3)).piece).toBe("");
    expect(text.finish()).toBe("x\uFFFD");
  });
});
