// Step-level simulator: the throughput of ar / sd / psd / auto over a workload, from costs known in
// advance (simulator-inputs.ts). It keeps no model of its own: every step is planned by the
// engine's pipeline (pipeline.ts: which sub-batch is verified and which drafted, rebalancing, fill
// and drain) and costed by the engine's cost model (cost-model.ts: T_verify, T_draft over r
// requests, E(k), step time per schedule), so it cannot drift from the engine. Requests advance by
// E(k) tokens per verification (expected values), except under auto's own policy (sampled).
// O(steps) per mode. CLI: scripts/simulate.mjs.
import type { AutoDecision, AutoPolicy, PassSize } from "../engine/auto-policy.js";
import { CostModel, LinearFit, SCHEDULES } from "../engine/cost-model.js";
import type { CallTiming } from "../engine/executor.js";
import { admitToDraftBatch, planStep, type Batch, type PipelineMember } from "../engine/pipeline.js";
import { SlotPool } from "../engine/slots.js";
import type { Mode, StepSchedule } from "../engine/types.js";
import type { CostLine, SimCosts, SimWorkload } from "./simulator-inputs.js";

/** A cost fit that already knows its line: the engine's CostModel predicts from it as from a learnt one. */
class KnownFit extends LinearFit {
  constructor(private readonly cost: CostLine) {
    super();
    this.samples = 1;
  }

  override predict(x: number): number {
    return this.cost.points?.[x] ?? this.cost.a + this.cost.b * x;
  }

  override get recent(): { x: number; y: number } {
    return { x: 0, y: this.predict(0) };
  }
}

/** The engine's cost model over known costs. */
export class KnownCosts {
  readonly model: CostModel;
  /** acceptance per position up to k_max (the last one given extends to longer drafts) */
  readonly rates: number[];

  constructor(costs: SimCosts, kMax: number, batchSize: number) {
    this.model = new CostModel({ kMax, batchSize: costs.batchSize ?? batchSize });
    for (const s of SCHEDULES) {
      this.model.verify[s] = new KnownFit(costs.verify[s]);
      this.model.draft[s] = new KnownFit(costs.draft[s]);
      this.model.overhead[s].add(costs.overhead?.[s] ?? 0);
    }
    const alpha = costs.acceptance;
    this.rates = Array.from({ length: kMax }, (_, j) =>
      alpha.length === 0 ? 0 : alpha[Math.min(j, alpha.length - 1)]!,
    );
  }

  verifyMs(schedule: StepSchedule, tokens: number): number {
    return this.model.verifyMs(schedule, tokens)!;
  }

  draftMs(schedule: StepSchedule, k: number, requests: number): number {
    return this.model.draftMs(schedule, k, requests)!;
  }

  overheadMs(schedule: StepSchedule): number {
    return Math.max(0, this.model.overhead[schedule].value ?? 0);
  }

  /** E(k): tokens a request gains per verification of k drafts. */
  expectedTokens(k: number): number {
    return this.model.acceptance.expectedTokens(k, this.rates);
  }

  /** Step time and throughput of an option for r requests per pass (undefined: overlapped at k = 0). */
  option(schedule: StepSchedule, k: number, r: number) {
    return this.model.predict(schedule, k, r, this.rates);
  }
}

/** auto's choice with perfect knowledge of the costs: the option with the most tokens per second. */
export function bestOption(
  costs: KnownCosts,
  kMax: number,
  sizes: PassSize,
  canOverlap: boolean,
): { schedule: StepSchedule; k: number } {
  let best: { schedule: StepSchedule; k: number; rate: number } | undefined;
  for (let k = 0; k <= kMax; k++) {
    for (const schedule of SCHEDULES) {
      if (schedule === "overlapped" && (k === 0 || !canOverlap)) continue;
      const rate = costs.option(schedule, k, sizes[schedule])!.tokensPerSecond;
      if (!best || rate > best.rate) best = { schedule, k, rate };
    }
  }
  return best!;
}

/** The engine's side of AutoPolicy that the simulation drives (any build's AutoPolicy fits). */
export type SimPolicy = Pick<AutoPolicy, "choose" | "recordVerify" | "recordDraft" | "recordOverhead" | "settleProbe">;

