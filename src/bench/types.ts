// The benchmark's inputs and its report (the JSON written by `minedraft bench --json`; see docs/bench-schema.md).
import type { LogLevel, Mode, Placement, RequestStats, RunStats, TraceEvent } from "../index.js";

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
  modes: Mode[];
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
  logLevel?: LogLevel;
  /** decode steps shown in each mode's timeline */
  timelineSteps?: number;
}

export interface BenchProgress {
  mode: Mode;
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
}

/** Means over the measured runs (speedups: ratios of these mean tokens/s). */
export interface ModeSummary {
  tokensPerSecond: number;
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
  /** tokens/s over sd's and ar's in this bench; null when that mode was not run */
  speedupVsSd: number | null;
  speedupVsAr: number | null;
}

export interface Timeline {
  /** window shown, ms since the engine started */
  startMs: number;
  endMs: number;
  /** events overlapping the window, clipped to it (times still ms since the engine started) */
  events: TraceEvent[];
}

export interface ModeResult {
  mode: Mode;
  placement: Placement;
  summary: ModeSummary;
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
  models: { target: ModelReport; draft: ModelReport | null };
  options: Omit<BenchConfig, "target" | "draft" | "prompts" | "logLevel"> & { warmupMaxTokens: number; promptCount: number };
  prompts: string[];
  modes: ModeResult[];
}
