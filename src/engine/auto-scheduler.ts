// `auto`: each engine step picks the draft length k (0 = plain decoding) and the schedule
// (sequential: draft, then verify, each phase on all its cores; overlapped: PSD, cores split)
// that the online cost model (cost-model.ts) predicts to generate the most tokens per second.
//
// Up to 2m requests run, in two sub-batches as in psd. An overlapped step verifies the batch
// drafted last step while drafting the other; a sequential step drafts and verifies every running
// request in one pass (sd, or ar at k = 0, over up to 2m requests).
// Switching needs no second set of contexts: the workers' thread counts change between steps
// (Backend.setThreads). Entering the overlapped schedule ("fill"), the batch verified first has no
// drafts yet and decodes one plain token per request while the other is drafted; leaving it
// ("drain"), the batch holding drafts is verified in one pass with every other request decoding a
// plain token. Neither leaves a worker idle for a step. Nothing is ever drafted past unverified
// tokens, so output is lossless at any k.
//
// The decisions come from AutoPolicy (auto-policy.ts); overlapped steps run on the pipeline shared
// with psd (pipeline.ts, fill mode "verify-plain").
//
// One running request (a chat, the tail, after aborts) makes no two sub-batches; there the overlapped
// schedule is psd's post-verify (the next round drafted while this one verifies). Its gain hangs on
// how often a whole round is accepted and on whether the two workers slow each other, which the cost
// lines do not capture, so it is priced by what it did: bursts of post-verify steps measure its
// tokens per second, and it runs while that beats the sequential prediction for one request. Two variants
// are priced apart, post-verify alone and with pre-verify (a step without drafts runs a plain target step
// beside the draft's guess): which one pays depends on what a one-token pass costs against a full
// verification, so each gets bursts of its own and the faster one runs. It is
// explored only where running both phases at once takes no threads from either (the target on a GPU,
// the draft on its own device): on shared CPU cores each phase slows about 2x, one request's post-verify at
// 1 + 1 threads stays below plain decoding on all cores (docs/performance.md), and the measuring bursts cost
// auto a quarter of its throughput.
import type { Backend, ThreadPlacement } from "./backend.js";
import { AutoPolicy, type AutoPolicyOptions, type PassSize, SWITCH_GAIN } from "./auto-policy.js";
import type { BatchExecutor, CallLabel } from "./executor.js";
import { admitToDraftBatch, batchSizes, planStep, runStep, type PipelineCalls } from "./pipeline.js";
import type { Request } from "./request.js";
import type { StatsCollector } from "./stats.js";
import type { AutoChoice, AutoModelSnapshot, StepSchedule } from "./types.js";

export interface AutoSchedulerOptions {
  batchSize: number;
  kMax: number;
  backend: Backend;
  collector: StatsCollector;
  probeEvery?: number;
  probeBudget?: number;
}

/** Post-verify steps per measurement, and one-request steps between re-measurements. */
const PV_BURST = 6;
const PV_REMEASURE_EVERY = 96;
/** Weight of a post-verify step in the running estimate while post-verify runs. */
const PV_WEIGHT = 0.1;

/** The one-request overlap's two variants: post-verify alone, and with pre-verify. */
type PvVariant = "post" | "pre";
interface PvEstimate {
  rate?: number;
}

/** auto's schedule (a Scheduler: createScheduler returns it as one). */
export class AutoScheduler {
  /** false with prompt lookup alone (no draft model): nothing to prefill into a draft context */
  readonly usesDraft: boolean;
  /** on a CPU most of auto's steps can be plain: a request it never drafts costs no draft prefill */
  readonly lazyDraftCache = true;
  readonly capacity: number;
  private current: AutoPolicy;
  private readonly policyOptions: AutoPolicyOptions;
  private readonly backend: Backend;
  private readonly collector: StatsCollector;
  private readonly batchSize: number;
  private placed: StepSchedule | undefined;
  /** whether one request may run post-verify: the overlapped placement gives neither worker fewer threads */
  private readonly postVerifyFits: boolean;
  /** the one-request overlap: each variant's measured tokens/s, the burst measuring one, the variant running */
  private pv = AutoScheduler.freshPv();

  private static freshPv(): {
    est: Record<PvVariant, PvEstimate>;
    burst: { variant: PvVariant; left: number; tokens: number; ms: number } | null;
    since: number;
    running: PvVariant;
    next: PvVariant;
  } {
    return { est: { post: {}, pre: {} }, burst: null, since: 0, running: "post", next: "post" };
  }