/**
 * Who chooses auto's schedule and k each step (none: the best option with exact knowledge of the costs):
 *  - replay: the measured shares of auto's choices;
 *  - policy: the engine's own AutoPolicy (any build's), which sees only what the steps cost, as in
 *    the engine: each call's time is jittered by up to +-jitter (uniform), each request's accepted
 *    drafts are sampled from the acceptance rates with `rng`.
 */
export type Driver =
  | { replay: { decisions: { schedule: StepSchedule; k: number; share: number }[]; done: Map<string, number> } }
  | { policy: SimPolicy; rng: () => number; jitter: number };

export interface SimResult {
  mode: string;
  tokensPerSecond: number;
  wallMs: number;
  steps: number;
  generated: number;
  /** steps per choice: `sequential/k`, `overlapped/k`, fill, drain, sequential-at-split */
  choices: Record<string, number>;
}

interface SimRequest extends PipelineMember {
  left: number;
  batch: Batch;
  /** drafts held (k), null: none */
  drafts: number | null;
  slot: number;
}

/** Tokens of a verification pass over requests holding these drafts. */
const passTokens = (ks: readonly number[]) => ks.reduce((n, k) => n + k + 1, 0);

/** Step-level simulation of one mode over a workload (see Driver for auto). */
export function simulate(mode: Mode, workload: SimWorkload, costs: SimCosts, driver?: Driver): SimResult {
  const { batchSize: m, k: kMax } = workload;
  const paired = mode === "psd" || mode === "auto";
  const capacity = paired ? 2 * m : m;
  const known = new KnownCosts(costs, kMax, m);
  const slots = new SlotPool(capacity);
  const queue: SimRequest[] = workload.maxTokens.map((max) => ({ left: max, batch: 0, drafts: null, slot: -1 }));
  const running: SimRequest[] = [];
  let t = 0;
  let generated = 0;
  let steps = 0;
  const choices = new Map<string, number>();
  const count = (key: string) => choices.set(key, (choices.get(key) ?? 0) + 1);
  const prefillMs = costs.prefill?.[mode] ?? costs.prefill?.default ?? 0;
  const own = driver && "policy" in driver ? driver : undefined;
  const noisy = (ms: number) => (own?.jitter ? ms * (1 + own.jitter * (2 * own.rng() - 1)) : ms);
  /** Advances a request by a verification of k drafts; returns its outcome (sampled under a policy). */
  const gain = (req: SimRequest, k: number) => {
    let g = known.expectedTokens(k);
    let accepted = g - 1;
    if (own) {
      const alpha = costs.acceptance;
      accepted = 0;
      while (accepted < k && alpha.length > 0 && own.rng() < alpha[Math.min(accepted, alpha.length - 1)]!) accepted++;
      g = accepted + 1;
    }
    g = Math.min(req.left, g);
    req.left -= g;
    generated += g;
    return { k, accepted };
  };
  /** Verifies requests (drafts held, or a plain token) in `ms`: the timing as the engine reports it. */
  const verify = (ms: number, reqs: readonly SimRequest[]): CallTiming => {
    const ks = reqs.map((q) => q.drafts ?? 0);
    const outcomes = reqs.map((q, i) => gain(q, ks[i]!));
    for (const q of reqs) q.drafts = null;
    return { ms, requests: reqs.length, tokens: passTokens(ks), k: Math.max(0, ...ks), outcomes };
  };
  const draft = (ms: number, reqs: readonly SimRequest[], k: number): CallTiming => {
    for (const q of reqs) q.drafts = k;
    return { ms, requests: reqs.length, tokens: k, k };
  };
  while (queue.length > 0 || running.length > 0) {
    // admission, as the engine's: into the sub-batch drafted next, a slot from the top for
    // sub-batch 1 (auto's sequential schedule, which takes the lowest and compacts, is not
    // modelled), the prefills one after another
    let admitted = 0;
    while (queue.length > 0 && running.length < capacity) {
      const r = queue.shift()!;
      running.push(r);
      if (paired) admitToDraftBatch(r, running);
      r.slot = slots.take(r.batch === 1);
      admitted++;
    }
    t += admitted * prefillMs;
    steps++;
    if (mode === "ar" || mode === "sd") {
      const k = mode === "ar" ? 0 : kMax;
      t += known.option("sequential", k, running.length)!.stepMs;
      for (const r of running) gain(r, k);
      count(`sequential/${k}`);
    } else if (mode === "psd") {
      const plan = planStep(running, "draft-alone");
      const overhead = known.overheadMs("overlapped");
      if (plan.kind === "fill") {
        const d = known.draftMs("overlapped", kMax, plan.draft.length);
        t += d + overhead;
        draft(d, plan.draft, kMax);
        count("fill");
      } else if (plan.kind === "single") {
        // one request: sequential SD at the split placement
        t += known.option("overlapped", kMax, running.length)!.stepMs;
        for (const q of running) gain(q, kMax);
        count("sequential-at-split");
      } else if (plan.kind === "drain") {
        const v = known.verifyMs("overlapped", passTokens(plan.verify.map((q) => q.drafts!)));
        t += v + overhead;
        verify(v, plan.verify);
        count("drain");
      } else {
        const v = known.verifyMs("overlapped", passTokens(plan.verify.map((q) => q.drafts!)));
        const d = known.draftMs("overlapped", kMax, plan.draft.length);
        t += Math.max(v, d) + overhead;
        verify(v, plan.verify);
        draft(d, plan.draft, kMax);
        count(`overlapped/${kMax}`);
      }
    } else {
      // auto, as the engine runs it: an overlapped step on the pipeline (entering: a fill verifies
      // one sub-batch plainly while drafting the other); otherwise one pass over every running
      // request: a drain when drafts are held (leaving the overlap), else a sequential step
      const drafted = running.some((q) => q.drafts !== null);
      const sizes: PassSize = { sequential: running.length, overlapped: Math.max(1, running.length / 2) };
      const overlapNow = running.length >= 2 && costs.canOverlap !== false;
      const best: Pick<AutoDecision, "schedule" | "k"> =
        driver && "replay" in driver
          ? replayed(driver.replay, steps, overlapNow)
          : own
            ? own.policy.choose(sizes, overlapNow)
            : bestOption(known, kMax, sizes, overlapNow);
      let overlapped = false;
      if (best.schedule === "overlapped" && best.k > 0) {
        const plan = planStep(running, "verify-plain");
        if (plan.kind === "overlap") {
          overlapped = true;
          const v = noisy(known.verifyMs("overlapped", passTokens(plan.verify.map((q) => q.drafts ?? 0))));
          const d = noisy(known.draftMs("overlapped", best.k, plan.draft.length));
          t += Math.max(v, d) + known.overheadMs("overlapped");
          const tv = verify(v, plan.verify);
          const td = draft(d, plan.draft, best.k);
          own?.policy.recordVerify("overlapped", tv);
          own?.policy.recordDraft("overlapped", td);
          own?.policy.recordOverhead("overlapped", known.overheadMs("overlapped"));
          count(plan.fill ? "fill" : `overlapped/${best.k}`);
        }
      }
      if (!overlapped && drafted) {
        const v = noisy(known.verifyMs("sequential", passTokens(running.map((q) => q.drafts ?? 0))));
        t += v + known.overheadMs("sequential");
        const tv = verify(v, running);
        own?.policy.recordVerify("sequential", tv);
        count("drain");
      } else if (!overlapped) {
        const v = noisy(known.verifyMs("sequential", running.length * (best.k + 1)));
        const d = best.k > 0 ? noisy(known.draftMs("sequential", best.k, running.length)) : 0;
        t += v + d + known.overheadMs("sequential");
        const td = draft(d, running, best.k);
        const tv = verify(v, running);
        if (best.k > 0) own?.policy.recordDraft("sequential", td);
        own?.policy.recordVerify("sequential", tv);
        own?.policy.recordOverhead("sequential", known.overheadMs("sequential"));
        own?.policy.settleProbe(
          v + d + known.overheadMs("sequential"),
          (tv.outcomes ?? []).reduce((n, o) => n + o.accepted + 1, 0),
        );
        count(`sequential/${best.k}`);
      }
    }
    for (let i = running.length - 1; i >= 0; i--) {
      if (running[i]!.left > 1e-9) continue;
      slots.release(running[i]!.slot);
      running.splice(i, 1);
    }
    if (steps > 1e7) throw new Error("simulation does not terminate");
  }
  return {
    mode,
    tokensPerSecond: t > 0 ? (1000 * generated) / t : 0,
    wallMs: t,
    steps,
    generated,
    choices: Object.fromEntries(choices),
  };
}

