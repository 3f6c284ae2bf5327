// auto's decision logic: which schedule (sequential or overlapped) and draft length k the next
// step runs, from the online cost model (cost-model.ts); auto-scheduler.ts runs what it decides.
//
// Exploration: a short calibration measures plain decoding and sequential speculation at k_max / 2
// twice each, then the overlap once (its fill step), and only while an upper bound on the overlap
// from the sequential timings says it could win; then at most every `probeEvery` steps a probe
// re-measures an option that is not the current one (the other schedule, or a neighbouring k).
// Probes are paid from a time budget (probeBudget of the elapsed time, default 3%): the predicted
// loss of a probe, its time x (1 - its rate / the best rate), must fit in what has accrued, so
// options predicted far worse are re-measured rarely and cheap ones often.
import { CostModel } from "./cost-model.js";
import type { CallTiming } from "./executor.js";
import type { AutoPrediction, StepSchedule } from "./types.js";

/** A schedule change must promise this much more throughput (a switch costs a fill or drain step). */
export const SWITCH_GAIN = 1.04;
/** Probe the other schedule whenever it is predicted at least this close to the best. */
const CLOSE_CALL = 0.8;
/** Otherwise probe it every this many probes (the load of the machine may have changed since). */
const FAR_PROBE_PERIOD = 2;
/** Samples of each kind of work the calibration takes before trusting predictions. */
const CALIBRATION_SAMPLES = 2;
/**
 * The overlapped schedule is calibrated (and probed from the sequential one) by one step: its fill,
 * which verifies one sub-batch plainly while drafting the other, measures both workers at the
 * overlapped placement; the drafts it made are verified by the drain that follows, so leaving
 * costs no further step of the schedule being measured.
 */
const OVERLAP_PROBE_STEPS = 1;
/**
 * Calibration takes few samples, and a burst of machine load while it runs can make a schedule look
 * far slower than it is. So the schedule not chosen is re-measured every CONFIRM_EVERY steps,
 * outside the probe budget, until one re-measurement moves its predicted rate by less than
 * SETTLED (at most MAX_CONFIRM times per schedule).
 */
const CONFIRM_EVERY = 6;
/**
 * A neighbouring k predicted within NEAR_TIE of the best is re-measured every K_PROBE_EVERY steps
 * (paid from the budget as usual): near ties are decided by measurements, not by the line.
 */
const NEAR_TIE = 0.9;
const K_PROBE_EVERY = 8;
const SETTLED = 0.15;
const MAX_CONFIRM = 4;
/**
 * A schedule not running keeps the estimate of its last samples. When that estimate stands this far
 * above the lowest it reached (CostModel.inflation), those samples were taken under a burst of load,
 * and the schedule is confirmed again (outside the budget, at most MAX_REVISITS times a run): without
 * it, a schedule measured during a burst looks slow for the rest of the run and is never re-measured.
 * If the machine got slower for good, the revisits find the same estimate and end with the cap.
 */
const INFLATED = 1.6;
const MAX_REVISITS = 8;
/**
 * The overlapped schedule is calibrated only while its upper bound (CostModel.overlapBound, from
 * the sequential timings) reaches this share of the sequential best: where it cannot win, its
 * calibration steps would be pure loss (on a 2-core CPU, each costs about two plain steps).
 */
const OVERLAP_GATE = 0.9;

/** Requests in one verification pass under each schedule. */
export interface PassSize {
  sequential: number;
  overlapped: number;
}

export interface AutoDecision {
  schedule: StepSchedule;
  k: number;
  /** a calibration or exploration step rather than the predicted best */
  probe: boolean;
}

export interface AutoPolicyOptions {
  kMax: number;
  /** m (draft costs are normalised to it) */
  batchSize?: number;
  /** whether the overlapped schedule exists at all (a draft worker, and cores to split) */
  canOverlap: boolean;
  /** steps between probes at least (default 24) */
  probeEvery?: number;
  /** share of the time probes may cost (default 0.03) */
  probeBudget?: number;
}