  constructor(opts: AutoSchedulerOptions) {
    this.capacity = 2 * opts.batchSize;
    this.usesDraft = opts.backend.draft !== undefined;
    this.batchSize = opts.batchSize;
    this.backend = opts.backend;
    this.collector = opts.collector;
    const plans = opts.backend.threadPlans;
    const canOverlap =
      opts.backend.draft !== undefined &&
      (plans ? plans.overlapped !== null : opts.backend.workersMayOverlap !== false);
    this.policyOptions = {
      kMax: opts.kMax,
      batchSize: opts.batchSize,
      canOverlap,
      probeEvery: opts.probeEvery,
      probeBudget: opts.probeBudget,
    };
    this.current = new AutoPolicy(this.policyOptions);
    opts.collector.autoModel = () => this.snapshot();
    const ovl = plans?.overlapped;
    this.postVerifyFits =
      canOverlap && (!plans || (!!ovl && ovl.target >= plans.sequential.target && ovl.draft >= plans.sequential.draft));
  }

  get policy(): AutoPolicy {
    return this.current;
  }

  /** the backend's placements now (they follow Backend.limitCores) */
  private get plans(): { sequential: ThreadPlacement; overlapped: ThreadPlacement | null } | undefined {
    return this.backend.threadPlans;
  }

  /**
   * The threads each schedule runs at changed (other work took or left cores): every cost measured
   * at the old ones is stale, so the policy starts over (calibration takes a few steps), and the
   * next step moves the workers to the new placement.
   */
  placementChanged(): void {
    this.current = new AutoPolicy(this.policyOptions);
    this.placed = undefined;
    this.pv = AutoScheduler.freshPv();
  }

  admit(request: Request, running: readonly Request[]): void {
    admitToDraftBatch(request, running);
  }

  /**
   * Sub-batch 1 takes its slots from the top (each sub-batch stays one run of sequence ids for
   * the overlapped schedule), except while the sequential schedule runs: its passes span every
   * running request, so new requests then fill the lowest free slots and keep that span one run.
   */
  slotFromTop(request: Request): boolean {
    return request.batch === 1 && this.policy.currentSchedule !== "sequential";
  }

  compactsSlots(): boolean {
    return this.policy.currentSchedule === "sequential";
  }

  private threadsFor(schedule: StepSchedule): { target: number; draft: number } {
    const p = this.plans
      ? schedule === "overlapped"
        ? (this.plans.overlapped ?? this.plans.sequential)
        : this.plans.sequential
      : undefined;
    return p ? { target: p.target, draft: p.draft } : { target: 0, draft: 0 };
  }

  /** Moves the workers to a schedule's thread placement (between steps, while both are idle). */
  private async place(schedule: StepSchedule, executor: BatchExecutor): Promise<void> {
    if (!this.plans || this.placed === schedule) return;
    const t = this.threadsFor(schedule);
    await executor.setThreads(t.target, t.draft);
    this.placed = schedule;
  }

  async step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    if (running.length === 1) {
      const k = this.postVerifyK(running[0]!);
      if (k > 0)
        return await this.postVerifyStep(running, executor, step, k, this.pv.burst?.variant ?? this.pv.running);
    }
    const overlapNow = running.length >= 2;
    const size: PassSize = {
      sequential: running.length,
      overlapped: Math.max(1, running.length / 2),
    };
    const d = this.policy.choose(size, overlapNow);
    const choice: AutoChoice = { schedule: d.schedule, k: d.k, threads: this.threadsFor(d.schedule) };
    this.collector.recordDecision(choice, d.probe);
    const decision = { ...choice, probe: d.probe };
    const start = this.collector.now();
    let generated = 0;
    for (const r of running) generated -= r.generatedCount;
    const drafted = running.filter((q) => q.drafts !== null);

    if (d.schedule === "overlapped" && d.k > 0) {
      // entering the schedule ("fill") no batch holds drafts: the batch verified first decodes one
      // plain token per request while the other is drafted, so the target is never left idle
      const plan = planStep(running, "verify-plain");
      if (plan.kind === "overlap") {
        await this.place("overlapped", executor);
        const calls: PipelineCalls = {
          verify: (batch, label) => executor.verify(batch, label),
          draft: (batch, label) => executor.draft(batch, label, { k: d.k }),
        };
        const { verify: tv, draft: td } = await runStep(plan, running, calls, step, decision);
        this.policy.recordVerify("overlapped", tv);
        this.policy.recordDraft("overlapped", td);
        // a catch-up prefill is work, not overhead: counted as overhead it would inflate every
        // option of the schedule alike, which favours the options that gain most per step (long k)
        if (tv && td)
          this.policy.recordOverhead(
            "overlapped",
            this.collector.now() - start - Math.max(tv.ms, td.ms + (td.catchUpMs ?? 0)),
          );
        return;
      }
    }

