// What the step-level simulator (simulator.ts) runs on: costs, fitted from a bench's measured runs
// or assumed (PRESETS), and a workload. The costs are lines in ms, as docs/performance.md writes them:
//
//   T_verify(n)    = a + b·n         a verification pass of n tokens (n = sum of k_i + 1); a size
//                                    measured often uses its own mean (`points`)
//   T_draft(k, m)  = a + b·k         a draft call of k autoregressive steps over m requests (a:
//                                    feeding the pending tokens, call overhead); the engine's cost
//                                    model scales it to r requests
//
// each at both thread placements ("sequential": phases take turns, each on all cores;
// "overlapped": both at once, cores split), plus a per-step overhead and conditional acceptance.
import type { Mode, StepSchedule } from "../engine/types.js";
import type { BenchReport, DraftCost, ModeResult, VerifyCost } from "./types.js";

/** ms = a + b·x, and the mean ms of sizes x measured at least 3 times (used as is for them). */
export interface CostLine {
  a: number;
  b: number;
  points?: Record<number, number>;
}

export interface SimCosts {
  /** m: the requests a draft line is for (default: the workload's batch size) */
  batchSize?: number;
  /** x = tokens in the pass */
  verify: Record<StepSchedule, CostLine>;
  /** x = autoregressive steps of the call, at `batchSize` requests */
  draft: Record<StepSchedule, CostLine>;
  /** ms per step besides the model work */
  overhead?: Partial<Record<StepSchedule, number>>;
  /** conditional acceptance per draft position (the last one extends to longer drafts) */
  acceptance: number[];
  /** admission prefill ms per request, per mode (`default`: any mode not listed) */
  prefill?: Partial<Record<Mode | "default", number>>;
  /** false: auto never overlaps (one device that cannot run both workers at once) */
  canOverlap?: boolean;
}

export interface SimWorkload {
  /** m (psd and auto hold 2m requests) */
  batchSize: number;
  /** k (auto's largest) */
  k: number;
  /** per request, in arrival order: the tokens it generates */
  maxTokens: number[];
  /** auto (policy): tokens per request of the warm-up run before the measured ones (0: none) */
  warmupTokens?: number;
  /** auto (policy): measured runs per seed */
  repeat?: number;
}

// ---------------------------------------------------------------------------------------------
// fitting costs from a bench JSON (files written before a field existed lack it: hence the
// fallbacks below)

interface Point {
  x: number;
  y: number;
  w: number;
}

/** Weighted least squares through (x, y, w) points; with one x, the prior shape (offset + x). */
function fitLine(
  points: readonly Point[],
  priorOffset: number,
  shape?: { a: number; b: number },
): { a: number; b: number } | undefined {
  const pts = points.filter((p) => p.w > 0 && Number.isFinite(p.y));
  if (pts.length === 0) return undefined;
  const w = pts.reduce((s, p) => s + p.w, 0);
  const mx = pts.reduce((s, p) => s + p.w * p.x, 0) / w;
  const my = pts.reduce((s, p) => s + p.w * p.y, 0) / w;
  const vx = pts.reduce((s, p) => s + p.w * (p.x - mx) ** 2, 0) / w;
  if (vx > 0.25) {
    let b = pts.reduce((s, p) => s + p.w * (p.x - mx) * (p.y - my), 0) / w / vx;
    b = Math.max(0, b);
    const a = Math.max(0, my - b * mx);
    return { a, b };
  }
  // one size: keep the shape of `shape` (another placement's line) or the prior, scaled to it
  const s = shape ?? { a: priorOffset, b: 1 };
  const at = s.a + s.b * mx;
  const scale = at > 0 ? my / at : 0;
  return { a: s.a * scale, b: s.b * scale };
}

const byMode = (bench: BenchReport, mode: string): ModeResult | undefined => bench.modes.find((m) => m.mode === mode);

/** The line, plus the mean of every size measured at least 3 times (used as is for that size). */
function withPoints(line: { a: number; b: number } | undefined, points: readonly Point[]): CostLine {
  const own: Record<number, number> = {};
  for (const p of points) if (p.w >= 3) own[p.x] = p.y;
  return { ...line, points: own } as CostLine;
}

function verifyPoints(cost: VerifyCost | undefined): Point[] {
  return (cost?.bySize ?? []).map((p) => ({ x: p.tokens, y: p.meanMs, w: p.calls }));
}

