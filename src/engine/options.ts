// Option validation and defaults. Every message names the option and the offending value.
import type { Backend, SamplingParams } from "./backend.js";
import type { EngineOptions, GenerateOptions, Mode } from "./types.js";
import { randomSeed } from "./rng.js";

export const MAX_DRAFT_TOKENS = 32;

export const ENGINE_DEFAULTS = {
  draftTokens: 4,
  batchSize: 4,
  /** greedy by default: reproducible, and lossless token for token */
  temperature: 0,
  topK: 0,
  topP: 1,
  maxTokens: 128,
} as const;

const MODES: readonly Mode[] = ["ar", "sd", "psd", "auto"];

/** TETRIS: the most extra drafts per request. */
export const MAX_TETRIS_EXTRA = 32;

export interface ResolvedEngineOptions {
  mode: Mode;
  draftTokens: number;
  batchSize: number;
  /** running requests the scheduler holds: m for ar/sd, 2m for psd and auto */
  capacity: number;
  /** psd with TETRIS */
  tetris: { extra: number } | undefined;
  /** auto's exploration */
  auto: { probeEvery: number; probeBudget: number } | undefined;
  temperature: number;
  topK: number;
  topP: number;
  draftTemperature: number | undefined;
}

export interface ResolvedRequestOptions {
  maxTokens: number;
  sampling: SamplingParams;
  draftSampling: SamplingParams;
  seed: number;
  stop: string[];
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value == null) return String(value);
  return typeof value;
}

function requireNumber(name: string, value: unknown): number {
  if (typeof value !== "number") throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  return value;
}

function checkInteger(name: string, value: unknown, min: number, max = Infinity): number {
  const n = requireNumber(name, value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Infinity ? `>= ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${name} must be an integer ${range}, got ${describe(n)}`);
  }
  return n;
}

function checkTemperature(name: string, value: unknown): number {
  const t = requireNumber(name, value);
  if (!Number.isFinite(t) || t < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${describe(t)}`);
  return t;
}

function checkTopP(value: unknown): number {
  const p = requireNumber("topP", value);
  if (!(p > 0 && p <= 1)) throw new RangeError(`topP must be in (0, 1], got ${describe(p)}`);
  return p;
}

export function resolveEngineOptions(options: EngineOptions, backend: Backend): ResolvedEngineOptions {
  if (options === null || typeof options !== "object") throw new TypeError("Engine options must be an object");
  const mode = options.mode;
  if (!MODES.includes(mode)) {
    throw new RangeError(`unknown mode ${describe(mode)}: expected "ar", "sd", "psd" or "auto"`);
  }
  const speculative = mode !== "ar";
  const draftTokens = speculative
    ? checkInteger("draftTokens", options.draftTokens ?? ENGINE_DEFAULTS.draftTokens, 1, MAX_DRAFT_TOKENS)
    : 0;
  const batchSize = checkInteger("batchSize", options.batchSize ?? ENGINE_DEFAULTS.batchSize, 1);
  const temperature = checkTemperature("temperature", options.temperature ?? ENGINE_DEFAULTS.temperature);
  const topK = checkInteger("topK", options.topK ?? ENGINE_DEFAULTS.topK, 0);
  const topP = checkTopP(options.topP ?? ENGINE_DEFAULTS.topP);
  const draftTemperature =
    options.draftTemperature === undefined ? undefined : checkTemperature("draftTemperature", options.draftTemperature);

  let tetris: { extra: number } | undefined;
  if (options.tetris !== undefined) {
    if (options.tetris === null || typeof options.tetris !== "object") throw new TypeError(`tetris must be an object { extra }, got ${describe(options.tetris)}`);
    if (mode !== "psd") throw new RangeError(`tetris works with mode "psd" only, got mode ${describe(mode)}`);
    tetris = { extra: checkInteger("tetris.extra", options.tetris.extra, 1, MAX_TETRIS_EXTRA) };
    if (draftTokens + tetris.extra > MAX_DRAFT_TOKENS + MAX_TETRIS_EXTRA) throw new RangeError("draftTokens + tetris.extra is too large");
  }

  let auto: { probeEvery: number; probeBudget: number } | undefined;
  if (options.auto !== undefined) {
    if (options.auto === null || typeof options.auto !== "object") throw new TypeError(`auto must be an object { probeEvery, probeBudget }, got ${describe(options.auto)}`);
    if (mode !== "auto") throw new RangeError(`the auto options work with mode "auto" only, got mode ${describe(mode)}`);
    const probeBudget = requireNumber("auto.probeBudget", options.auto.probeBudget ?? 0.03);
    if (!(probeBudget >= 0 && probeBudget <= 1)) throw new RangeError(`auto.probeBudget must be in [0, 1], got ${describe(probeBudget)}`);
    auto = { probeEvery: checkInteger("auto.probeEvery", options.auto.probeEvery ?? 24, 2, 1_000_000), probeBudget };
  } else if (mode === "auto") auto = { probeEvery: 24, probeBudget: 0.03 };

  if (speculative && !backend.draft) {
    throw new Error(`mode "${mode}" needs a draft model, but backend.draft is undefined`);
  }
  const paired = mode === "psd" || mode === "auto";
  const capacity = paired ? 2 * batchSize : batchSize;
  const nSeqMax = backend.info.nSeqMax;
  if (capacity > nSeqMax) {
    const held = paired ? `2 x batchSize = ${capacity}` : `batchSize = ${capacity}`;
    throw new RangeError(`mode "${mode}" holds ${held} sequences, but the context holds at most nSeqMax = ${nSeqMax}`);
  }
  return { mode, draftTokens, batchSize, capacity, temperature, topK, topP, draftTemperature, tetris, auto };
}

export function resolveRequestOptions(engine: ResolvedEngineOptions, opts: GenerateOptions): ResolvedRequestOptions {
  if (opts === null || typeof opts !== "object") throw new TypeError("generate options must be an object");
  const maxTokens = checkInteger("maxTokens", opts.maxTokens ?? ENGINE_DEFAULTS.maxTokens, 1);
  const temperature = checkTemperature("temperature", opts.temperature ?? engine.temperature);
  const topK = checkInteger("topK", opts.topK ?? engine.topK, 0);
  const topP = checkTopP(opts.topP ?? engine.topP);
  const draftTemperature = checkTemperature(
    "draftTemperature",
    opts.draftTemperature ?? engine.draftTemperature ?? temperature,
  );
  let seed: number;
  if (opts.seed === undefined) seed = randomSeed();
  else {
    seed = requireNumber("seed", opts.seed);
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${describe(seed)}`);
  }
  const stop = opts.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== "string")) {
    throw new TypeError("stop must be an array of strings");
  }
  if (stop.some((s) => s.length === 0)) throw new RangeError("stop strings must not be empty");
  if (opts.onText !== undefined && typeof opts.onText !== "function") {
    throw new TypeError(`onText must be a function, got ${describe(opts.onText)}`);
  }
  return {
    maxTokens,
    sampling: { temperature, topK, topP },
    draftSampling: { temperature: draftTemperature, topK, topP },
    seed,
    stop: [...stop],
  };
}
