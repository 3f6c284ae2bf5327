// Statistics: per-request acceptance counters, run totals, and worker busy time from the trace.
import type { CoreLimitStats } from "./core-governor.js";
import type { NgramCounts } from "./ngram.js";
import type {
  AutoChoice,
  DraftSourceStats,
  AutoModelSnapshot,
  AutoStats,
  FinishReason,
  Mode,
  RequestStats,
  RunStats,
  TetrisStats,
  PostVerifyStats,
  TraceEvent,
} from "./types.js";

/** Verification counters of one request. */
export class AcceptanceCounters {
  steps = 0;
  drafted = 0;
  accepted = 0;
  /** per draft position i: how often a token was drafted there / accepted there */
  readonly draftedAt: number[] = [];
  readonly acceptedAt: number[] = [];

  record(k: number, accepted: number): void {
    this.steps++;
    this.drafted += k;
    this.accepted += accepted;
    for (let i = 0; i < k; i++) {
      this.draftedAt[i] = (this.draftedAt[i] ?? 0) + 1;
      if (i < accepted) this.acceptedAt[i] = (this.acceptedAt[i] ?? 0) + 1;
    }
    for (let i = this.acceptedAt.length; i < this.draftedAt.length; i++) this.acceptedAt[i] = 0;
  }

  add(other: AcceptanceCounters): void {
    this.steps += other.steps;
    this.drafted += other.drafted;
    this.accepted += other.accepted;
    other.draftedAt.forEach((n, i) => (this.draftedAt[i] = (this.draftedAt[i] ?? 0) + n));
    other.acceptedAt.forEach((n, i) => (this.acceptedAt[i] = (this.acceptedAt[i] ?? 0) + n));
  }

  get acceptanceRate(): number {
    return this.drafted > 0 ? this.accepted / this.drafted : 0;
  }

  get meanAcceptanceLength(): number {
    return this.steps > 0 ? 1 + this.accepted / this.steps : 0;
  }

  get perPositionAcceptance(): number[] {
    return this.draftedAt.map((n, i) => (n > 0 ? (this.acceptedAt[i] ?? 0) / n : 0));
  }
}

export interface RequestTiming {
  submittedAt: number;
  firstTokenAt: number | undefined;
  finishedAt: number;
}

export function buildRequestStats(
  promptTokens: number,
  generatedTokens: number,
  counters: AcceptanceCounters,
  timing: RequestTiming,
  finishReason: FinishReason,
  ngram?: NgramCounts,
  /** drafts that did not come from the lookup came from the draft model (lookup + model combined) */
  combined = false,
): RequestStats {
  const e2eMs = timing.finishedAt - timing.submittedAt;
  return {
    promptTokens,
    generatedTokens,
    steps: counters.steps,
    drafts: counters.draftedAt[0] ?? 0,
    draftedTokens: counters.drafted,
    acceptedTokens: counters.accepted,
    acceptanceRate: counters.acceptanceRate,
    meanAcceptanceLength: counters.meanAcceptanceLength,
    perPositionAcceptance: counters.perPositionAcceptance,
    acceptedPerPosition: [...counters.acceptedAt],
    ttftMs: (timing.firstTokenAt ?? timing.finishedAt) - timing.submittedAt,
    e2eMs,
    tokensPerSecond: e2eMs > 0 ? generatedTokens / (e2eMs / 1000) : 0,
    finishReason,
    ...(ngram ? { draftSources: sourceStats(ngram, combined ? counters : undefined) } : {}),
  };
}

/** Per source; `all` (every draft, when a draft model drafted what the lookup did not) gives the model's share. */
function sourceStats(ngram: NgramCounts, all?: { drafted: number; accepted: number }): DraftSourceStats {
  const { lookups, hits, draftedTokens, acceptedTokens } = ngram;
  const rate = (accepted: number, drafted: number) => (drafted > 0 ? accepted / drafted : 0);
  const sources: DraftSourceStats = {
    ngram: { lookups, hits, draftedTokens, acceptedTokens, acceptanceRate: rate(acceptedTokens, draftedTokens) },
  };
  if (all) {
    const drafted = all.drafted - draftedTokens;
    const accepted = all.accepted - acceptedTokens;
    sources.model = { draftedTokens: drafted, acceptedTokens: accepted, acceptanceRate: rate(accepted, drafted) };
  }
  return sources;
}

const TRACE_LIMIT = 2000;

/**
 * Run totals. Time is measured from the workers' busy intervals: the engine issues at most one
 * group of jobs per worker at a time, so a new interval can only overlap the other worker's latest.
 */