function meanVector(rows: readonly number[][]): number[] {
  const n = Math.max(0, ...rows.map((r) => r.length));
  return Array.from({ length: n }, (_, i) => {
    const xs = rows.map((r) => r[i]).filter((x): x is number => x !== undefined);
    return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  });
}

/**
 * Costs from the bench's fixed modes (ar, sd, psd); of auto's runs only the admission prefill time (the rest is left
 * for validation).
 */
export function fitCosts(bench: BenchReport): SimCosts & { batchSize: number } {
  const ar = byMode(bench, "ar");
  const sd = byMode(bench, "sd");
  const psd = byMode(bench, "psd");
  if (!sd || !psd) throw new Error("the bench needs sd and psd runs (ar helps: it measures plain decoding)");
  for (const m of [ar, sd, psd])
    if (m && !m.phases) throw new Error(`bench mode ${m.mode} has no phases: rerun the bench with this version`);
  const m = bench.options.batchSize;
  const seqPoints = [...verifyPoints(ar?.phases.verify.alone), ...verifyPoints(sd.phases.verify.alone)];
  const verifySeq = withPoints(fitLine(seqPoints, 3), seqPoints);
  const ovlPoints = verifyPoints(psd.phases.verify.overlapped);
  const verifyOvl = withPoints(fitLine(ovlPoints, 3, verifySeq), ovlPoints);
  // draft calls: mean ms at mean steps, scaled to m requests; one length: the prior shape (0.3 + k)
  const draftLine = (cost: DraftCost, shape?: { a: number; b: number }) =>
    fitLine([{ x: cost.meanSteps, y: (cost.meanMs * (4 + m)) / (4 + cost.meanRequests), w: cost.calls }], 0.3, shape);
  const draftSeq = draftLine(sd.phases.draft.alone);
  const draftOvl = draftLine(psd.phases.draft.overlapped, draftSeq);
  // conditional acceptance from sd's unconditional per-position rates
  const perPos = meanVector(sd.runs.map((r) => r.stats.perPositionAcceptance));
  const alpha = perPos.map((p, i) => (i === 0 ? p : perPos[i - 1]! > 0 ? p / perPos[i - 1]! : 0));
  const perStepIdle = (m: ModeResult | undefined) =>
    m && m.phases.steps > 0 ? (m.summary.idleFraction * m.phases.wallMs) / m.phases.steps : 0;
  // prefill time per request: the time either worker was prefilling (wallMs: psd's two workers
  // prefill at once, the target's part the longer; sd's take turns). Benches written before
  // wallMs existed have only the sum over both workers: half of it for psd, all of it otherwise.
  const prefillPerRequest = (m: ModeResult | undefined, concurrent: boolean) => {
    if (!m) return 0;
    const p = m.phases.prefill;
    const wall = p.wallMs ?? (concurrent ? p.totalMs / 2 : p.totalMs);
    return (
      wall /
      Math.max(
        1,
        m.runs.reduce((n, r) => n + r.stats.requests, 0),
      )
    );
  };
  // auto admits under whichever placement runs at the time (on a CPU the sequential one: the two
  // prefills take turns; with both models on a GPU at once): its own runs measure that, when the
  // bench has them; otherwise sd's
  const auto = byMode(bench, "auto");
  const prefill = {
    ar: prefillPerRequest(ar, false),
    sd: prefillPerRequest(sd, false),
    psd: prefillPerRequest(psd, true),
    auto: auto?.phases ? prefillPerRequest(auto, false) : prefillPerRequest(sd, false),
  };
  return {
    batchSize: m,
    verify: { sequential: verifySeq, overlapped: verifyOvl },
    draft: { sequential: draftSeq!, overlapped: draftOvl! },
    overhead: { sequential: perStepIdle(sd), overlapped: perStepIdle(psd) },
    acceptance: alpha,
    prefill,
    canOverlap: true,
  };
}

/** The bench's workload, in its order: a warm-up over the prompts, then the measured runs. */
export function workloadOf(bench: BenchReport): SimWorkload {
  const anyMode = bench.modes[0]!;
  const maxTokens = anyMode.runs[0]!.requests.map((r) => r.generatedTokens);
  return {
    batchSize: bench.options.batchSize,
    k: bench.options.draftTokens,
    maxTokens,
    warmupTokens: bench.options.warmupMaxTokens ?? 0,
    repeat: bench.options.repeat ?? 1,
  };
}

