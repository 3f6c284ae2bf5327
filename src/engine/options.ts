// Options of the engine and of each request: their schemas (checked by validate.ts at the API boundary),
// defaults and the checks that relate options to each other or to the backend.
import type { Backend, SamplingParams } from "./backend.js";
import type { EngineOptions, GenerateOptions, Mode } from "./types.js";
import { randomSeed } from "./rng.js";
import { NGRAM_DEFAULTS, NGRAM_MAX_N } from "./ngram.js";
import { checkOptions, integer, number, OptionRangeError, OptionTypeError, type Schema } from "../common/validate.js";

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
  /**
   * drafting by prompt lookup; combined: with a draft model, which drafts for the requests whose
   * lookup found nothing (undefined in ar, which drafts nothing)
   */
  ngram: { maxN: number; combined: boolean } | undefined;
  /** psd with TETRIS */
  tetris: { extra: number } | undefined;
  /** psd: post-verify with one running request */
  postVerify: boolean;
  /** psd, with postVerify: a one-request step without drafts overlaps a plain target step with drafting ahead */
  preVerify: boolean;
  /** psd: admission prefills overlapped with the step */
  overlapAdmission: boolean;
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
  /** prompt lookup drafts (the engine's) */
  ngram?: { maxN: number; combined: boolean };
}

/** llama.cpp's limits, as the native layer enforces them */
export const LIMITS = { temperature: 1e6, topPMin: 1e-9, topK: 2147483647, sequences: 256 } as const;

const sampling: Schema = {
  temperature: number(0, LIMITS.temperature),
  topK: integer(0, LIMITS.topK),
  topP: number(LIMITS.topPMin, 1),
  draftTemperature: number(0, LIMITS.temperature),
};

/** EngineOptions (new Engine(), and the engine part of createEngine()). */
export const ENGINE_OPTIONS: Schema = {
  mode: { kind: "enum", values: MODES },
  draftTokens: integer(1, MAX_DRAFT_TOKENS),
  ngram: { kind: "object", fields: { maxN: integer(1, NGRAM_MAX_N) } },
  tetris: { kind: "object", fields: { extra: integer(1, MAX_TETRIS_EXTRA) } },
  postVerify: { kind: "boolean" },
  preVerify: { kind: "boolean" },
  overlapAdmission: { kind: "boolean" },
  auto: { kind: "object", fields: { probeEvery: integer(2, 1_000_000), probeBudget: number(0, 1) } },
  batchSize: integer(1, LIMITS.sequences),
  ...sampling,
  adaptThreads: { kind: "boolean" },
};

/** GenerateOptions and ChatOptions (generate(), stream(), chat()). */
export const REQUEST_OPTIONS: Schema = {
  maxTokens: integer(1),
  ...sampling,
  seed: integer(0),
  stop: { kind: "strings" },
  signal: { kind: "signal" },
  onText: { kind: "function" },
  rawPrompt: { kind: "boolean" },
  chatTemplate: { kind: "string", nonEmpty: true },
};

/** Options that belong to one mode only: refused with another (checked once the mode is known). */
export function checkModeOptions(
  options: Pick<EngineOptions, "tetris" | "auto" | "postVerify" | "preVerify" | "overlapAdmission" | "ngram">,
  mode: Mode,
): void {
  if (options.postVerify !== undefined && mode !== "psd")
    throw new OptionRangeError("postVerify", `postVerify works with mode "psd" only, got mode ${JSON.stringify(mode)}`);
  if (options.preVerify !== undefined && mode !== "psd")
    throw new OptionRangeError("preVerify", `preVerify works with mode "psd" only, got mode ${JSON.stringify(mode)}`);
  if (options.preVerify === true && options.postVerify === false)
    throw new OptionRangeError("preVerify", "preVerify drafts ahead as postVerify does: it needs postVerify");
  if (options.overlapAdmission !== undefined && mode !== "psd")
    throw new OptionRangeError(
      "overlapAdmission",
      `overlapAdmission works with mode "psd" only, got mode ${JSON.stringify(mode)}`,
    );
  if (options.tetris !== undefined) {
    if (mode !== "psd")
      throw new OptionRangeError("tetris", `tetris works with mode "psd" only, got mode ${JSON.stringify(mode)}`);
    if (options.tetris.extra === undefined)
      throw new OptionTypeError(
        "tetris.extra",
        `tetris.extra must be an integer in 1..${MAX_TETRIS_EXTRA}, got undefined`,
      );
  }
  if (options.auto !== undefined && mode !== "auto")
    throw new OptionRangeError("auto", `the auto options work with mode "auto" only, got mode ${JSON.stringify(mode)}`);
}

