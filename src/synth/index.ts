// Synthetic target/draft GGUF pairs for tests and benchmarks (no model download needed).
//
//   const { target, draft } = await synthesizePair({ outDir: "/tmp/m", preset: "tiny" });
//   const pair = await ensureSyntheticPair(undefined, { preset: "tinyllama" }); // cached under cacheDir()
//
// The files are made by the native generator (cpp/synth/: its own module, loaded by ./addon.ts) on a worker
// thread: random seeded weights, a tokenizer copied from one of llama.cpp's vocab GGUFs, and a draft that is
// bit-identical to the target's first layer(s).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir } from "../common/cache-dir.js";
import { addonPath } from "../native/binaries.mjs";
import { loadSynthAddon } from "./addon.js";
import {
  SYNTH_PRESET_NAMES,
  isSynthPresetName,
  synthPreset,
  type SynthArch,
  type SynthDtype,
  type SynthPresetName,
} from "./presets.js";

export * from "./presets.js";

/** Bump when the generator's output changes: it is part of the cache key. Matches minedraft.synth.version. */
export const SYNTH_VERSION = 1;

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export type SynthProgress = (fraction: number, stage: string) => void;

export interface SynthesizeOptions {
  /** folder for target.gguf and draft.gguf (created if missing; existing files are replaced atomically) */
  outDir: string;
  /** default "tiny" */
  preset?: SynthPresetName;
  /**
   * a llama.cpp vocab name ("llama-spm", "llama-bpe", "qwen2", "gpt-2", ...:
   * deps/llama.cpp/models/ggml-vocab-<name>.gguf) or a path to a GGUF holding tokenizer.* keys; default "llama-spm"
   */
  vocab?: string;
  /** default: the preset's */
  eps?: number;
  /**
   * scale of attn_output in every layer of the target and the draft (default 1: today's weights, byte for byte;
   * 0: attention contributes nothing, so each position's logits are a function of its own token). In [0, 100].
   * Part of the cache key (-attn<scale>) and of the files' metadata (minedraft.synth.attn_scale) when not 1.
   */
  attnScale?: number;
  /** default: the preset's */
  dtype?: SynthDtype;
  /** default 0 */
  seed?: number;
  /** override architecture fields of the preset */
  arch?: Partial<Omit<SynthArch, "eps" | "dtype" | "attnScale">>;
  /** generator threads (0 = all cores); the output does not depend on it */
  threads?: number;
  /** called with strictly increasing fractions in [0, 1], the last one 1 */
  onProgress?: SynthProgress;
}

export interface SyntheticPair {
  target: string;
  draft: string;
}

export interface EnsuredSyntheticPair extends SyntheticPair {
  /** the cache folder holding the pair */
  dir: string;
  /** true when this call made the files, false when they were already cached */
  created: boolean;
}

export const DEFAULT_VOCAB = "llama-spm";

/**
 * Folders searched for ggml-vocab-<name>.gguf: $MINEDRAFT_VOCAB_DIR, then <package>/deps/llama.cpp/models (every
 * llama.cpp vocab, extracted by a build from source), then <package>/vocab (the default one, shipped in the
 * package by scripts/prebuild.mjs).
 */
export function vocabDirs(): string[] {
  const dirs = [path.join(packageRoot, "deps", "llama.cpp", "models"), path.join(packageRoot, "vocab")];
  if (process.env.MINEDRAFT_VOCAB_DIR) dirs.unshift(path.resolve(process.env.MINEDRAFT_VOCAB_DIR));
  return dirs;
}

function isVocabPath(vocab: string): boolean {
  return vocab.includes("/") || vocab.includes("\\") || vocab.toLowerCase().endsWith(".gguf");
}

/** The absolute path of a vocab GGUF from a name ("llama-spm") or a path. Throws if it does not exist. */
export function resolveVocab(vocab: string = DEFAULT_VOCAB): string {
  if (typeof vocab !== "string" || vocab.length === 0)
    throw new TypeError(`vocab must be a non-empty string, got ${describe(vocab)}`);
  if (isVocabPath(vocab)) {
    const p = path.resolve(vocab);
    if (!existsSync(p)) throw new Error(`vocab file not found: ${p}`);
    return p;
  }
  if (!/^[A-Za-z0-9._-]+$/.test(vocab))
    throw new RangeError(
      `vocab name ${JSON.stringify(vocab)} has characters other than letters, digits, '.', '_' and '-'`,
    );
  const tried: string[] = [];
  for (const dir of vocabDirs()) {
    const p = path.join(dir, `ggml-vocab-${vocab}.gguf`);
    if (existsSync(p)) return p;
    tried.push(p);
  }
  throw new Error(
    `vocab ${JSON.stringify(vocab)} not found (tried ${tried.join(", ")}). The llama.cpp source with its vocab ` +
      "files is " +
      "extracted to deps/llama.cpp by a build from source (npm run build:addon in a checkout; an installed package " +
      `ships only ${DEFAULT_VOCAB}); or set MINEDRAFT_VOCAB_DIR, or pass a path`,
  );
}