/** mulberry32: a small seeded PRNG, so a seed gives the same run on every machine. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PolicyResult {
  mode: "auto (policy)";
  /** mean over the seeds, then their lowest and highest */
  tokensPerSecond: number;
  min: number;
  max: number;
  runs: number;
  jitter: number;
  /** steps per seed */
  steps: number;
  /** steps per choice, over all seeds */
  choices: Record<string, number>;
}

/**
 * auto under its own policy, as a bench runs it: per seed, one engine (one policy, from
 * `makePolicy()`) runs a warm-up of the workload's requests at `warmupTokens` tokens each (its
 * calibration mostly happens there), then `repeat` measured runs. Returns the mean throughput of
 * the measured runs over `runs` seeds, the range over seeds, and the pooled choices.
 */
export function simulatePolicy(
  workload: SimWorkload,
  costs: SimCosts,
  makePolicy: () => SimPolicy,
  { runs = 8, jitter = 0.1 } = {},
): PolicyResult {
  const warmupTokens = workload.warmupTokens ?? 0;
  const repeat = workload.repeat ?? 1;
  const tps: number[] = [];
  const choices: Record<string, number> = {};
  let steps = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const driver: Driver = { policy: makePolicy(), rng: seeded(seed), jitter };
    if (warmupTokens > 0)
      simulate(
        "auto",
        { ...workload, maxTokens: workload.maxTokens.map((t) => Math.min(t, warmupTokens)) },
        costs,
        driver,
      );
    let generated = 0;
    let ms = 0;
    for (let run = 0; run < repeat; run++) {
      const r = simulate("auto", workload, costs, driver);
      generated += r.generated;
      ms += r.wallMs;
      steps += r.steps;
      for (const [key, n] of Object.entries(r.choices)) choices[key] = (choices[key] ?? 0) + n;
    }
    tps.push(ms > 0 ? (1000 * generated) / ms : 0);
  }
  return {
    mode: "auto (policy)",
    tokensPerSecond: tps.reduce((a, b) => a + b, 0) / tps.length,
    min: Math.min(...tps),
    max: Math.max(...tps),
    runs,
    jitter,
    steps: steps / runs,
    choices,
  };
}