export function resolveEngineOptions(options: EngineOptions, backend: Backend): ResolvedEngineOptions {
  checkOptions(options, ENGINE_OPTIONS, "Engine options");
  const mode = options.mode;
  if (mode === undefined)
    throw new OptionTypeError(
      "mode",
      `mode must be one of ${MODES.map((m) => JSON.stringify(m)).join(", ")}, got undefined`,
    );
  const speculative = mode !== "ar";
  const draftTokens = speculative ? (options.draftTokens ?? ENGINE_DEFAULTS.draftTokens) : 0;
  const batchSize = options.batchSize ?? ENGINE_DEFAULTS.batchSize;
  const temperature = options.temperature ?? ENGINE_DEFAULTS.temperature;
  const topK = options.topK ?? ENGINE_DEFAULTS.topK;
  const topP = options.topP ?? ENGINE_DEFAULTS.topP;
  const draftTemperature = options.draftTemperature;

  checkModeOptions(options, mode);
  const tetris = options.tetris !== undefined ? { extra: options.tetris.extra } : undefined;
  const auto =
    mode === "auto"
      ? { probeEvery: options.auto?.probeEvery ?? 24, probeBudget: options.auto?.probeBudget ?? 0.03 }
      : undefined;

  const ngram =
    options.ngram !== undefined && speculative
      ? { maxN: options.ngram.maxN ?? NGRAM_DEFAULTS.maxN, combined: backend.draft !== undefined }
      : undefined;
  if (speculative && !backend.draft && !ngram) {
    throw new Error(`mode "${mode}" needs a draft model, but backend.draft is undefined`);
  }
  // psd overlaps the draft model's work with verification: lookups alone leave nothing to overlap
  if (mode === "psd" && !backend.draft)
    throw new OptionRangeError("ngram", 'mode "psd" needs a draft model (with ngram alone, use "sd" or "auto")');
  const paired = mode === "psd" || mode === "auto";
  const capacity = paired ? 2 * batchSize : batchSize;
  const nSeqMax = backend.info.nSeqMax;
  if (capacity > nSeqMax) {
    const held = paired ? `2 x batchSize = ${capacity}` : `batchSize = ${capacity}`;
    throw new OptionRangeError(
      "batchSize",
      `mode "${mode}" holds ${held} sequences, but the context holds at most ${nSeqMax}`,
    );
  }
  const postVerify = mode === "psd" && options.postVerify !== false;
  const preVerify = postVerify && options.preVerify === true;
  const overlapAdmission = mode === "psd" && options.overlapAdmission !== false;
  return {
    mode,
    draftTokens,
    batchSize,
    capacity,
    temperature,
    topK,
    topP,
    draftTemperature,
    ngram,
    tetris,
    auto,
    postVerify,
    preVerify,
    overlapAdmission,
  };
}

export function resolveRequestOptions(engine: ResolvedEngineOptions, opts: GenerateOptions): ResolvedRequestOptions {
  checkOptions(opts, REQUEST_OPTIONS, "generate options");
  const temperature = opts.temperature ?? engine.temperature;
  const topK = opts.topK ?? engine.topK;
  const topP = opts.topP ?? engine.topP;
  const draftTemperature = opts.draftTemperature ?? engine.draftTemperature ?? temperature;
  return {
    maxTokens: opts.maxTokens ?? ENGINE_DEFAULTS.maxTokens,
    sampling: { temperature, topK, topP },
    draftSampling: { temperature: draftTemperature, topK, topP },
    seed: opts.seed ?? randomSeed(),
    stop: [...(opts.stop ?? [])],
    ...(engine.ngram ? { ngram: engine.ngram } : {}),
  };
}