    // sequential, or leaving overlapped (drain), or nothing to overlap with
    await this.place("sequential", executor);
    const label: CallLabel = { step, batch: -1, batchSizes: batchSizes(running), decision };
    if (drafted.length > 0) {
      // drain: the batch drafted last step is verified, and every other request decodes one plain
      // token in the same pass (one pass over all of them, as the sequential steps that follow)
      this.policy.recordVerify("sequential", await executor.verify(running, label));
      return;
    }
    // every running request (up to 2m) in one pass: sequential steps are sd / ar over all of them,
    // so auto is never held to m requests per pass where a wider pass is faster
    const td = d.k > 0 ? await executor.draft(running, label, { k: d.k }) : undefined;
    const tv = await executor.verify(running, label);
    this.policy.recordDraft("sequential", td);
    this.policy.recordVerify("sequential", tv);
    const ms = this.collector.now() - start;
    if (tv) this.policy.recordOverhead("sequential", ms - tv.ms - (td?.ms ?? 0) - (td?.catchUpMs ?? 0));
    for (const r of running) generated += r.generatedCount;
    this.policy.settleProbe(ms, generated);
  }

  /**
   * With one running request: the k to run a post-verify step at, or 0 for the policy's choice.
   * Post-verify runs in measuring bursts (the first once calibration is done, then every
   * PV_REMEASURE_EVERY one-request steps) and otherwise while its measured rate beats the
   * sequential prediction by the margin a switch needs; k is the sequential best k (at least 1).
   */
  private postVerifyK(request: Request): number {
    const policy = this.policy;
    if (!this.postVerifyFits || policy.currentSchedule === null) return 0;
    const one: PassSize = { sequential: 1, overlapped: 1 };
    const preds = policy.predictions(one, false);
    const bestSeq = preds[0];
    const k = preds.find((p) => p.k > 0)?.k ?? 0;
    if (!bestSeq || k === 0) return 0;
    const pv = this.pv;
    if (pv.burst) return k; // a burst runs its PV_BURST steps
    // measure each variant once, then one of them (in turn) every PV_REMEASURE_EVERY one-request steps
    const unmeasured = (["post", "pre"] as const).find((v) => pv.est[v].rate === undefined);
    if (unmeasured || ++pv.since >= PV_REMEASURE_EVERY) {
      const variant = unmeasured ?? pv.next;
      if (!unmeasured) pv.next = variant === "post" ? "pre" : "post";
      pv.burst = { variant, left: PV_BURST, tokens: 0, ms: 0 };
      pv.since = 0;
      return k;
    }
    pv.running = (pv.est.pre.rate ?? 0) > (pv.est.post.rate ?? 0) ? "pre" : "post";
    // a request holding ahead drafts keeps the schedule that made them for one more step
    if (request.drafts !== null && this.placed === "overlapped") return k;
    return (pv.est[pv.running].rate ?? 0) > SWITCH_GAIN * bestSeq.tokensPerSecond ? k : 0;
  }

  /** One post-verify step (psd's one-request overlap, with pre-verify or not), timed into that variant's estimate. */
  private async postVerifyStep(
    running: readonly Request[],
    executor: BatchExecutor,
    step: number,
    k: number,
    variant: PvVariant,
  ): Promise<void> {
    const r = running[0]!;
    const pv = this.pv;
    const probe = pv.burst !== null;
    const choice: AutoChoice = { schedule: "overlapped", k, threads: this.threadsFor("overlapped") };
    this.collector.recordDecision(choice, probe);
    await this.place("overlapped", executor);
    const before = r.generatedCount;
    const start = this.collector.now();
    const calls: PipelineCalls = {
      verify: (batch, label) => executor.verify(batch, label),
      draft: (batch, label) => executor.draft(batch, label, { k }),
      draftAhead: (batch, label) => executor.draftAhead(batch, label, k),
      preVerify: variant === "pre",
    };
    await runStep(planStep(running, "draft-alone"), running, calls, step, { ...choice, probe });
    const ms = this.collector.now() - start;
    const tokens = r.generatedCount - before;
    const est = pv.est[variant];
    if (pv.burst) {
      pv.burst.tokens += tokens;
      pv.burst.ms += ms;
      // a burst spans requests: it ends after PV_BURST steps, whichever requests ran them
      if (--pv.burst.left <= 0) {
        if (pv.burst.ms > 0) {
          const rate = (1000 * pv.burst.tokens) / pv.burst.ms;
          est.rate = est.rate === undefined ? rate : (est.rate + rate) / 2;
        }
        pv.burst = null;
      }
    } else if (ms > 0 && est.rate !== undefined) {
      est.rate += PV_WEIGHT * ((1000 * tokens) / ms - est.rate);
    }
  }

  private snapshot(): AutoModelSnapshot {
    // predictions for full sub-batches (the steady state), whatever the last step had
    const full: PassSize = { sequential: this.capacity, overlapped: this.batchSize };
    const preds = this.policy
      .predictions(full, this.policy.canOverlap)
      .map((p) => ({ ...p, threads: this.threadsFor(p.schedule) }));
    const bound =
      this.policy.model.verify.overlapped.empty && this.policy.canOverlap ? this.policy.overlapBound(full) : undefined;
    return this.policy.model.snapshot(preds, bound ? { k: bound.k, tokensPerSecond: bound.tokensPerSecond } : null);
  }
}