/** The decision logic alone: what to run next, given the model. Pure policy, O(k_max) per step. */
export class AutoPolicy {
  readonly model: CostModel;
  readonly kMax: number;
  readonly canOverlap: boolean;
  private readonly probeEvery: number;
  private current: { schedule: StepSchedule; k: number } | null = null;
  private probes: { schedule: StepSchedule; k: number }[] = [];
  private readonly probeBudget: number;
  private sinceProbe = 0;
  private sinceKProbe = 0;
  private sinceKProbeFlip = false;
  private probeCount = 0;
  /** ms of predicted loss probes may still spend */
  private budgetMs = 0;
  /** per schedule: its estimate was confirmed by a re-measurement (or confirmations ran out) */
  private settled = { sequential: false, overlapped: false };
  private confirmations = { sequential: 0, overlapped: 0 };
  /** per schedule: confirmations spent because its estimate was inflated */
  private revisits = { sequential: 0, overlapped: 0 };
  /** the confirmation probe in flight: its schedule and the rate predicted before it */
  private confirming: { schedule: StepSchedule; rate: number } | null = null;
  /** calibration: verification passes without drafts measured */
  private calibrated = { plain: 0 };
  /** the budgeted probe of the sequential schedule just chosen: what the budget paid, and the best rate then */
  private charged: { costMs: number; bestTokensPerMs: number } | null = null;

  constructor(opts: AutoPolicyOptions) {
    this.kMax = opts.kMax;
    this.canOverlap = opts.canOverlap;
    this.probeEvery = opts.probeEvery ?? 24;
    this.probeBudget = opts.probeBudget ?? 0.03;
    this.model = new CostModel({ kMax: opts.kMax, batchSize: opts.batchSize });
  }

  /** The schedule chosen last (null before the first choice after calibration). */
  get currentSchedule(): StepSchedule | null {
    return this.current?.schedule ?? null;
  }

  /** Every option's prediction, best first (unmeasured ones left out). */
  predictions(size: PassSize, overlapNow: boolean): Omit<AutoPrediction, "threads">[] {
    const rates = this.model.acceptance.rates();
    const out: Omit<AutoPrediction, "threads">[] = [];
    for (let k = 0; k <= this.kMax; k++) {
      const seq = this.model.predict("sequential", k, size.sequential, rates);
      if (seq) out.push(seq);
      if (overlapNow && k > 0) {
        const ovl = this.model.predict("overlapped", k, size.overlapped, rates);
        if (ovl) out.push(ovl);
      }
    }
    return out.sort((a, b) => b.tokensPerSecond - a.tokensPerSecond);
  }

  /**
   * The most the overlapped schedule could reach (its best k), bounded from the sequential timings;
   * undefined when those are not measured yet.
   */
  overlapBound(size: PassSize): Omit<AutoPrediction, "threads"> | undefined {
    const rates = this.model.acceptance.rates();
    let best: Omit<AutoPrediction, "threads"> | undefined;
    for (let k = 1; k <= this.kMax; k++) {
      const b = this.model.overlapBound(k, size.overlapped, size.sequential, rates);
      if (b && (!best || b.tokensPerSecond > best.tokensPerSecond)) best = b;
    }
    return best;
  }

  /** What still has to be measured once before predictions can be compared (null: nothing). */
  private calibration(size: PassSize, overlapNow: boolean): { schedule: StepSchedule; k: number } | null {
    const m = this.model;
    const n = CALIBRATION_SAMPLES;
    if (this.calibrated.plain < n) return { schedule: "sequential", k: 0 };
    // speculation is calibrated at half of k_max: where it loses, a k_max step loses the most, and
    // where it wins, the predictions for longer drafts (the cost lines, the pooled acceptance) put
    // the choice there at once, measured from then on
    if (m.draft.sequential.samples < n || !m.acceptance.measured(0))
      return { schedule: "sequential", k: Math.ceil(this.kMax / 2) };
    if (
      overlapNow &&
      (m.verify.overlapped.samples < OVERLAP_PROBE_STEPS || m.draft.overlapped.samples < OVERLAP_PROBE_STEPS)
    ) {
      // re-checked every step: a change of load or acceptance can bring the overlap into reach later
      const bound = this.overlapBound(size);
      const seqBest = this.predictions(size, false)[0];
      if (!bound || !seqBest || this.overlapInReach(bound, seqBest))
        return { schedule: "overlapped", k: bound?.k ?? this.kMax };
    }
    return null;
  }

  /** Whether the overlapped schedule's bound comes near enough `best` to be worth measuring. */
  private overlapInReach(
    bound: Omit<AutoPrediction, "threads"> | undefined,
    best: Omit<AutoPrediction, "threads">,
  ): boolean {
    return bound === undefined || bound.tokensPerSecond >= OVERLAP_GATE * best.tokensPerSecond;
  }

