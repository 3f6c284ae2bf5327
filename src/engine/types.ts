// Public engine types: options, results and statistics. Shared by the engine, the library API and the CLI.
import type { SamplingParams } from "./backend.js";

export type Mode = "ar" | "sd" | "psd";

export interface EngineOptions {
  mode: Mode;
  /** draft length k (>= 1 for sd/psd); default 4 */
  draftTokens?: number;
  /** m: running requests per batch (ar/sd hold m, psd holds 2m in two sub-batches); default 4 */
  batchSize?: number;
  /** defaults for requests */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** draft sampling temperature (defaults to temperature); any value stays lossless */
  draftTemperature?: number;
}

export interface GenerateOptions {
  maxTokens?: number; // default 128
  temperature?: number;
  topK?: number;
  topP?: number;
  draftTemperature?: number;
  /** per-request seed: same seed, same output */
  seed?: number;
  stop?: string[];
  signal?: AbortSignal;
  /** called with each new text piece as tokens are accepted */
  onText?: (piece: string) => void;
  /** do not add BOS / special tokens when tokenizing (prompt already formatted) */
  rawPrompt?: boolean;
}

export type FinishReason = "maxTokens" | "eog" | "stop" | "contextFull" | "aborted";

export interface RequestStats {
  promptTokens: number;
  generatedTokens: number;
  /** verification (or AR decode) steps this request took part in */
  steps: number;
  draftedTokens: number;
  acceptedTokens: number;
  /** accepted / drafted (0 when nothing drafted) */
  acceptanceRate: number;
  /** 1 + accepted / verification steps (tokens emitted per target pass) */
  meanAcceptanceLength: number;
  /** acceptance rate at draft position i (i = 0..k-1) */
  perPositionAcceptance: number[];
  /** ms from submission to first generated token */
  ttftMs: number;
  /** ms from submission to completion */
  e2eMs: number;
  /** generatedTokens / (e2e seconds) */
  tokensPerSecond: number;
  finishReason: FinishReason;
}

export interface RunStats {
  mode: Mode;
  requests: number;
  generatedTokens: number;
  /** wall time during which at least one request was running, ms */
  wallMs: number;
  tokensPerSecond: number;
  draftedTokens: number;
  acceptedTokens: number;
  acceptanceRate: number;
  meanAcceptanceLength: number;
  perPositionAcceptance: number[];
  meanTtftMs: number;
  meanE2eMs: number;
  /** MineDraft's amortized E2EL: (last end - first start) / requests */
  amortizedE2eMs: number;
  /** decode steps run */
  steps: number;
  /** time the draft worker was busy, the target worker busy, both at once, neither (ms; prefills included) */
  draftMs: number;
  verifyMs: number;
  overlapMs: number;
  idleMs: number;
  /** admission prefill time, both workers (included in draftMs / verifyMs) */
  prefillMs: number;
  /** fraction of draft-job time (prefills excluded) during which the target worker was busy too */
  hiddenDraftFraction: number;
}

/** One busy interval of a worker, ms since engine start, for timelines. */
export interface TraceEvent {
  worker: "draft" | "target";
  kind: "prefill" | "draft" | "verify";
  start: number;
  end: number;
  step: number;
  /** request ids served */
  requests: number[];
  /** psd sub-batch (0/1), or -1 when sequential */
  batch: number;
  /** psd: sizes of sub-batches 0 and 1 when the step started */
  batchSizes?: [number, number];
}

export interface GenerateResult {
  id: number;
  text: string;
  tokens: number[];
  stats: RequestStats;
}

export type { SamplingParams };