/** The cache root: $MINEDRAFT_CACHE, else $XDG_CACHE_HOME/minedraft, else ~/.cache/minedraft (see cacheDir()). */
export function defaultCacheDir(): string {
  return cacheDir();
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return typeof v;
}

interface ResolvedOptions {
  preset: SynthPresetName;
  vocabName: string;
  vocabPath: string;
  arch: SynthArch;
  seed: number;
  archOverridden: boolean;
}

const ARCH_INT_KEYS = ["nEmbd", "nLayer", "nDraftLayer", "nHead", "nHeadKv", "nFf", "nCtxTrain"] as const;

function resolveOptions(opts: Omit<SynthesizeOptions, "outDir">): ResolvedOptions {
  if (opts === null || typeof opts !== "object")
    throw new TypeError(`options must be an object, got ${describe(opts)}`);
  const preset = opts.preset ?? "tiny";
  if (!isSynthPresetName(preset)) {
    throw new RangeError(
      `unknown synthetic model preset ${describe(preset)} (expected one of ${SYNTH_PRESET_NAMES.join(", ")})`,
    );
  }
  const base = synthPreset(preset);
  const arch: SynthArch = {
    nEmbd: base.nEmbd,
    nLayer: base.nLayer,
    nDraftLayer: base.nDraftLayer,
    nHead: base.nHead,
    nHeadKv: base.nHeadKv,
    nFf: base.nFf,
    nCtxTrain: base.nCtxTrain,
    dtype: base.dtype,
    eps: base.eps,
  };
  let archOverridden = false;
  if (opts.arch !== undefined) {
    if (opts.arch === null || typeof opts.arch !== "object")
      throw new TypeError(`arch must be an object, got ${describe(opts.arch)}`);
    for (const [k, v] of Object.entries(opts.arch)) {
      if (v === undefined) continue;
      if (!(ARCH_INT_KEYS as readonly string[]).includes(k))
        throw new RangeError(`arch.${k} is not an architecture field (${ARCH_INT_KEYS.join(", ")})`);
      if (typeof v !== "number") throw new TypeError(`arch.${k} must be a number, got ${describe(v)}`);
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`arch.${k} must be a positive integer, got ${v}`);
      (arch as unknown as Record<string, number>)[k] = v;
      archOverridden = true;
    }
  }
  if (opts.dtype !== undefined) {
    if (opts.dtype !== "f32" && opts.dtype !== "f16" && opts.dtype !== "q8_0") {
      throw new RangeError(`dtype must be "f32", "f16" or "q8_0", got ${describe(opts.dtype)}`);
    }
    arch.dtype = opts.dtype;
  }
  if (opts.eps !== undefined) {
    if (typeof opts.eps !== "number") throw new TypeError(`eps must be a number, got ${describe(opts.eps)}`);
    if (!Number.isFinite(opts.eps) || opts.eps < 0 || opts.eps > 100)
      throw new RangeError(`eps must be a finite number in [0, 100], got ${opts.eps}`);
    arch.eps = opts.eps;
  }
  if (opts.attnScale !== undefined) {
    if (typeof opts.attnScale !== "number")
      throw new TypeError(`attnScale must be a number, got ${describe(opts.attnScale)}`);
    if (!Number.isFinite(opts.attnScale) || opts.attnScale < 0 || opts.attnScale > 100)
      throw new RangeError(`attnScale must be a finite number in [0, 100], got ${opts.attnScale}`);
    if (opts.attnScale !== 1) arch.attnScale = opts.attnScale; // 1 is the default: same key, marker and files
  }
  const seed = opts.seed ?? 0;
  if (typeof seed !== "number") throw new TypeError(`seed must be a number, got ${describe(seed)}`);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`seed must be an integer in [0, 2^53-1], got ${seed}`);
  if (
    opts.threads !== undefined &&
    (typeof opts.threads !== "number" || !Number.isInteger(opts.threads) || opts.threads < 0 || opts.threads > 1024)
  ) {
    throw new RangeError(`threads must be an integer in [0, 1024], got ${describe(opts.threads)}`);
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== "function") {
    throw new TypeError(`onProgress must be a function, got ${describe(opts.onProgress)}`);
  }
  const vocabName = opts.vocab ?? DEFAULT_VOCAB;
  let vocabPath: string;
  try {
    vocabPath = resolveVocab(vocabName);
  } catch (e) {
    // a package without its native modules lacks more than a vocab file: say what to run for those first
    addonPath("minedraft_synth", packageRoot);
    throw e;
  }
  return { preset, vocabName, vocabPath, arch, seed, archOverridden };
}

async function runSynthesize(
  outDir: string,
  r: ResolvedOptions,
  threads: number | undefined,
  onProgress?: SynthProgress,
): Promise<SyntheticPair> {
  const addon = await loadSynthAddon();
  const dir = path.resolve(outDir);
  await addon.synthesize(
    {
      outDir: dir,
      vocabPath: r.vocabPath,
      nEmbd: r.arch.nEmbd,
      nLayer: r.arch.nLayer,
      nDraftLayer: r.arch.nDraftLayer,
      nHead: r.arch.nHead,
      nHeadKv: r.arch.nHeadKv,
      nFf: r.arch.nFf,
      nCtxTrain: r.arch.nCtxTrain,
      dtype: r.arch.dtype,
      eps: r.arch.eps,
      attnScale: r.arch.attnScale ?? 1,
      seed: r.seed,
      nThreads: threads ?? 0,
    },
    onProgress,
  );
  return { target: path.join(dir, "target.gguf"), draft: path.join(dir, "draft.gguf") };
}

