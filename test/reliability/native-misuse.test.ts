// Native API misuse from JavaScript: wrong argument types and ranges, calls after dispose, double dispose, dispose
// while a job runs, getters that dispose the object the addon is reading arguments for. A seeded random driver
// (misuse-driver.mjs, in a child process so a crash is reported with its call) makes thousands of such calls; the
// deterministic cases below pin the behaviour of each kind. (Basic argument checks, dispose-while-running and
// model-in-use: test/native/native.test.ts.)
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaContext } from "../../src/native/context.js";
import { LlamaModel } from "../../src/native/model.js";
import { loadAddon } from "../../src/native/addon.js";
import { MAX_ARRAY_LENGTH } from "../../src/native/args.js";
import { ensureBuilt, repoRoot } from "../cli/helpers.js";
import { microPair, runNode } from "./helpers.js";

const scratch = mkdtempSync(path.join(tmpdir(), "minedraft-misuse-"));
let pair: { target: string; draft: string };
let target: LlamaModel;

beforeAll(async () => {
  ensureBuilt();
  pair = await microPair(path.join(scratch, "micro"));
  target = await LlamaModel.load(pair.target);
});

afterAll(() => {
  try {
    target?.dispose();
  } catch {}
  rmSync(scratch, { recursive: true, force: true });
});

// Under AddressSanitizer (scripts/asan-check.sh) every call is ~10x slower: fewer calls, same seeds.
const CALLS = process.env.MINEDRAFT_ASAN ? 1500 : 4000;

describe("randomized misuse (seeded, child process)", () => {
  for (const seed of [1, 2]) {
    it(`seed ${seed}: ${CALLS} random calls return, throw an Error or settle; the process never crashes`, {
      timeout: 300_000,
    }, async () => {
      const log = path.join(scratch, `misuse-${seed}.log`);
      const r = await runNode(
        [
          "--expose-gc",
          path.join(repoRoot, "test", "reliability", "misuse-driver.mjs"),
          "--seed",
          String(seed),
          "--calls",
          String(CALLS),
          "--target",
          pair.target,
          "--draft",
          pair.draft,
        ],
        {
          env: { MISUSE_LOG: log },
          timeoutMs: 280_000,
        },
      );
      const lastCalls = () => readFileSync(log, "utf8").trim().split("\n").slice(-5).join("\n");
      expect(r.signal, `crashed (${r.signal}) at:\n${lastCalls()}\n${r.stderr.slice(-3000)}`).toBeNull();
      expect(r.timedOut, `hung at:\n${lastCalls()}`).toBe(false);
      expect(r.code, `exit ${r.code} at:\n${lastCalls()}\n${r.stderr.slice(-3000)}`).toBe(0);
      const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      expect(summary.calls).toBe(CALLS);
      expect(summary.nonErrors).toEqual([]); // every throw / rejection is an Error
      expect(summary.unsettled).toBe(0); // every promise settled
      // the run exercised every kind of outcome and every operation
      expect(summary.threw).toBeGreaterThan(CALLS * 0.2);
      expect(summary.resolved).toBeGreaterThan(CALLS * 0.03);
      expect(summary.rejected).toBeGreaterThan(10);
      expect(summary.contexts).toBeGreaterThan(5);
      expect(Object.keys(summary.byOp).length).toBeGreaterThanOrEqual(35);
    });
  }
});