  /** The next step's schedule and k. `size`: requests per pass; `overlapNow`: two sub-batches can run. */
  choose(size: PassSize, overlapNow: boolean): AutoDecision {
    overlapNow = overlapNow && this.canOverlap;
    this.charged = null;
    while (this.probes.length > 0) {
      const p = this.probes.shift()!;
      if (p.schedule === "overlapped" && !overlapNow) continue;
      return { ...p, probe: true };
    }
    const calibrate = this.calibration(size, overlapNow);
    if (calibrate) return { ...calibrate, probe: true };

    const preds = this.predictions(size, overlapNow);
    if (preds.length === 0) return { schedule: "sequential", k: 0, probe: false };
    if (this.confirming) {
      const c = this.confirming;
      const now = preds.find((p) => p.schedule === c.schedule);
      const top = preds[0]!;
      // settled when the estimate held, or when the decision it was checked for held: re-measured,
      // the schedule is still far behind (precision beyond that changes no choice, and on a GPU,
      // where 10 ms steps jitter by 20%, the estimate itself rarely holds within SETTLED)
      const held = now !== undefined && Math.abs(now.tokensPerSecond / c.rate - 1) < SETTLED;
      const farBehind =
        now !== undefined && top.schedule !== c.schedule && now.tokensPerSecond < CLOSE_CALL * top.tokensPerSecond;
      if (held || farBehind) this.settled[c.schedule] = true;
      if (this.confirmations[c.schedule] >= MAX_CONFIRM) this.settled[c.schedule] = true;
      this.confirming = null;
    }
    let best = preds[0]!;
    const cur = this.current;
    if (cur && best.schedule !== cur.schedule) {
      const same = preds.find((p) => p.schedule === cur.schedule);
      if (same && best.tokensPerSecond < SWITCH_GAIN * same.tokensPerSecond) best = same;
    }
    this.current = { schedule: best.schedule, k: best.k };

    this.budgetMs += this.probeBudget * best.stepMs;
    // The other schedule is re-measured (confirmed, probed) only where it could win: it has been
    // measured at all, and when it is the overlap, its bound from the sequential timings (measured
    // all the while) reaches near the best. A burst of load can make a measurement look slow; it
    // cannot make a bound from other measurements look slow.
    let otherPred = preds.find((p) => p.schedule !== best.schedule);
    if (otherPred?.schedule === "overlapped" && !this.overlapInReach(this.overlapBound(size), best))
      otherPred = undefined;
    const revisit =
      otherPred !== undefined &&
      this.settled[otherPred.schedule] &&
      this.revisits[otherPred.schedule] < MAX_REVISITS &&
      this.model.inflation(otherPred.schedule) >= INFLATED;
    const unsure = otherPred !== undefined && (!this.settled[otherPred.schedule] || revisit);
    if (++this.sinceProbe >= (unsure ? CONFIRM_EVERY : this.probeEvery)) {
      const probe = this.planProbe(best, otherPred, preds, unsure);
      if (probe) {
        if (revisit && probe.schedule === otherPred!.schedule) this.revisits[otherPred!.schedule]++;
        this.sinceProbe = 0;
        this.probeCount++;
        return probe;
      }
    }
    if (++this.sinceKProbe >= K_PROBE_EVERY) {
      const near = this.nearTieProbe(best, preds);
      if (near) {
        this.sinceKProbe = 0;
        return near;
      }
    }
    return { schedule: best.schedule, k: best.k, probe: false };
  }

  /** The neighbouring k (alternately above and below) when it is a near tie the budget can pay for. */
  private nearTieProbe(
    best: Omit<AutoPrediction, "threads">,
    preds: readonly Omit<AutoPrediction, "threads">[],
  ): AutoDecision | null {
    const floor = best.schedule === "sequential" ? 0 : 1;
    const ks = this.sinceKProbeFlip ? [best.k - 1, best.k + 1] : [best.k + 1, best.k - 1];
    this.sinceKProbeFlip = !this.sinceKProbeFlip;
    for (const k of ks) {
      if (k < floor || k > this.kMax) continue;
      const o = preds.find((p) => p.schedule === best.schedule && p.k === k);
      if (!o || o.tokensPerSecond < NEAR_TIE * best.tokensPerSecond) continue;
      const cost = this.lossMs(o, best);
      if (cost > this.budgetMs) continue;
      this.budgetMs -= cost;
      this.charge(best, cost);
      return { schedule: best.schedule, k, probe: true };
    }
    return null;
  }

  /** Predicted time lost by running `o` for one step instead of the best option. */
  private lossMs(o: Omit<AutoPrediction, "threads">, best: Omit<AutoPrediction, "threads">): number {
    return best.tokensPerSecond > 0 ? o.stepMs * Math.max(0, 1 - o.tokensPerSecond / best.tokensPerSecond) : 0;
  }

  /**
   * Predicted time lost by leaving the overlapped option `ovl` for a step and coming back: the drain
   * verifies one sub-batch's drafts (E(k) tokens per request) and a plain token for every other
   * request, the fill back a plain token per request of one sub-batch; two steady steps would have
   * gained E(k) per request of a sub-batch each. About ovl's step time x (E - 2) / E.
   */
  private drainFillLossMs(ovl: Omit<AutoPrediction, "threads">): number {
    return ovl.stepMs * Math.max(0, 1 - 2 / Math.max(1, ovl.tokensPerVerify));
  }