// ---------------------------------------------------------------------------------------------
// projections: assumed timings, clearly not measurements

export interface Preset {
  description: string;
  costs: SimCosts;
  workload: { batchSize: number; k: number; requests: number; maxTokens: number };
}

export const PRESETS: Record<string, Preset> = {
  "paper-qwen3-32b-1.7b": {
    description:
      "PROJECTION, assumed timings: Qwen3-32B target (bf16, tensor-parallel on 4 H100) + Qwen3-1.7B draft on a " +
      "dedicated 5th GPU, as in the MineDraft paper. Verify pass ~ 9 ms + 0.02 ms/token (weights read once per " +
      "pass, all-reduce); a draft call for 16 requests ~ 0.5 ms + 1.95 ms per step; separate devices, so " +
      "overlapping costs nothing extra. Acceptance 0.85, 0.8, 0.75, 0.7, 0.65 per position (conditional).",
    costs: {
      verify: { sequential: { a: 9, b: 0.02 }, overlapped: { a: 9, b: 0.02 } },
      draft: { sequential: { a: 0.5, b: 1.95 }, overlapped: { a: 0.5, b: 1.95 } },
      overhead: { sequential: 0.3, overlapped: 0.4 },
      acceptance: [0.85, 0.8, 0.75, 0.7, 0.65],
      prefill: { default: 0 },
    },
    workload: { batchSize: 16, k: 4, requests: 256, maxTokens: 256 },
  },
  "paper-qwen3-32b-0.6b": {
    description:
      "PROJECTION, assumed timings: as paper-qwen3-32b-1.7b with the cheaper Qwen3-0.6B draft: draft call for " +
      "16 requests ~ 0.4 ms + 1.35 ms per step, acceptance 0.8, 0.72, 0.65, 0.6, 0.55.",
    costs: {
      verify: { sequential: { a: 9, b: 0.02 }, overlapped: { a: 9, b: 0.02 } },
      draft: { sequential: { a: 0.4, b: 1.35 }, overlapped: { a: 0.4, b: 1.35 } },
      overhead: { sequential: 0.3, overlapped: 0.4 },
      acceptance: [0.8, 0.72, 0.65, 0.6, 0.55],
      prefill: { default: 0 },
    },
    workload: { batchSize: 16, k: 4, requests: 256, maxTokens: 256 },
  },
  "gpu-target-cpu-draft": {
    description:
      "PROJECTION, assumed timings: an 8B target on one GPU (verify ~ 14 ms + 0.05 ms/token) and a 0.5B draft on " +
      "16 CPU cores (a draft call for 8 requests ~ 2 ms + 10 ms per step); the CPU cores are the draft's alone in " +
      "both schedules. Acceptance 0.75 per position.",
    costs: {
      verify: { sequential: { a: 14, b: 0.05 }, overlapped: { a: 14, b: 0.05 } },
      draft: { sequential: { a: 2, b: 10 }, overlapped: { a: 2, b: 10 } },
      overhead: { sequential: 0.3, overlapped: 0.4 },
      acceptance: [0.75],
      prefill: { default: 0 },
    },
    workload: { batchSize: 8, k: 4, requests: 128, maxTokens: 256 },
  },
  "one-gpu-shared": {
    description:
      "PROJECTION, assumed timings: target and draft on the SAME GPU: overlapping makes both ~1.6x slower (shared " +
      "SMs and memory bandwidth). Verify ~ 14 ms + 0.05 ms/token alone, a draft call for 16 requests ~ 0.4 ms + " +
      "1.35 ms per step alone; acceptance 0.75.",
    costs: {
      verify: { sequential: { a: 14, b: 0.05 }, overlapped: { a: 22.4, b: 0.08 } },
      draft: { sequential: { a: 0.4, b: 1.35 }, overlapped: { a: 0.65, b: 2.15 } },
      overhead: { sequential: 0.3, overlapped: 0.4 },
      acceptance: [0.75],
      prefill: { default: 0 },
    },
    workload: { batchSize: 16, k: 4, requests: 256, maxTokens: 256 },
  },
};
