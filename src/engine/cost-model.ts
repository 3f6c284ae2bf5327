// The cost model behind `auto`: online moving averages of what each kind of work costs at each
// thread placement, and of how many draft tokens get accepted, turned into a predicted throughput
// for every (schedule, k) option. See docs/performance.md for the model and its validation.
//
//   T_verify(n)   = a + b·n                    ms for a verification pass over n tokens (sum of k_i + 1)
//   T_draft(k, r) = (c + d·k)·(4 + r)/(4 + m)  ms for a draft call of k autoregressive steps over
//                                              r requests (fitted at the batch size m; the first
//                                              step also feeds the pending tokens: c)
// A size measured often is predicted from its own moving average; the lines fill in the others.
//   E(k)          = 1 + sum_{j=1..k} prod_{i<j} alpha_i   tokens per request per verification
//   sequential:  rate = r·E(k) / (T_draft(k, r) + T_verify(r·(k+1)) + o_seq)     (k = 0: plain decoding)
//   overlapped:  rate = r·E(k) / (max(T_draft(k, r), T_verify(r·(k+1))) + o_ovl)
// Every update and prediction is O(k_max): nothing here grows with the vocabulary or the run.
import type { AutoModelSnapshot, AutoPrediction, StepSchedule } from "./types.js";

export const SCHEDULES: readonly StepSchedule[] = ["sequential", "overlapped"];

/** A size's own average is trusted (and used to interpolate others) from this many samples on. */
const INTERPOLATE_MIN_SAMPLES = 3;

/**
 * Cost as a function of size, y ~ level x (a + b·x), learnt online. Each size x seen keeps a
 * moving average of its cost relative to `level`, so a size measured long ago still gives the line
 * its slope; `level` moves fast and carries changes that hit every size at once (machine load), so
 * one size re-measured updates the prediction at every size. The line is the weighted least-squares
 * fit through the per-size averages.
 */
export class LinearFit {
  private readonly buckets = new Map<number, { z: number; n: number; at: number }>();
  private level = 1;
  /** the lowest level reached since the second sample: what this work costs on an unloaded machine */
  private floor = Infinity;
  private latestX: number | undefined;
  /** samples seen */
  samples = 0;

  constructor(
    /** weight of a new sample in the level (the per-size shape learns 4x slower) */
    private readonly weight = 0.3,
    /** below this spread of x (standard deviation over sizes) there is no slope to fit */
    private readonly minSpread = 0.75,
  ) {}

