// Lifecycle on real contexts: close() with requests in flight (all reject with AbortError, the contexts are
// freed, the process exits on its own), exiting with work in flight or without close(), and repeated engine
// create / close cycles without memory growth. (Abort one / abort all mid-flight: stress.test.ts and
// engine-real.test.ts; SIGINT during `minedraft generate --output`: test/cli/cli.test.ts.)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine } from "../../src/create-engine.js";
import { LlamaModel } from "../../src/native/model.js";
import { ensureBuilt, repoRoot } from "../cli/helpers.js";
import { microPair, runNode } from "./helpers.js";

const scratch = mkdtempSync(path.join(tmpdir(), "minedraft-lifecycle-"));
let pair: { target: string; draft: string };

beforeAll(async () => {
  ensureBuilt();
  pair = await microPair(path.join(scratch, "micro"));
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A child script that imports the built library as `lib` and has the micro pair as `pair`. */
const childScript = (body: string) => `
  const lib = await import(${JSON.stringify(path.join(repoRoot, "dist", "index.js"))});
  const pair = ${JSON.stringify(pair)};
  ${body}`;
const runChild = (body: string, opts: { timeoutMs?: number; args?: string[] } = {}) =>
  runNode([...(opts.args ?? []), "--input-type=module", "-e", childScript(body)], {
    timeoutMs: opts.timeoutMs ?? 60_000,
  });

describe("close() with requests in flight", () => {
  it(
    "running and queued requests all reject with AbortError; " + "the contexts are freed; close is idempotent",
    async () => {
      const target = await LlamaModel.load(pair.target);
      const draft = await LlamaModel.load(pair.draft);
      const e = await createEngine({
        mode: "psd",
        batchSize: 2,
        draftTokens: 3,
        contextSize: 512,
        target: { model: target, threads: 1 },
        draft: { model: draft, threads: 1 },
      });
      let pieces = 0;
      let closing: Promise<void> | undefined;
      // 10 requests for 4 slots: 6 queued; close from inside a text callback, i.e. in the middle of a step
      const runs = Array.from({ length: 10 }, (_, i) =>
        e.generate(`request ${i} once upon a time`, {
          maxTokens: 400,
          onText: () => void (++pieces === 5 && (closing = e.close())),
        }),
      );
      const settled = await Promise.allSettled(runs);
      await closing;
      for (const s of settled) {
        expect(s.status).toBe("rejected");
        expect((s as PromiseRejectedResult).reason.name).toBe("AbortError");
        expect((s as PromiseRejectedResult).reason.message).toMatch(/closed/);
      }
      await e.close();
      await expect(e.generate("after close")).rejects.toThrow(/the engine is closed/);
      // a context still alive would make this throw "context(s) still use it"
      expect(() => draft.dispose()).not.toThrow();
      expect(() => target.dispose()).not.toThrow();
    },
  );

  it("the process then exits on its own (no process.exit, no hanging handle), with code 0", async () => {
    const r = await runChild(`
      const e = await lib.createEngine({
        mode: "psd", batchSize: 2, contextSize: 512,
        target: { model: pair.target, threads: 1 }, draft: { model: pair.draft, threads: 1 }
      });
      let n = 0;
      const runs = Promise.allSettled(Array.from({ length: 8 }, (_, i) =>
        e.generate("go " + i, { maxTokens: 400, onText: () => { if (++n === 3) e.close(); } })));
      const s = await runs;
      console.log(JSON.stringify(s.map((x) => x.status === "rejected" ? x.reason.name : "ok")));
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.timedOut).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual(Array(8).fill("AbortError"));
  });
});

describe("exiting with native work in flight", () => {
  it("process.exit() while both workers decode: exit code 0, no crash in teardown", async () => {
    const r = await runChild(`
      const e = await lib.createEngine({
        mode: "psd", batchSize: 4, contextSize: 1024,
        target: { model: pair.target, threads: 1 }, draft: { model: pair.draft, threads: 1 }
      });
      let n = 0;
      for (let i = 0; i < 8; i++)
        e.generate("word ".repeat(100) + i, { maxTokens: 500, onText: () => { if (++n === 10) process.exit(0); } })
          .catch(() => {});
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/terminate called|Segmentation|Aborted|FATAL/);
  });

  it(
    "an engine never closed: the process exits when the " + "work is done (idle contexts do not keep it alive)",
    async () => {
      const r = await runChild(`
      const e = await lib.createEngine({
        mode: "sd", batchSize: 2, contextSize: 128,
        target: { model: pair.target, threads: 1 }, draft: { model: pair.draft, threads: 1 }
      });
      const out = await e.generate("Once upon a time", { maxTokens: 8 });
      console.log(out.tokens.length);
    `);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.timedOut).toBe(false);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("8");
    },
  );

  it("an uncaught exception with requests in flight: the usual exit code 1, not a native crash", async () => {
    const r = await runChild(`
      const e = await lib.createEngine({
        mode: "psd", batchSize: 2, contextSize: 512,
        target: { model: pair.target, threads: 1 }, draft: { model: pair.draft, threads: 1 }
      });
      let n = 0;
      for (let i = 0; i < 4; i++)
        e.generate("go " + i, {
          maxTokens: 400,
          onText: () => { if (++n === 4) setImmediate(() => { throw new Error("user bug"); }); }
        }).catch(() => {});
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error: user bug/);
    expect(r.stderr).not.toMatch(/terminate called|Segmentation|FATAL/);
  });
});

describe("repeated create / close", () => {
  it("30 engine create / generate / close cycles with model load / dispose: " +
    "RSS settles (a lost engine would add ~13 MB a cycle)", {
    timeout: 180_000,
  }, async () => {
    const r = await runChild(
      `
      const rss = () => { globalThis.gc(); return process.memoryUsage().rss; };
      const samples = [];
      for (let cycle = 0; cycle < 30; cycle++) {
        const target = await lib.LlamaModel.load(pair.target);
        const draft = await lib.LlamaModel.load(pair.draft);
        // 8 sequences x 4096 positions: ~13 MB of KV cache per engine, so a context that is not freed shows
        const e = await lib.createEngine({
          mode: "psd", batchSize: 4, contextSize: 4096,
          target: { model: target, threads: 1 }, draft: { model: draft, threads: 1 }
        });
        const ctrl = new AbortController();
        const runs = Array.from({ length: 8 }, (_, i) =>
          e.generate("cycle " + cycle + " " + i, { maxTokens: 24, signal: i === 3 ? ctrl.signal : undefined })
            .catch(() => {}));
        setTimeout(() => ctrl.abort(), 1);
        await Promise.all(runs);
        await e.close();
        draft.dispose();
        target.dispose();
        await new Promise((res) => setTimeout(res, 10));
        samples.push(rss());
      }
      console.log(JSON.stringify(samples));
    `,
      { args: ["--expose-gc"], timeoutMs: 170_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const samples: number[] = JSON.parse(r.stdout.trim());
    // glibc keeps some freed KV buffers in its heap for a while (RSS steps up to a plateau within ~15 cycles);
    // over the last 15 cycles, engines that were not freed would add ~13 MB each (~200 MB)
    const warm = samples[14]!;
    const last = samples.at(-1)!;
    expect((last - warm) / 1e6, `RSS MB per cycle: ${samples.map((x) => (x / 1e6).toFixed(0)).join(" ")}`).toBeLessThan(
      40,
    );
  });
});
