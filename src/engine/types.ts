// Public engine types: options, results and statistics. Shared by the engine, the library API and the CLI.
import type { SamplingParams } from "./backend.js";
import type { CoreLimitStats } from "./core-governor.js";
import type { NgramOptions } from "./ngram.js";

export type { NgramOptions };

export type Mode = "ar" | "sd" | "psd" | "auto";

/** How an engine step runs the two workers: one after the other, or at once (PSD). */
export type StepSchedule = "sequential" | "overlapped";

export interface AutoOptions {
  /** steps between two probes of an option other than the predicted best, at least (default 24) */
  probeEvery?: number;
  /** share of the time probes may cost, by the cost model's prediction (default 0.03; 1 = probe freely) */
  probeBudget?: number;
}

/** TETRIS (psd): draft k + extra tokens per request, verify only the k x m likeliest prefixes. */
export interface TetrisOptions {
  /** extra tokens e drafted per request beyond k (>= 1) */
  extra: number;
}

export interface EngineOptions {
  mode: Mode;
  /** draft length k (>= 1 for sd/psd); in auto the largest k it may choose; default 4 */
  draftTokens?: number;
  /**
   * sd only: draft by prompt lookup (n-gram) instead of with the backend's draft worker: the tokens that
   * followed the latest earlier occurrence of the request's last n tokens (prompt + generated) are
   * proposed; the backend needs no draft worker. Lossless, greedy and sampled (a proposal is a one-hot q).
   */
  ngram?: NgramOptions;
  /** psd only: TETRIS selection of the drafts to verify (off by default) */
  tetris?: TetrisOptions;
  /**
   * psd only: with one running request (a single request, the tail, after aborts) draft the next
   * round while the target verifies the current one, assuming every draft is accepted (PEARL's
   * post-verify); it is used when the target's bonus token equals the draft's first guess, else
   * dropped. Lossless. false: sequential SD there instead (draft, then verify). Default: createEngine turns it on
   * with the target on a GPU and off with both models on the CPU cores (where the two one-thread workers slow
   * each other more than the overlap hides); an Engine over another Backend defaults to true.
   */
  postVerify?: boolean;
  /**
   * psd only, with postVerify: a one-request step that holds no drafts runs a plain target step (one token) while
   * the draft guesses that token and drafts the round after it (PEARL's pre-verify, taken to a whole target step);
   * when the guess is the target's token the next step verifies those drafts at once, else they are dropped.
   * Lossless (a sampled request's tokens follow the target's distribution, but for a given seed they differ from
   * sd's and from a batched run's: its randomness is drawn in another order). It pays where a one-token target
   * pass costs much less than a full verification (a CPU) and loses where a pass costs the same whatever its
   * tokens (a GPU): see docs/performance.md. Default false (the request is drafted first, then verified).
   */
  preVerify?: boolean;
  /**
   * psd only: requests admitted while others hold drafts are prefilled inside the next step, the
   * draft-side prefill beside the target's verification and the target-side prefill beside the
   * drafting, instead of both workers stopping every running request for them. Lossless. Default true.
   */
  overlapAdmission?: boolean;
  /** auto only: tuning of the exploration */
  auto?: AutoOptions;
  /** m: running requests per batch (ar/sd hold m, psd holds 2m in two sub-batches); default 4 */
  batchSize?: number;
  /** defaults for requests */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** draft sampling temperature (defaults to temperature); any value stays lossless */
  draftTemperature?: number;
  /**
   * re-place the workers' threads on the cores other work leaves free, one thread per context when
   * others hold a core (ggml's spinning barriers stall multi-thread graphs on shared cores); default true
   */
  adaptThreads?: boolean;
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
  /** verification steps that verified at least one drafted token (vLLM's num_drafts) */
  drafts: number;
  draftedTokens: number;
  acceptedTokens: number;
  /** accepted / drafted (0 when nothing drafted) */
  acceptanceRate: number;
  /** 1 + accepted / verification steps (tokens emitted per target pass) */
  meanAcceptanceLength: number;
  /** acceptance rate at draft position i (i = 0..k-1) */
  perPositionAcceptance: number[];
  /** tokens accepted at draft position i (i = 0..k-1) */
  acceptedPerPosition: number[];
  /** per draft source: what prompt lookup (n-gram) proposed and what of it was accepted (with EngineOptions.ngram) */
  draftSources?: DraftSourceStats;
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
  /** per draft source (with EngineOptions.ngram): see RequestStats.draftSources */
  draftSources?: DraftSourceStats;
  /** auto mode: what it chose and why */
  auto?: AutoStats;
  /** psd with TETRIS: drafted versus verified tokens */
  tetris?: TetrisStats;
  /** psd's post-verify steps (one running request): rounds drafted ahead, and those used */
  postVerify?: PostVerifyStats;
  /**
   * pre-verify (psd, with preVerify): one-request steps without drafts that ran a plain target step while the
   * draft guessed its token and drafted the round after it; hits: the guess was the target's token
   */
  preVerify?: PostVerifyStats;
  /**
   * with a backend that measures the CPU load: the cores the workers are placed on now (fewer while
   * other work holds cores, see EngineOptions.adaptThreads), of the machine's, and how often that changed
   */
  coreLimit?: CoreLimitStats;
}