  add(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y) || y < 0) return;
    if (this.samples === 0) {
      this.level = y > 0 ? y : 1;
    } else {
      const shape = this.shapeAt(x);
      if (shape !== undefined && shape > 0) {
        // a single slow sample (a preempted thread, a GC pause) counts as at most 2x the expected
        // cost; fast samples count in full (work does not get faster by accident)
        const expected = this.level * shape;
        const clipped = Math.min(y, expected * 2);
        this.level += this.weight * (clipped / shape - this.level);
        this.floor = Math.min(this.floor, this.level);
      }
    }
    const b = this.buckets.get(x);
    const z = b ? Math.min(y / this.level, b.z * 2) : y / this.level;
    if (b) {
      b.z += Math.max(this.weight / 4, 1 / (b.n + 1)) * (z - b.z);
      b.n++;
      b.at = this.samples;
    } else this.buckets.set(x, { z, n: 1, at: this.samples });
    this.samples++;
    this.latestX = x;
  }

  /** Relative cost at x: the line, else that size's own average (undefined: no information). */
  private shapeAt(x: number): number | undefined {
    const line = this.line();
    if (line) return line.a + line.b * x;
    return this.buckets.get(x)?.z;
  }

  get empty(): boolean {
    return this.samples === 0;
  }

  /**
   * How far the level stands above the lowest it reached (1: at it). Well above, the latest samples
   * were taken under load, and for work not run since, the estimate stays that pessimistic.
   */
  get inflation(): number {
    return Number.isFinite(this.floor) && this.floor > 0 ? this.level / this.floor : 1;
  }

  /** The most recently measured size and its current predicted cost. */
  get recent(): { x: number; y: number } | undefined {
    if (this.latestX === undefined) return undefined;
    return { x: this.latestX, y: this.level * this.shapeAt(this.latestX)! };
  }

  /** The relative line (shape only) when the sizes seen have spread, else null; a, b >= 0. */
  line(): { a: number; b: number } | null {
    if (this.buckets.size < 2) return null;
    let w = 0;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let sxy = 0;
    for (const [x, b] of this.buckets) {
      // well-measured and recent sizes count more
      const wi = Math.min(b.n, 8) * 0.99 ** (this.samples - 1 - b.at);
      w += wi;
      sx += wi * x;
      sy += wi * b.z;
      sxx += wi * x * x;
      sxy += wi * x * b.z;
    }
    const mx = sx / w;
    const my = sy / w;
    const varX = sxx / w - mx * mx;
    if (!(varX >= this.minSpread * this.minSpread)) return null;
    let b = (sxy / w - mx * my) / varX;
    let a = my - b * mx;
    if (b < 0) {
      b = 0;
      a = my;
    } else if (a < 0) {
      a = 0;
      b = mx > 0 ? my / mx : 0;
    }
    return { a, b };
  }

  /**
   * Predicted y at x: a size measured often by its own average (blended with the line while it
   * has few samples), other sizes by the line; undefined when neither exists.
   */
  predict(x: number): number | undefined {
    if (this.samples === 0) return undefined;
    const line = this.line();
    const at = (bx: number, b: { z: number; n: number }) => {
      const w = line ? b.n / (b.n + 2) : 1;
      return w * b.z + (1 - w) * (line ? line.a + line.b * bx : 0);
    };
    const b = this.buckets.get(x);
    if (b && b.n >= INTERPOLATE_MIN_SAMPLES) return this.level * at(x, b);
    // between two well-measured sizes: interpolate (costs are often concave in the pass size, and
    // a line through far-apart sizes overstates the marginal cost near the larger one)
    let lo: [number, { z: number; n: number }] | undefined;
    let hi: [number, { z: number; n: number }] | undefined;
    for (const [bx, bb] of this.buckets) {
      if (bb.n < INTERPOLATE_MIN_SAMPLES) continue;
      if (bx < x && (!lo || bx > lo[0])) lo = [bx, bb];
      if (bx > x && (!hi || bx < hi[0])) hi = [bx, bb];
    }
    if (lo && hi) {
      const t = (x - lo[0]) / (hi[0] - lo[0]);
      const between = (1 - t) * at(lo[0], lo[1]) + t * at(hi[0], hi[1]);
      if (!b) return this.level * between;
      const w = b.n / (b.n + 2);
      return this.level * (w * b.z + (1 - w) * between);
    }
    if (b) return this.level * at(x, b);
    return line ? this.level * (line.a + line.b * x) : undefined;
  }

  /** The line in ms (shape times level), null without a line. */
  scaledLine(): { a: number; b: number } | null {
    const line = this.line();
    return line ? { a: line.a * this.level, b: line.b * this.level } : null;
  }
}

/** Exponential moving average. */
export class Ewma {
  value: number | undefined;
  constructor(private readonly weight: number) {}
  add(x: number): void {
    if (!Number.isFinite(x)) return;
    this.value = this.value === undefined ? x : this.value + this.weight * (x - this.value);
  }
}

/**
 * Conditional acceptance per draft position, alpha_i = P(draft i accepted | drafts 0..i-1 were),
 * as decayed counts with a weak prior (the pooled rate) so unmeasured positions stay plausible.
 */
export class AcceptanceModel {
  private readonly reached: Float64Array;
  private readonly accepted: Float64Array;

  constructor(
    readonly kMax: number,
    private readonly decay = 0.97,
    private readonly priorRate = 0.6,
    private readonly priorWeight = 1,
  ) {
    this.reached = new Float64Array(kMax);
    this.accepted = new Float64Array(kMax);
  }

  /** One verification pass: per request, drafts verified and accepted. */
  record(outcomes: readonly { k: number; accepted: number }[]): void {
    let any = false;
    for (const o of outcomes) if (o.k > 0) any = true;
    if (!any) return;
    for (let i = 0; i < this.kMax; i++) {
      this.reached[i]! *= this.decay;
      this.accepted[i]! *= this.decay;
    }
    for (const { k, accepted } of outcomes) {
      const reach = Math.min(k, accepted + 1, this.kMax);
      for (let i = 0; i < reach; i++) {
        this.reached[i]!++;
        if (i < accepted) this.accepted[i]!++;
      }
    }
  }