export class StatsCollector {
  /** trace times are ms since the engine started */
  private readonly origin = performance.now();
  private counters = new AcceptanceCounters();
  private requests = 0;
  private generatedTokens = 0;
  private ttftSum = 0;
  private e2eSum = 0;
  private firstStart = Infinity;
  private lastEnd = -Infinity;
  private steps = 0;
  private busy = { draft: 0, target: 0 };
  private overlap = 0;
  /** time in draft jobs (admission prefills excluded), and the part of it the target was busy too */
  private drafting = 0;
  private hiddenDrafting = 0;
  private prefill = 0;
  private latest: { draft?: TraceEvent; target?: TraceEvent } = {};
  private wall = 0;
  private activeSince: number | undefined;
  private events: TraceEvent[] = [];
  private autoCounts = new Map<string, AutoChoice & { steps: number }>();
  private autoCurrent: AutoChoice | null = null;
  private autoProbes = 0;
  private autoSwitches = 0;
  /** the auto scheduler's cost model, read at snapshot time */
  autoModel: (() => AutoModelSnapshot) | undefined;
  /** the core governor's state, read at snapshot time */
  coreLimit: (() => CoreLimitStats) | undefined;
  private tetris: TetrisStats | undefined;
  private tetrisAccepted = 0;
  private tetrisVerifies = 0;
  private postVerify: PostVerifyStats | undefined;
  private preVerify: PostVerifyStats | undefined;
  /** prompt lookup totals (set when the engine drafts by n-gram lookup) */
  private ngram: NgramCounts | undefined;

  constructor(
    private readonly mode: Mode,
    ngram = false,
    /** lookup and draft model combined: stats give the model's share too */
    private readonly combined = false,
  ) {
    if (ngram) this.ngram = emptyNgram();
  }

  now(): number {
    return performance.now() - this.origin;
  }

  reset(): void {
    this.counters = new AcceptanceCounters();
    this.requests = this.generatedTokens = this.ttftSum = this.e2eSum = this.steps = 0;
    this.firstStart = Infinity;
    this.lastEnd = -Infinity;
    this.busy = { draft: 0, target: 0 };
    this.overlap = 0;
    this.drafting = this.hiddenDrafting = this.prefill = 0;
    this.latest = {};
    this.wall = 0;
    if (this.activeSince !== undefined) this.activeSince = this.now();
    this.events = [];
    this.autoCounts = new Map();
    this.autoProbes = this.autoSwitches = 0;
    if (this.tetris) this.tetris = emptyTetris(this.tetris.extra);
    this.tetrisAccepted = this.tetrisVerifies = 0;
    if (this.postVerify) this.postVerify = { rounds: 0, hits: 0, hitRate: 0 };
    if (this.preVerify) this.preVerify = { rounds: 0, hits: 0, hitRate: 0 };
    if (this.ngram) this.ngram = emptyNgram();
  }

  /**
   * psd post-verify: `rounds` verifications were drafted ahead, `hits` of them were used; `pre`: pre-verify
   * rounds (a plain target step with the next round drafted alongside).
   */
  recordPostVerify(rounds: number, hits: number, pre = false): void {
    const p = pre
      ? (this.preVerify ??= { rounds: 0, hits: 0, hitRate: 0 })
      : (this.postVerify ??= { rounds: 0, hits: 0, hitRate: 0 });
    p.rounds += rounds;
    p.hits += hits;
  }

  /** auto: one decode step ran with `choice`. */
  recordDecision(choice: AutoChoice, probe: boolean): void {
    const key = `${choice.schedule}/${choice.k}/${choice.threads.target}/${choice.threads.draft}`;
    const entry = this.autoCounts.get(key);
    if (entry) entry.steps++;
    else this.autoCounts.set(key, { schedule: choice.schedule, k: choice.k, threads: { ...choice.threads }, steps: 1 });
    if (probe) this.autoProbes++;
    if (this.autoCurrent && this.autoCurrent.schedule !== choice.schedule) this.autoSwitches++;
    this.autoCurrent = { schedule: choice.schedule, k: choice.k, threads: { ...choice.threads } };
  }

  /** TETRIS: one verification of a batch whose drafts were selected. */
  recordTetris(extra: number, drafted: number, verified: number, accepted: number, requests: number): void {
    const t = (this.tetris ??= emptyTetris(extra));
    t.draftedTokens += drafted;
    t.verifiedTokens += verified;
    this.tetrisAccepted += accepted;
    this.tetrisVerifies += requests;
  }

  /** Counts a decode step and returns its number. */
  nextStep(): number {
    return ++this.steps;
  }

  /** The number the next decode step will get (admission prefills are labelled with it). */
  upcomingStep(): number {
    return this.steps + 1;
  }

  /** Wall time counts while at least one request is running. */
  setRunning(count: number): void {
    if (count > 0 && this.activeSince === undefined) this.activeSince = this.now();
    else if (count === 0 && this.activeSince !== undefined) {
      this.wall += this.now() - this.activeSince;
      this.activeSince = undefined;
    }
  }