/** The choice whose share of the steps so far is furthest below its measured share. */
function replayed(
  replay: Extract<Driver, { replay: unknown }>["replay"],
  step: number,
  canOverlap: boolean,
): { schedule: StepSchedule; k: number } {
  let best: { schedule: StepSchedule; k: number } | undefined;
  let bestDeficit = -Infinity;
  for (const d of replay.decisions) {
    if (d.schedule === "overlapped" && !canOverlap) continue;
    const key = `${d.schedule}/${d.k}`;
    const deficit = d.share * step - (replay.done.get(key) ?? 0);
    if (deficit > bestDeficit) {
      bestDeficit = deficit;
      best = d;
    }
  }
  best ??= { schedule: "sequential", k: 0 };
  const key = `${best.schedule}/${best.k}`;
  replay.done.set(key, (replay.done.get(key) ?? 0) + 1);
  return { schedule: best.schedule, k: best.k };
}

/** What overlapping could gain over sd at most, at the sequential placement's costs: (T_draft + T_verify) / max. */
export function psdBound(workload: SimWorkload, costs: SimCosts): number {
  const known = new KnownCosts(costs, workload.k, workload.batchSize);
  const r = workload.batchSize;
  const v = known.verifyMs("sequential", r * (workload.k + 1));
  const d = known.draftMs("sequential", workload.k, r);
  return (v + d) / Math.max(v, d);
}