  private planProbe(
    best: Omit<AutoPrediction, "threads">,
    otherBest: Omit<AutoPrediction, "threads"> | undefined,
    preds: readonly Omit<AutoPrediction, "threads">[],
    unsure: boolean,
  ): AutoDecision | null {
    // a neighbouring draft length in the current schedule (alternately one more and one less):
    // cheap, and keeps acceptance and the verification cost measured around the choice
    const floor = best.schedule === "sequential" ? 0 : 1;
    const up = best.k + 1 <= this.kMax ? best.k + 1 : undefined;
    const down = best.k - 1 >= floor ? best.k - 1 : undefined;
    const kProbe = this.probeCount % 2 === 0 ? (up ?? down) : (down ?? up);
    const kOption =
      kProbe === undefined ? undefined : preds.find((p) => p.schedule === best.schedule && p.k === kProbe);
    // the other schedule: to the overlapped one, its fill step alone (the drain back is a step of
    // the current schedule; the fill's drafts pay off there, so the pair is priced as one step of
    // the overlap); to the sequential one, its drain and one real step, and the fill that returns
    // to the overlap
    const scheduleTurn =
      otherBest &&
      (unsure ||
        otherBest.tokensPerSecond >= CLOSE_CALL * best.tokensPerSecond ||
        this.probeCount % FAR_PROBE_PERIOD === 0);
    if (otherBest && scheduleTurn) {
      const steps = otherBest.schedule === "overlapped" ? OVERLAP_PROBE_STEPS : 2;
      const probeLoss =
        otherBest.schedule === "overlapped"
          ? steps * this.lossMs(otherBest, best)
          : this.lossMs(otherBest, best) + this.drainFillLossMs(best);
      const cost = unsure ? 0 : probeLoss;
      if (cost <= this.budgetMs) {
        this.budgetMs -= cost;
        if (unsure) {
          this.confirming = { schedule: otherBest.schedule, rate: otherBest.tokensPerSecond };
          this.confirmations[otherBest.schedule]++;
        }
        for (let i = 1; i < steps; i++) this.probes.push({ schedule: otherBest.schedule, k: otherBest.k });
        return { schedule: otherBest.schedule, k: otherBest.k, probe: true };
      }
    }
    if (kProbe === undefined) return null;
    const cost = kOption ? this.lossMs(kOption, best) : 0;
    if (cost > this.budgetMs) return null;
    this.budgetMs -= cost;
    this.charge(best, cost);
    return { schedule: best.schedule, k: kProbe, probe: true };
  }

  /** A k probe within the sequential schedule is settled by what it measures (settleProbe). */
  private charge(best: Omit<AutoPrediction, "threads">, costMs: number): void {
    if (best.schedule === "sequential" && best.tokensPerSecond > 0)
      this.charged = { costMs, bestTokensPerMs: best.tokensPerSecond / 1000 };
  }

  /**
   * The step just run took `ms` and generated `tokens`. When it was a k probe paid from the budget,
   * the budget pays what the probe actually lost (its time beyond what the best option takes for
   * those tokens) instead of the predicted loss. The prediction leaves out work a probe alone pays:
   * after plain steps the draft cache catches up first (on the small pair, a k = 1 probe among plain
   * steps took 32 ms where its line said 24 and a plain step 11). Priced by the line, such probes
   * came back every K_PROBE_EVERY steps and cost auto ~10% instead of probeBudget.
   */
  settleProbe(ms: number, tokens: number): void {
    const c = this.charged;
    this.charged = null;
    if (!c || !(ms >= 0) || !(tokens >= 0)) return;
    const lost = Math.max(0, ms - tokens / c.bestTokensPerMs);
    this.budgetMs -= lost - c.costMs;
  }

  /** Records the acceptance outcomes of a verification. */
  recordVerify(schedule: StepSchedule, t: CallTiming | undefined): void {
    if (!t) return;
    if (t.k === 0 && schedule === "sequential") this.calibrated.plain++;
    this.model.verify[schedule].add(t.tokens, t.ms);
    if (t.outcomes) this.model.acceptance.record(t.outcomes);
  }

  recordDraft(schedule: StepSchedule, t: CallTiming | undefined): void {
    if (!t || t.k <= 0) return;
    this.model.addDraft(schedule, t.k, t.requests, t.ms);
  }

  recordOverhead(schedule: StepSchedule, ms: number): void {
    this.model.overhead[schedule].add(Math.max(0, ms));
  }
}