  /** Pooled conditional rate over all positions, with the prior. */
  private pooled(): number {
    let reached = 0;
    let accepted = 0;
    for (let i = 0; i < this.kMax; i++) {
      reached += this.reached[i]!;
      accepted += this.accepted[i]!;
    }
    return (accepted + this.priorRate * this.priorWeight) / (reached + this.priorWeight);
  }

  rates(): number[] {
    const pooled = this.pooled();
    const out = new Array<number>(this.kMax);
    for (let i = 0; i < this.kMax; i++)
      out[i] = (this.accepted[i]! + pooled * this.priorWeight) / (this.reached[i]! + this.priorWeight);
    return out;
  }

  /** Whether position i has been measured at all (not just the prior). */
  measured(i: number): boolean {
    return i < this.kMax && this.reached[i]! > 0.5;
  }

  /** E(k): tokens a request gains per verification with k drafts (accepted + 1). */
  expectedTokens(k: number, rates = this.rates()): number {
    let total = 1;
    let p = 1;
    for (let j = 0; j < k && j < rates.length; j++) {
      p *= rates[j]!;
      total += p;
    }
    return total;
  }
}

export interface CostModelOptions {
  kMax: number;
  /** m: the batch size draft calls are normalised to (default 4) */
  batchSize?: number;
  /** weight of a new sample in the time fits' moving averages */
  weight?: number;
}

/** Verify / draft cost fits per schedule (samples taken while running alone or overlapped). */
export class CostModel {
  readonly verify: Record<StepSchedule, LinearFit>;
  /** x = autoregressive steps k of a draft call, y = its ms scaled to m requests */
  readonly draft: Record<StepSchedule, LinearFit>;
  readonly overhead: Record<StepSchedule, Ewma>;
  readonly acceptance: AcceptanceModel;
  readonly kMax: number;
  readonly batchSize: number;

  constructor(opts: CostModelOptions) {
    const weight = opts.weight ?? 0.3;
    this.kMax = opts.kMax;
    this.batchSize = opts.batchSize ?? 4;
    this.verify = { sequential: new LinearFit(weight), overlapped: new LinearFit(weight) };
    this.draft = { sequential: new LinearFit(weight, 0.4), overlapped: new LinearFit(weight, 0.4) };
    this.overhead = { sequential: new Ewma(0.2), overlapped: new Ewma(0.2) };
    this.acceptance = new AcceptanceModel(opts.kMax);
  }

  /** The larger inflation (LinearFit.inflation) of a schedule's verification and draft costs. */
  inflation(schedule: StepSchedule): number {
    return Math.max(this.verify[schedule].inflation, this.draft[schedule].inflation);
  }

  /** Predicted ms of a verification pass of n tokens at a schedule's placement (undefined: unmeasured). */
  verifyMs(schedule: StepSchedule, n: number): number | undefined {
    return shapedPrediction(this.verify[schedule], this.verify[other(schedule)], n, VERIFY_PRIOR_OFFSET);
  }

  /** Records a draft call: k steps over r requests took ms. */
  addDraft(schedule: StepSchedule, k: number, r: number, ms: number): void {
    if (k > 0 && r > 0)
      this.draft[schedule].add(k, (ms * (DRAFT_REQUEST_OFFSET + this.batchSize)) / (DRAFT_REQUEST_OFFSET + r));
  }

  /** Predicted ms of a draft call of k steps over r requests (undefined: unmeasured). */
  draftMs(schedule: StepSchedule, k: number, r: number): number | undefined {
    if (k === 0) return 0;
    const atM = shapedPrediction(this.draft[schedule], this.draft[other(schedule)], k, DRAFT_PRIOR_OFFSET);
    return atM === undefined ? undefined : (atM * (DRAFT_REQUEST_OFFSET + r)) / (DRAFT_REQUEST_OFFSET + this.batchSize);
  }

