// Helpers for the reliability tests: the micro synthetic pair (64 wide, 2 layers, a 414-token vocab: ~0.5 MB,
// made in ~0.1 s), GGUF editing, seeded randomness, and child processes that may crash without taking vitest down.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { LlamaModel } from "../../src/native/model.js";
import { synthesizePair } from "../../src/synth/index.js";
// plain-JS GGUF tooling shared with the fuzzer (test/support)
import { GGUF_TYPE, parseLayout, rng, tinyVocabFile } from "../support/gguf.mjs";

export { GGUF_TYPE, parseLayout, rng };

/** The micro architecture (same as test/support/gguf-fuzz.mjs MICRO_ARCH). */
export const MICRO_ARCH = { nEmbd: 64, nLayer: 2, nDraftLayer: 1, nFf: 128, nHead: 2, nHeadKv: 1, nCtxTrain: 512 };

export interface VocabOptions {
  /** word pieces after the 259 special + byte tokens (default: all 155 built-in pieces) */
  extra?: number;
  bos?: number;
  eos?: number;
  addBos?: boolean;
  renameToken?: [number, string];
  model?: string;
  /** tokenizer keys to leave out */
  omit?: string[];
}

/** A micro target/draft pair over the tiny vocabulary (with `vocab` options) in `dir`. Deterministic bytes. */
export async function microPair(
  dir: string,
  vocab: VocabOptions = {},
  seed = 0,
): Promise<{ target: string; draft: string; vocab: string }> {
  mkdirSync(dir, { recursive: true });
  const vocabPath = path.join(dir, "vocab.gguf");
  writeFileSync(vocabPath, tinyVocabFile(vocab));
  const pair = await synthesizePair({
    outDir: dir,
    vocab: vocabPath,
    preset: "tiny",
    dtype: "f32",
    seed,
    arch: MICRO_ARCH,
    threads: 1,
  });
  return { ...pair, vocab: vocabPath };
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Runs `node <args>` and collects its output; kills it after timeoutMs. */
export function runNode(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; uid?: number; gid?: number; cwd?: string } = {},
): Promise<ChildRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...opts.env },
      uid: opts.uid,
      gid: opts.gid,
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 120_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
  });
}

/** A copy of `buf` with the u64 at `off` set to `v`. */
export function withU64(buf: Buffer, off: number, v: bigint | number): Buffer {
  const b = Buffer.from(buf);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off);
  return b;
}

/** A copy of `buf` with the u32 at `off` set to `v`. */
export function withU32(buf: Buffer, off: number, v: number): Buffer {
  const b = Buffer.from(buf);
  b.writeUInt32LE(v >>> 0, off);
  return b;
}

/** The key/value entry `key` of a parsed layout (throws if absent). */
export function kvOf(layout: ReturnType<typeof parseLayout>, key: string) {
  const kv = layout.kvs.find((k: { key: string }) => k.key === key);
  if (!kv) throw new Error(`no key ${key} in the file`);
  return kv;
}

/** Greedy-equality helper: the first index where two token lists differ, or -1. */
export function firstDifference(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Loads the micro pair once for the calling test file (in beforeAll) into the returned object,
 * and frees the models and their scratch folder after it (afterAll).
 */
export function loadMicroPairForFile(name: string): { target: LlamaModel; draft: LlamaModel } {
  const scratch = mkdtempSync(path.join(tmpdir(), `minedraft-${name}-`));
  const models = {} as { target: LlamaModel; draft: LlamaModel };
  beforeAll(async () => {
    const pair = await microPair(path.join(scratch, "micro"));
    models.target = await LlamaModel.load(pair.target);
    models.draft = await LlamaModel.load(pair.draft);
  });
  afterAll(() => {
    for (const m of [models.target, models.draft]) {
      try {
        m?.dispose();
      } catch {}
    }
    rmSync(scratch, { recursive: true, force: true });
  });
  return models;
}