  recordBusy(event: TraceEvent): void {
    const other = this.latest[event.worker === "draft" ? "target" : "draft"];
    const both = other ? Math.max(0, Math.min(event.end, other.end) - Math.max(event.start, other.start)) : 0;
    this.overlap += both;
    const draftEvent = event.worker === "draft" ? event : other;
    if (draftEvent?.kind === "draft") this.hiddenDrafting += both;
    const duration = event.end - event.start;
    if (event.kind === "draft") this.drafting += duration;
    if (event.kind === "prefill") this.prefill += duration;
    this.latest[event.worker] = event;
    this.busy[event.worker] += duration;
    this.events.push(event);
    if (this.events.length > 2 * TRACE_LIMIT) this.events.splice(0, this.events.length - TRACE_LIMIT);
  }

  recordRequest(stats: RequestStats, counters: AcceptanceCounters, timing: RequestTiming): void {
    const ngram = stats.draftSources?.ngram;
    if (this.ngram && ngram) {
      this.ngram.lookups += ngram.lookups;
      this.ngram.hits += ngram.hits;
      this.ngram.draftedTokens += ngram.draftedTokens;
      this.ngram.acceptedTokens += ngram.acceptedTokens;
    }
    this.requests++;
    this.generatedTokens += stats.generatedTokens;
    this.ttftSum += stats.ttftMs;
    this.e2eSum += stats.e2eMs;
    this.firstStart = Math.min(this.firstStart, timing.submittedAt);
    this.lastEnd = Math.max(this.lastEnd, timing.finishedAt);
    this.counters.add(counters);
  }

  trace(): TraceEvent[] {
    return this.events.slice(-TRACE_LIMIT);
  }

  snapshot(): RunStats {
    const wallMs = this.wall + (this.activeSince !== undefined ? this.now() - this.activeSince : 0);
    const draftMs = this.busy.draft;
    const verifyMs = this.busy.target;
    const n = this.requests;
    return {
      mode: this.mode,
      requests: n,
      generatedTokens: this.generatedTokens,
      wallMs,
      tokensPerSecond: wallMs > 0 ? this.generatedTokens / (wallMs / 1000) : 0,
      draftedTokens: this.counters.drafted,
      acceptedTokens: this.counters.accepted,
      acceptanceRate: this.counters.acceptanceRate,
      meanAcceptanceLength: this.counters.meanAcceptanceLength,
      perPositionAcceptance: this.counters.perPositionAcceptance,
      meanTtftMs: n > 0 ? this.ttftSum / n : 0,
      meanE2eMs: n > 0 ? this.e2eSum / n : 0,
      amortizedE2eMs: n > 0 ? (this.lastEnd - this.firstStart) / n : 0,
      steps: this.steps,
      draftMs,
      verifyMs,
      overlapMs: this.overlap,
      idleMs: Math.max(0, wallMs - (draftMs + verifyMs - this.overlap)),
      prefillMs: this.prefill,
      hiddenDraftFraction: this.drafting > 0 ? this.hiddenDrafting / this.drafting : 0,
      ...(this.mode === "auto" ? { auto: this.autoSnapshot() } : {}),
      ...(this.tetris ? { tetris: this.tetrisSnapshot(this.tetris) } : {}),
      ...(this.postVerify ? { postVerify: withRate(this.postVerify) } : {}),
      ...(this.preVerify ? { preVerify: withRate(this.preVerify) } : {}),
      ...(this.coreLimit ? { coreLimit: this.coreLimit() } : {}),
      ...(this.ngram ? { draftSources: sourceStats(this.ngram, this.combined ? this.counters : undefined) } : {}),
    };
  }

  private autoSnapshot(): AutoStats {
    const decisions = [...this.autoCounts.values()]
      .map((d) => ({ ...d, threads: { ...d.threads } }))
      .sort((a, b) => b.steps - a.steps);
    return {
      decisions,
      current: this.autoCurrent ? { ...this.autoCurrent, threads: { ...this.autoCurrent.threads } } : null,
      probeSteps: this.autoProbes,
      switches: this.autoSwitches,
      model: this.autoModel ? this.autoModel() : emptyModel(),
    };
  }

  private tetrisSnapshot(t: TetrisStats): TetrisStats {
    const accepted = this.tetrisAccepted;
    const verifies = this.tetrisVerifies;
    return {
      ...t,
      acceptanceRate: t.verifiedTokens > 0 ? accepted / t.verifiedTokens : 0,
      acceptedPerVerify: verifies > 0 ? accepted / verifies : 0,
    };
  }
}

function emptyNgram(): NgramCounts {
  return { lookups: 0, hits: 0, draftedTokens: 0, acceptedTokens: 0 };
}

function emptyTetris(extra: number): TetrisStats {
  return { extra, draftedTokens: 0, verifiedTokens: 0, acceptanceRate: 0, acceptedPerVerify: 0 };
}

function emptyModel(): AutoModelSnapshot {
  return {
    verify: { sequential: null, overlapped: null },
    draft: { sequential: null, overlapped: null },
    batchSize: 0,
    overheadMs: { sequential: 0, overlapped: 0 },
    acceptance: [],
    predictions: [],
  };
}

function withRate(p: PostVerifyStats): PostVerifyStats {
  return { ...p, hitRate: p.rounds > 0 ? p.hits / p.rounds : 0 };
}
