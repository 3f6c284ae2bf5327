// Model pairs: a draft whose vocabulary cannot serve the target is refused at engine creation with the reason.
// (spm target + bpe draft: test/native/native.test.ts and test/integration/engine-real.test.ts.) The micro pairs
// here share one architecture and differ only in their vocabulary, crafted with test/support/gguf.mjs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine } from "../../src/create-engine.js";
import { LlamaModel } from "../../src/native/model.js";
import { microPair, type VocabOptions } from "./helpers.js";

const scratch = mkdtempSync(path.join(tmpdir(), "minedraft-pairs-"));
let base: { target: string; draft: string };
const variants = new Map<string, { target: string; draft: string }>();
const VARIANTS: Record<string, VocabOptions> = {
  eos3: { eos: 3 },
  bos3: { bos: 3 },
  noAddBos: { addBos: false },
  renamed: { renameToken: [300, "\u2581zzz"] },
  bigger200: { extra: 155 + 200 },
  bigger64: { extra: 155 + 64 },
  ugm: { model: "t5" },
};

beforeAll(async () => {
  base = await microPair(path.join(scratch, "base"));
  for (const [name, opts] of Object.entries(VARIANTS))
    variants.set(name, await microPair(path.join(scratch, name), opts));
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const engineOf = (target: string | LlamaModel, draft: string | LlamaModel, mode: "sd" | "psd" = "sd") =>
  createEngine({
    mode,
    batchSize: 2,
    draftTokens: 3,
    contextSize: 64,
    target: { model: target, threads: 1 },
    draft: { model: draft, threads: 1 },
  });

describe("incompatible vocabularies are refused at engine creation, with the reason", () => {
  const cases: [string, RegExp][] = [
    ["ugm", /vocabulary types differ: target spm, draft ugm/],
    ["eos3", /special token EOS differs: target 2, draft 3/],
    ["bos3", /special token BOS differs: target 1, draft 3/],
    ["noAddBos", /add-BOS setting differs/],
    ["renamed", /token 300 differs: target '.*', draft '\u2581zzz'/],
    ["bigger200", /vocabulary sizes differ by more than 128: target 414, draft 614/],
  ];
  for (const [name, why] of cases) {
    it(`${name}: ${why.source}`, async () => {
      for (const mode of ["sd", "psd"] as const) {
        await expect(engineOf(base.target, variants.get(name)!.draft, mode)).rejects.toThrow(
          new RegExp(`the draft model cannot draft for the target: ${why.source}`),
        );
      }
    });
  }

  it("the check runs before any context exists: loaded models passed in stay free to dispose", async () => {
    const target = await LlamaModel.load(base.target);
    const draft = await LlamaModel.load(variants.get("eos3")!.draft);
    await expect(engineOf(target, draft)).rejects.toThrow(/special token EOS differs/);
    // a context left behind would make dispose() throw "context(s) still use it"
    expect(() => draft.dispose()).not.toThrow();
    expect(() => target.dispose()).not.toThrow();
  });

  it("the reverse direction is refused as well (the target has the larger vocabulary)", async () => {
    await expect(engineOf(variants.get("bigger200")!.target, base.draft)).rejects.toThrow(
      /vocabulary sizes differ by more than 128: target 614, draft 414/,
    );
  });
});

describe("compatible vocabularies that differ in size within the tolerance", () => {
  it(
    "a draft with 64 more tokens serves the target, " + "losslessly (it never proposes a token the target lacks)",
    async () => {
      const prompts = ["Once upon a time", "the cat", "1, 2, 3,", "hello there"];
      const ar = await createEngine({
        mode: "ar",
        batchSize: 4,
        contextSize: 64,
        target: { model: base.target, threads: 1 },
      });
      const reference = await Promise.all(prompts.map((p) => ar.generate(p, { maxTokens: 16 })));
      await ar.close();
      for (const [target, draft] of [[base.target, variants.get("bigger64")!.draft]]) {
        const e = await engineOf(target!, draft!, "psd");
        const out = await Promise.all(prompts.map((p) => e.generate(p, { maxTokens: 16 })));
        expect(out.map((r) => r.tokens)).toEqual(reference.map((r) => r.tokens));
        for (const r of out) for (const t of r.tokens) expect(t).toBeLessThan(414);
        await e.close();
      }
    },
  );

  it(
    "a target with 64 more tokens accepts the smaller draft; " + "target tokens the draft lacks do not fail requests",
    async () => {
      const big = variants.get("bigger64")!;
      const prompts = ["Once upon a time", "the cat", "1, 2, 3,", "hello there", "zz top", "A B C"];
      const ar = await createEngine({
        mode: "ar",
        batchSize: 4,
        contextSize: 64,
        target: { model: big.target, threads: 1 },
      });
      const reference = await Promise.all(prompts.map((p) => ar.generate(p, { maxTokens: 24 })));
      await ar.close();
      // the case under test: the target emits ids the draft's vocabulary (414) does not have
      expect(reference.some((r) => r.tokens.some((t) => t >= 414))).toBe(true);
      const e = await engineOf(big.target, base.draft, "psd");
      const out = await Promise.all(prompts.map((p) => e.generate(p, { maxTokens: 24 })));
      expect(out.map((r) => r.tokens)).toEqual(reference.map((r) => r.tokens));
      await e.close();
    },
  );
});
