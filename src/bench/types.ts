// The benchmark's inputs and its report (the JSON written by `minedraft bench --json`; see docs/bench-schema.md).
import type { AutoStats, LogLevel, Mode, Placement, RequestStats, RunStats, TraceEvent } from "../index.js";

/**
 * What a bench compares: the engine's modes, plus "psd-tetris" (psd with TETRIS, extra = tetrisExtra) and
 * "sd-ngram" / "auto-ngram" (prompt-lookup drafts, no draft model).
 */
export type BenchMode = Mode | "psd-tetris" | "sd-ngram" | "auto-ngram";

export const BENCH_MODES: readonly BenchMode[] = ["ar", "sd", "psd", "auto", "psd-tetris", "sd-ngram", "auto-ngram"];

export const BENCH_SCHEMA = "minedraft-bench/1";

export interface BenchModelSpec {
  /** local GGUF path */
  path: string;
  device?: string;
  gpuLayers?: number;
  threads?: number;
}

export interface BenchConfig {
  target: BenchModelSpec;
  /** required when modes include sd or psd */
  draft?: BenchModelSpec;
  modes: BenchMode[];
  prompts: string[];
  /** where the prompts came from: "builtin" or a file path */
  promptSource: string;
  batchSize: number;
  draftTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  draftTemperature?: number;
  maxTokens: number;
  /** measured runs per mode (after one warm-up run) */
  repeat: number;
  /** prompt i uses seed + i, in every mode and run */
  seed: number;
  contextSize: number;
  /** one KV buffer for all sequences (createEngine's kvUnified) */
  kvUnified?: boolean;
  /** createEngine's adaptThreads (default true) */
  adaptThreads?: boolean;
  logLevel?: LogLevel;
  /** decode steps shown in each mode's timeline */
  timelineSteps?: number;
  /** psd-tetris: extra drafts per request (default 2) */
  tetrisExtra?: number;
  /** open every mode's engine at once and run the measured runs round-robin over the modes */
  interleave?: boolean;
}

export interface BenchProgress {
  mode: BenchMode;
  /** 0 = warm-up, 1..repeat = measured runs */
  run: number;
  repeat: number;
  /** requests finished so far over the whole bench, and in all */
  done: number;
  total: number;
}

export interface MachineInfo {
  cpuModel: string;
  /** logical cores reported by the OS */
  cores: number;
  /** cores this process may use (os.availableParallelism) */
  availableParallelism: number;
  totalMemoryBytes: number;
  os: { platform: string; release: string; arch: string };
  node: string;
  /** llama.cpp's CPU feature line */
  llamaSystemInfo: string;
  devices: { name: string; type: string; backend: string; description: string }[];
}

export interface ModelReport {
  path: string;
  name: string;
  architecture: string;
  fileSize: number;
  quantization: string;
  nParams: number;
  nLayer: number;
  nEmbd: number;
  nVocab: number;
  nCtxTrain: number;
  device: string;
  gpuLayers: number | null;
}

export interface RunRecord {
  /** 1..repeat */
  run: number;
  stats: RunStats;
  /** per request, in prompt order */
  requests: RequestStats[];
  /** cores' worth of CPU time other work (other processes, this process's JS thread) used during the run */
  competingCores?: number;
}

/** Whether other work disturbed the bench (see loadReport in summarize.ts). */
export interface LoadReport {
  /** the most cores others used during a measured run */
  maxCompetingCores: number;
  /** what the figures may understate or mix up; empty on a quiet machine */
  warnings: string[];
}

/** Over the measured runs: tokens/s as their median (speedups: ratios of these), the rest means. */
export interface ModeSummary {
  tokensPerSecond: number;
  tokensPerSecondMean: number;
  tokensPerSecondMin: number;
  tokensPerSecondMax: number;
  tokensPerSecondStdev: number;
  meanE2eMs: number;
  amortizedE2eMs: number;
  meanTtftMs: number;
  wallMs: number;
  generatedTokens: number;
  acceptanceRate: number;
  meanAcceptanceLength: number;
  hiddenDraftFraction: number;
  draftMs: number;
  verifyMs: number;
  overlapMs: number;
  /** fraction of wall time neither worker was busy (orchestration, synchronisation): idleMs / wallMs */
  idleFraction: number;
  /** tokens/s over sd's and ar's in this bench; null when that mode was not run */
  speedupVsSd: number | null;
  speedupVsAr: number | null;
  /** auto: tokens/s over the best of ar, sd, psd and psd-tetris in this bench (null otherwise) */
  speedupVsBestFixed: number | null;
  /** auto: its decisions summed over the measured runs (shares of steps per choice) */
  auto?: AutoSummary;
  /** psd-tetris: drafted vs verified tokens over the measured runs */
  tetris?: {
    extra: number;
    draftedTokens: number;
    verifiedTokens: number;
    acceptanceRate: number;
    acceptedPerVerify: number;
  };
}

export interface AutoSummary {
  decisions: (AutoStats["decisions"][number] & { share: number })[];
  probeSteps: number;
  switches: number;
  /** the last measured run's cost model (its predictions included) */
  model: AutoStats["model"];
}

export interface Timeline {
  /** window shown, ms since the engine started */
  startMs: number;
  endMs: number;
  /** events overlapping the window, clipped to it (times still ms since the engine started) */
  events: TraceEvent[];
}

/** Mean cost of verification passes of one size. */
export interface VerifyPoint {
  tokens: number;
  calls: number;
  meanMs: number;
}

export interface VerifyCost {
  calls: number;
  meanMs: number;
  meanTokens: number;
  /** per pass size (tokens), most frequent first */
  bySize: VerifyPoint[];
}

export interface DraftCost {
  calls: number;
  meanMs: number;
  /** autoregressive steps per call (k) and requests per call */
  meanSteps: number;
  meanRequests: number;
  /** mean of ms / steps over the calls */
  msPerStep: number;
}

/**
 * What each kind of model work cost in the measured runs (from the trace): the inputs of the cost
 * model and of the simulator (`fitCosts`, src/bench/simulator-inputs.ts). "overlapped": the other
 * worker was busy during the call.
 */
export interface PhaseStats {
  verify: { alone: VerifyCost; overlapped: VerifyCost };
  draft: { alone: DraftCost; overlapped: DraftCost };
  /** totalMs sums both workers' prefill calls; wallMs is the time either worker was prefilling */
  prefill: { calls: number; meanMs: number; totalMs: number; wallMs: number };
  /** decode steps and wall ms over the measured runs */
  steps: number;
  wallMs: number;
}

export interface ModeResult {
  mode: BenchMode;
  placement: Placement;
  summary: ModeSummary;
  /** model work costs over the measured runs */
  phases: PhaseStats;
  warmup: RunStats;
  runs: RunRecord[];
  /** a few steps of the last measured run */
  timeline: Timeline;
}

export interface BenchReport {
  schema: typeof BENCH_SCHEMA;
  minedraftVersion: string;
  createdAt: string;
  durationMs: number;
  machine: MachineInfo;
  /** devices: where both models were loaded and why (the library's default placement unless given) */
  models: { target: ModelReport; draft: ModelReport | null; placementNote?: string };
  options: Omit<BenchConfig, "target" | "draft" | "prompts" | "logLevel"> & {
    warmupMaxTokens: number;
    promptCount: number;
  };
  prompts: string[];
  modes: ModeResult[];
  /** other work during the bench (absent in reports from before it was measured) */
  load?: LoadReport;
}