/** One auto-mode choice: schedule, draft length and the thread placement it runs at. */
export interface AutoChoice {
  schedule: StepSchedule;
  /** draft length; 0 = plain decoding (sequential only) */
  k: number;
  threads: { target: number; draft: number };
}

/** A cost-model prediction for one choice. */
export interface AutoPrediction extends AutoChoice {
  /** predicted generated tokens per second */
  tokensPerSecond: number;
  /** predicted step time (ms) and tokens per request per verification */
  stepMs: number;
  tokensPerVerify: number;
}

export interface AutoStats {
  /** decode steps per choice since the last resetStats() (probes included) */
  decisions: (AutoChoice & { steps: number })[];
  /** the choice now (null before the first step) */
  current: AutoChoice | null;
  /** steps run to measure an option rather than because it was predicted best */
  probeSteps: number;
  /** schedule changes */
  switches: number;
  /** the cost model now: see docs/performance.md */
  model: AutoModelSnapshot;
}

export interface AutoModelSnapshot {
  /** verification pass: ms ~ a + b x tokens in the pass, per schedule's placement (null: not measured yet) */
  verify: Record<StepSchedule, { a: number; b: number; samples: number } | null>;
  /** one draft call of k autoregressive steps for `batchSize` requests: ms ~ a + b x k */
  draft: Record<StepSchedule, { a: number; b: number; samples: number } | null>;
  /** m, the batch size draft costs are given for (scaled by (4 + r) / (4 + m) for r requests) */
  batchSize: number;
  /** ms per step beyond the model work on the critical path (orchestration, synchronisation) */
  overheadMs: Record<StepSchedule, number>;
  /** conditional acceptance per draft position: P(accept i | accepted 0..i-1), moving average */
  acceptance: number[];
  /** predictions for every option at the current batch size, best first */
  predictions: AutoPrediction[];
  /**
   * auto, while the overlapped schedule is unmeasured: the most it could reach (the best k, from
   * sequential timings); it is measured only once this comes near the sequential best
   */
  overlapBound?: { k: number; tokensPerSecond: number } | null;
}

/** Drafts by where they came from: prompt lookup, and (lookup and draft model combined) the draft model. */
export interface DraftSourceStats {
  ngram?: NgramSourceStats;
  /** the draft model's drafts, where the lookup found nothing (with a draft model and EngineOptions.ngram) */
  model?: { draftedTokens: number; acceptedTokens: number; acceptanceRate: number };
}

export interface NgramSourceStats {
  /** draft rounds that looked the request's last tokens up */
  lookups: number;
  /** lookups that found an earlier occurrence (and proposed tokens) */
  hits: number;
  draftedTokens: number;
  acceptedTokens: number;
  /** accepted / drafted (0 when nothing drafted) */
  acceptanceRate: number;
}

export interface PostVerifyStats {
  /** verifications the next round was drafted alongside */
  rounds: number;
  /** of those, rounds whose drafts were all accepted and whose bonus token was the draft's first guess */
  hits: number;
  /** hits / rounds */
  hitRate: number;
}

export interface TetrisStats {
  extra: number;
  /** draft tokens produced (k + extra per request and step) */
  draftedTokens: number;
  /** of those, sent to verification (the global top k x m) */
  verifiedTokens: number;
  /** accepted / verified */
  acceptanceRate: number;
  /** accepted tokens per verified request-step (mean acceptance length - 1) */
  acceptedPerVerify: number;
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
  /** draft / verify: drafts per request in this call (the largest) */
  k?: number;
  /** verify: tokens in the pass (sum over requests of drafts + 1) */
  tokens?: number;
  /** auto: the step's choice, and whether it was a probe */
  decision?: AutoChoice & { probe: boolean };
}

export type { CoreLimitStats };

export interface GenerateResult {
  id: number;
  text: string;
  tokens: number[];
  stats: RequestStats;
}

export type { SamplingParams };
