#!/usr/bin/env node
// Exercises every native entry point of the addon once or more, frees everything, collects garbage and exits
// normally, so that LeakSanitizer (scripts/asan-check.sh) can report what the addon did not free.
// Run with: node --expose-gc scripts/asan-leak-driver.mjs   (the addon from $MINEDRAFT_ADDON_PATH when set)
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { microPair } from "../test/support/gguf-fuzz.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lib = await import(pathToFileURL(path.join(root, "dist", "index.js")).href);
const { LlamaModel, LlamaContext, createEngine, loadAddon } = lib;

const tmp = mkdtempSync(path.join(os.tmpdir(), "minedraft-leak-"));
const expectThrow = async (f) => {
  try {
    await f();
  } catch {
    return;
  }
  throw new Error(`expected an error from ${f}`);
};

try {
  const addon = await loadAddon();
  addon.devices();
  addon.systemInfo();
  const pair = await microPair(path.join(tmp, "pair"));

  // models: load, tokenizer, metadata, errors
  const target = await LlamaModel.load(pair.target);
  const draft = await LlamaModel.load(pair.draft);
  const toks = target.tokenize("Once upon a time, caf\u00e9 \u{1F600}", true, true);
  target.detokenize(toks, false, true);
  for (let t = 0; t < target.nVocab; t++) target.tokenBytes(t);
  target.tokenText(3);
  target.isEog(2);
  target.incompatibilityWith(draft);
  // a named template works on any model; an unknown one is llama.cpp's failure path
  target.applyChatTemplate([{ role: "user", content: "hi" }], true, "chatml");
  await expectThrow(() => target.applyChatTemplate([{ role: "user", content: "hi" }], true, "no-such-template"));
  await expectThrow(() => target.detokenize([1e6]));
  writeFileSync(path.join(tmp, "bad.gguf"), readFileSync(pair.target).subarray(0, 5000));
  await expectThrow(() => LlamaModel.load(path.join(tmp, "bad.gguf")));
  await expectThrow(() => addon.loadModel(path.join(tmp, "bad.gguf"))); // llama.cpp's own failure path

  // contexts: every job kind, KV operations, argument errors, dispose while running
  for (const [tp, unified] of [
    [false, false],
    [true, true],
  ]) {
    const ctx = await LlamaContext.create(target, {
      contextSize: 128,
      sequences: 2,
      threads: tp ? 2 : 1,
      threadpool: tp,
      kvUnified: unified,
    });
    const dctx = await LlamaContext.create(draft, { contextSize: 128, sequences: 2, threads: 1 });
    await ctx.decode({ tokens: toks, pos: toks.map((_, i) => i), seq: toks.map(() => 0), logits: toks.map(() => 1) });
    await ctx.prefill(1, 0, toks.slice(0, 4));
    await dctx.prefill(0, 0, toks.slice(0, -1));
    await dctx.prefill(1, 0, toks.slice(0, -1));
    const sampling = { temperature: 0.8, topK: 40, topP: 0.9 };
    await dctx.draft([
      { seq: 0, pos: toks.length - 1, tokens: [toks.at(-1)], k: 3 },
      { seq: 1, pos: toks.length - 1, tokens: [toks.at(-1)], k: 3, sampling, uniforms: [0.1, 0.5, 0.9] },
    ]);
    await ctx.verify(
      [{ seq: 1, pos: 4, pending: toks[4], draft: [5, 6, 7], sampling, uniforms: [0.2, 0.4, 0.6, 0.8], draftSeq: 1 }],
      dctx,
    );
    await ctx.verify([{ seq: 0, pos: toks.length, pending: 5, draft: [6, 7] }]);
    await ctx.positions(0);
    await ctx.copySeq(0, 1);
    await ctx.keepSeq(0);
    await ctx.removeRange(0, 3, -1);
    await ctx.clear();
    ctx.info();
    await expectThrow(() => ctx.decode({ tokens: [], pos: [], seq: [] }));
    await expectThrow(() => ctx.prefill(9, 0, [1]));
    const running = ctx.prefill(
      0,
      0,
      Array.from({ length: 100 }, (_, i) => 3 + i),
    );
    const disposing = ctx.dispose();
    await running;
    await disposing;
    await ctx.dispose();
    await expectThrow(() => ctx.prefill(0, 0, [1]));
    await dctx.dispose();
  }
  // contexts that are never disposed: freed by their finalizers
  await LlamaContext.create(draft, { contextSize: 32 }).then((c) => c.prefill(0, 0, [1, 2, 3]).then(() => c.dispose()));

  // the engine: psd with stochastic and greedy requests, an abort, close with requests in flight
  const engine = await createEngine({
    mode: "psd",
    batchSize: 2,
    draftTokens: 3,
    contextSize: 128,
    target: { model: target, threads: 1 },
    draft: { model: draft, threads: 1 },
  });
  const ctrl = new AbortController();
  const runs = [0, 1, 2, 3, 4].map((i) =>
    engine.generate("Once upon a time", {
      maxTokens: 12 + i,
      temperature: i % 2 ? 0.9 : 0,
      seed: i,
      signal: i === 2 ? ctrl.signal : undefined,
    }),
  );
  setTimeout(() => ctrl.abort(), 5);
  await Promise.allSettled(runs);
  const inflight = Promise.allSettled([0, 1, 2].map(() => engine.generate("Hello", { maxTokens: 100 })));
  await engine.close();
  await inflight;

  target.dispose();
  draft.dispose();
  target.dispose(); // double dispose

  // synthesis (cpp/synth/, the minedraft_synth module) once more, into a fresh folder
  await microPair(path.join(tmp, "pair2"), {}, 7);
  console.log("asan-leak-driver: done");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
// let finalizers run: wrapped objects free their native halves when collected
for (let i = 0; i < 5; i++) {
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 50));
}