  /** Predicted throughput of one option for sub-batches of r requests (undefined: not enough data). */
  predict(
    schedule: StepSchedule,
    k: number,
    r: number,
    rates = this.acceptance.rates(),
  ): Omit<AutoPrediction, "threads"> | undefined {
    if (schedule === "overlapped" && k === 0) return undefined;
    const v = this.verifyMs(schedule, r * (k + 1));
    const d = this.draftMs(schedule, k, r);
    if (v === undefined || d === undefined) return undefined;
    const o = Math.max(0, this.overhead[schedule].value ?? 0);
    const stepMs = (schedule === "overlapped" ? Math.max(v, d) : v + d) + o;
    const tokensPerVerify = this.acceptance.expectedTokens(k, rates);
    return {
      schedule,
      k,
      stepMs,
      tokensPerVerify,
      tokensPerSecond: stepMs > 0 ? (1000 * r * tokensPerVerify) / stepMs : 0,
    };
  }

  /**
   * An upper bound on the overlapped schedule's throughput at k for sub-batches of r requests, from
   * sequential measurements (taken over `measuredAt` >= r requests) alone: overlapped, each phase
   * runs on no more threads (or the same device, shared) than sequentially, so its step takes at
   * least max(T_draft, T_verify) at the sequential placement. Costs are concave in their size, so
   * the verification line between measured sizes and the draft cost scaled in proportion to the
   * requests (T(r) >= T(R)·r/R, below the (4 + r) shape the predictions use) can only understate them.
   */
  overlapBound(
    k: number,
    r: number,
    measuredAt: number,
    rates = this.acceptance.rates(),
  ): Omit<AutoPrediction, "threads"> | undefined {
    if (k === 0) return undefined;
    const v = this.verifyMs("sequential", r * (k + 1));
    const atR = this.draftMs("sequential", k, Math.max(r, measuredAt));
    const d = atR === undefined ? undefined : (atR * r) / Math.max(r, measuredAt);
    if (v === undefined || d === undefined) return undefined;
    const stepMs = Math.max(v, d);
    const tokensPerVerify = this.acceptance.expectedTokens(k, rates);
    return {
      schedule: "overlapped",
      k,
      stepMs,
      tokensPerVerify,
      tokensPerSecond: stepMs > 0 ? (1000 * r * tokensPerVerify) / stepMs : Infinity,
    };
  }

  snapshot(predictions: AutoPrediction[], overlapBound: AutoModelSnapshot["overlapBound"] = null): AutoModelSnapshot {
    const fit = (f: LinearFit) => {
      if (f.empty) return null;
      const line = f.scaledLine();
      return { a: line ? line.a : f.recent!.y, b: line ? line.b : 0, samples: f.samples };
    };
    return {
      verify: { sequential: fit(this.verify.sequential), overlapped: fit(this.verify.overlapped) },
      draft: { sequential: fit(this.draft.sequential), overlapped: fit(this.draft.overlapped) },
      batchSize: this.batchSize,
      overheadMs: { sequential: this.overhead.sequential.value ?? 0, overlapped: this.overhead.overlapped.value ?? 0 },
      acceptance: this.acceptance.rates(),
      predictions,
      overlapBound,
    };
  }
}

const other = (s: StepSchedule): StepSchedule => (s === "sequential" ? "overlapped" : "sequential");

/** Prior shape of a verification pass before two sizes were measured: ms ~ (3 + tokens). */
const VERIFY_PRIOR_OFFSET = 3;
/** Prior shape of a draft call before two lengths were measured: ms ~ (0.3 + steps). */
const DRAFT_PRIOR_OFFSET = 0.3;
/** Shape of a draft call's cost in its requests: ms ~ (4 + requests). */
const DRAFT_REQUEST_OFFSET = 4;

/**
 * y at x from `fit` (its own average at x, or its line); else its latest level scaled by the
 * shape of `shape` (the other placement) when that has a line, else by the prior shape (offset + x).
 */
function shapedPrediction(fit: LinearFit, shape: LinearFit, x: number, priorOffset: number): number | undefined {
  const recent = fit.recent;
  if (!recent) return undefined;
  const own = fit.predict(x);
  if (own !== undefined) return own;
  const otherLine = shape.line();
  if (otherLine) {
    const at = otherLine.a + otherLine.b * recent.x;
    if (at > 0) return (recent.y * (otherLine.a + otherLine.b * x)) / at;
  }
  return (recent.y * (priorOffset + x)) / (priorOffset + recent.x);
}