describe("misuse through the wrappers (deterministic)", () => {
  it("every context method after dispose throws 'Context is disposed'; dispose is idempotent", async () => {
    const ctx = await LlamaContext.create(target, { contextSize: 32, sequences: 2 });
    await ctx.prefill(0, 0, [1, 2, 3]);
    await Promise.all([ctx.dispose(), ctx.dispose()]);
    await ctx.dispose();
    const calls: [string, () => unknown][] = [
      ["decode", () => ctx.decode({ tokens: [1], pos: [0], seq: [0] })],
      ["prefill", () => ctx.prefill(0, 0, [1])],
      ["draft", () => ctx.draft([{ seq: 0, pos: 0, tokens: [1], k: 1 }])],
      ["verify", () => ctx.verify([{ seq: 0, pos: 0, pending: 1, draft: [] }])],
      ["removeRange", () => ctx.removeRange(0)],
      ["removeSeq", () => ctx.removeSeq(0)],
      ["copySeq", () => ctx.copySeq(0, 1)],
      ["keepSeq", () => ctx.keepSeq(0)],
      ["clear", () => ctx.clear()],
      ["positions", () => ctx.positions(0)],
    ];
    for (const [name, call] of calls) expect(call, name).toThrow(/Context is disposed/);
    expect(ctx.info().disposed).toBe(true);
  });

  it("a getter that disposes the context while its arguments are read: an Error, not a use-after-free", async () => {
    for (const kind of ["decode", "prefill", "draft", "verify"] as const) {
      const ctx = await LlamaContext.create(target, { contextSize: 32, sequences: 2 });
      const dispose = () => void ctx.dispose();
      const call = {
        decode: () =>
          ctx.decode({
            tokens: [1, 2],
            pos: [0, 1],
            get seq() {
              dispose();
              return [0, 0];
            },
          } as never),
        prefill: () => {
          const toks = [1, 2, 3];
          Object.defineProperty(toks, 1, {
            get() {
              dispose();
              return 2;
            },
          });
          return ctx.prefill(0, 0, toks);
        },
        draft: () =>
          ctx.draft([
            {
              get seq() {
                dispose();
                return 0;
              },
              pos: 0,
              tokens: [1],
              k: 2,
            } as never,
          ]),
        verify: () =>
          ctx.verify([
            {
              seq: 0,
              pos: 0,
              pending: 1,
              get draft() {
                dispose();
                return [2];
              },
            } as never,
          ]),
      }[kind];
      expect(call, kind).toThrow(/Context is disposed/);
      await ctx.dispose();
    }
  });

  it(
    "a getter that disposes the model while the tokenizer " + "reads its arguments: an Error, not a use-after-free",
    async () => {
      for (const kind of ["detokenize", "applyChatTemplate"] as const) {
        const m = await LlamaModel.load(pair.target);
        const dispose = () => m.dispose();
        if (kind === "detokenize") {
          const toks = [1, 2, 3];
          Object.defineProperty(toks, 2, {
            get() {
              dispose();
              return 3;
            },
          });
          expect(() => m.detokenize(toks)).toThrow(/Model is disposed/);
        } else {
          expect(() =>
            m.applyChatTemplate([
              {
                role: "user",
                get content() {
                  dispose();
                  return "hi";
                },
              },
            ]),
          ).toThrow(/Model is disposed/);
        }
        expect(m.disposed).toBe(true);
      }
    },
  );

  it(
    "arrays too long for any native argument (a sparse " + "array of length 2^32-1) are refused before copying",
    async () => {
      const ctx = await LlamaContext.create(target, { contextSize: 32 });
      const huge: number[] = [];
      huge.length = 2 ** 32 - 1;
      expect(() => ctx.prefill(0, 0, huge)).toThrow(
        new RegExp(`array of 4294967295 items is too long for a native argument \\(at most ${MAX_ARRAY_LENGTH}\\)`),
      );
      expect(() => ctx.decode({ tokens: huge, pos: huge, seq: huge })).toThrow(/too long/);
      expect(() => target.detokenize(huge)).toThrow(/too long/);
      // long but sane: the addon's own checks answer
      const long: number[] = [];
      long.length = 1 << 20;
      expect(() => ctx.prefill(0, 0, long)).toThrow(/tokens must be a number|exceeds the sequence's context/);
      await ctx.dispose();
    },
  );

  it(
    "copySeq over a partial range between per-sequence KV streams " +
      "is refused (llama.cpp would abort); unified KV allows it",
    async () => {
      const ctx = await LlamaContext.create(target, { contextSize: 32, sequences: 2 });
      await ctx.prefill(0, 0, [1, 2, 3, 4, 5, 6]);
      expect(() => ctx.copySeq(0, 1, 2, 5)).toThrow(/copies whole sequences only/);
      expect(() => ctx.copySeq(0, 1, 0, 4)).toThrow(/copies whole sequences only/);
      await ctx.copySeq(0, 1); // whole: fine
      await ctx.copySeq(0, 0, 2, 4); // same sequence: a no-op
      expect(await ctx.positions(1)).toEqual({ min: 0, max: 5 });
      await ctx.dispose();
      const unified = await LlamaContext.create(target, { contextSize: 32, sequences: 2, kvUnified: true });
      await unified.prefill(0, 0, [1, 2, 3, 4, 5, 6]);
      await unified.copySeq(0, 1, 2, 5);
      expect(await unified.positions(1)).toEqual({ min: 2, max: 4 });
      await unified.dispose();
    },
  );

  it(
    "thread counts beyond ggml's 512 are refused (ggml's arrays hold 512; " + "600 threads also hang a 2-core machine)",
    async () => {
      await expect(LlamaContext.create(target, { contextSize: 32, threads: 513 })).rejects.toThrow(
        /threads must be an integer in 1..512, got 513/,
      );
      await expect(LlamaContext.create(target, { contextSize: 32, threads: 0 })).rejects.toThrow(
        /threads must be an integer in 1..512, got 0/,
      );
    },
  );

  it("raw addon: wrong types and ranges throw TypeError / RangeError naming the argument", async () => {
    const addon = await loadAddon();
    const raw = await addon.createContext(target.raw, { nCtx: 64, nSeqMax: 2 });
    expect(() => raw.prefill("0" as never, 0, [1])).toThrow(TypeError);
    expect(() => raw.prefill(0, -1, [1])).toThrow(/pos must be in/);
    expect(() => raw.prefill(0, 0, [1.5])).toThrow(/must be an integer/);
    expect(() => raw.decode({ tokens: [1], pos: [0], seq: [5] })).toThrow(/batch\.seq/);
    expect(() => raw.kvRemove(7)).toThrow(RangeError);
    expect(() => raw.draft([{ seq: 0, pos: 0, tokens: [1], k: 300 }])).toThrow(/spec\.k must be in \[1, 256\]/);
    expect(() =>
      raw.verify([{ seq: 0, pos: 0, pending: 1, draft: [1], sampling: { temperature: NaN } } as never]),
    ).toThrow(/temperature/);
    expect(() => addon.firstTokenTextDifference(target.raw, {} as never)).toThrow(/takes two models/);
    expect(() => addon.firstTokenTextDifference({} as never, target.raw)).toThrow(/takes two models/);
    expect(() => new (addon as unknown as { Model: new (x: unknown) => unknown }).Model({})).toThrow(
      /cannot be constructed directly/,
    );
    expect(() => addon.createContext({} as never, {})).toThrow(/model must be a Model/);
    await raw.dispose();
  });
});

describe("misuse through the raw addon objects is survived too (child processes)", () => {
  // The wrappers above prevent these; the native layer itself must also refuse them (cpp/context/bindings.cc).
  const child = (body: string) =>
    runNode(
      [
        "--input-type=module",
        "-e",
        `
      const { loadAddon } = await import(${JSON.stringify(path.join(repoRoot, "dist", "native", "addon.js"))});
      const addon = await loadAddon();
      const model = await addon.loadModel(${JSON.stringify(pair.target)});
      const ctx = await addon.createContext(model, { nCtx: 64, nSeqMax: 2 });
      await ctx.prefill(0, 0, [1, 2, 3, 4, 5]);
      try { ${body} } catch (e) { console.log("ERROR " + e.message); }
      console.log("SURVIVED");`,
      ],
      { timeoutMs: 60_000 },
    );

  it("raw Context: a getter that disposes the context while the addon reads the spec does not crash", async () => {
    const r = await child(`await ctx.draft([{ get seq() { ctx.dispose(); return 0; }, pos: 5, tokens: [1], k: 2 }]);`);
    expect(r.signal, r.stderr.slice(-500)).toBeNull();
    expect(r.stdout).toMatch(/SURVIVED/);
  });

  it("raw Context: kvCopy of a partial range between KV streams is refused, not a GGML_ASSERT abort", async () => {
    const r = await child(`await ctx.kvCopy(0, 1, 1, 3);`);
    expect(r.signal, r.stderr.slice(-500)).toBeNull();
    expect(r.stdout).toMatch(/SURVIVED/);
  });
});