/** Makes <outDir>/target.gguf and <outDir>/draft.gguf. Same options (and seed) give byte-identical files. */
export async function synthesizePair(opts: SynthesizeOptions): Promise<SyntheticPair> {
  if (opts === null || typeof opts !== "object")
    throw new TypeError(`options must be an object, got ${describe(opts)}`);
  if (typeof opts.outDir !== "string" || opts.outDir.length === 0)
    throw new TypeError(`outDir must be a non-empty string, got ${describe(opts.outDir)}`);
  const r = resolveOptions(opts);
  return runSynthesize(opts.outDir, r, opts.threads, opts.onProgress);
}

/**
 * The cache folder name for these options:
 * <preset>-<vocab>-<dtype>-eps<eps>[-attn<attnScale>]-s<seed>[-a<arch hash>]-v<version> (-attn only when not 1).
 */
export function syntheticPairKey(opts: Omit<SynthesizeOptions, "outDir"> = {}): string {
  const r = resolveOptions(opts);
  return keyOf(r);
}

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 8);
}

function keyOf(r: ResolvedOptions): string {
  const vocab = isVocabPath(r.vocabName)
    ? `${path
        .basename(r.vocabPath)
        .replace(/\.gguf$/i, "")
        .replace(/^ggml-vocab-/, "")
        .replace(/[^A-Za-z0-9._-]/g, "_")}.${shortHash(r.vocabPath)}`
    : r.vocabName;
  const arch = r.archOverridden ? `-a${shortHash(JSON.stringify(ARCH_INT_KEYS.map((k) => r.arch[k])))}` : "";
  const attn = (r.arch.attnScale ?? 1) !== 1 ? `-attn${r.arch.attnScale}` : "";
  return `${r.preset}-${vocab}-${r.arch.dtype}-eps${r.arch.eps}${attn}-s${r.seed}${arch}-v${SYNTH_VERSION}`;
}

const MARKER = "complete.json";
const inFlight = new Map<string, Promise<EnsuredSyntheticPair>>();

interface Marker {
  version: number;
  key: string;
  targetBytes: number;
  draftBytes: number;
}

async function cached(dir: string, key: string): Promise<boolean> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, MARKER), "utf8")) as Marker;
    if (m.version !== SYNTH_VERSION || m.key !== key) return false;
    const [t, d] = await Promise.all([stat(path.join(dir, "target.gguf")), stat(path.join(dir, "draft.gguf"))]);
    return t.size === m.targetBytes && d.size === m.draftBytes;
  } catch {
    return false;
  }
}

/**
 * The pair for these options under cacheDir (default: defaultCacheDir()), made only when missing or incomplete.
 * The folder is <cacheDir>/<syntheticPairKey(opts)>/ with target.gguf, draft.gguf and complete.json (written last).
 * Concurrent calls for the same pair in one process share one synthesis; concurrent processes may both make it,
 * which is harmless (identical bytes, atomic renames).
 */
export async function ensureSyntheticPair(
  cacheDir?: string,
  opts: Omit<SynthesizeOptions, "outDir"> = {},
): Promise<EnsuredSyntheticPair> {
  if (cacheDir !== undefined && (typeof cacheDir !== "string" || cacheDir.length === 0)) {
    throw new TypeError(`cacheDir must be a non-empty string or undefined, got ${describe(cacheDir)}`);
  }
  const r = resolveOptions(opts);
  const key = keyOf(r);
  const dir = path.join(path.resolve(cacheDir ?? defaultCacheDir()), key);
  const pending = inFlight.get(dir);
  if (pending) return pending;
  const work = (async (): Promise<EnsuredSyntheticPair> => {
    const target = path.join(dir, "target.gguf");
    const draft = path.join(dir, "draft.gguf");
    if (await cached(dir, key)) {
      opts.onProgress?.(1, "cached");
      return { target, draft, dir, created: false };
    }
    await mkdir(dir, { recursive: true });
    await rm(path.join(dir, MARKER), { force: true });
    await runSynthesize(dir, r, opts.threads, opts.onProgress);
    const [t, d] = await Promise.all([stat(target), stat(draft)]);
    const marker: Marker = { version: SYNTH_VERSION, key, targetBytes: t.size, draftBytes: d.size };
    const tmp = path.join(dir, `.${MARKER}.${process.pid}.tmp`);
    await writeFile(
      tmp,
      `${JSON.stringify({ ...marker, preset: r.preset, vocab: r.vocabPath, arch: r.arch, seed: r.seed }, null, 2)}\n`,
    );
    await rename(tmp, path.join(dir, MARKER));
    return { target, draft, dir, created: true };
  })();
  inFlight.set(dir, work);
  try {
    return await work;
  } finally {
    inFlight.delete(dir);
  }
}
