#!/usr/bin/env node
// Predicts the throughput of ar / sd / psd / auto from measured costs, with the cost model of
// docs/performance.md:
//
//   T_verify(n)    = a + b·n         ms for one verification pass of n tokens (n = sum of k_i + 1);
//                                    a size measured directly uses its own mean
//   T_draft(k, r)  = (c + d·k)·(4 + r)/(4 + m)   ms for a draft call of k autoregressive steps over
//                                    r requests (c: feeding the pending tokens, call overhead)
//   E(k)           = 1 + sum_{j=1..k} prod_{i<j} alpha_i   tokens a request gains per verification
//   sd:   step = T_draft + T_verify + o          psd: step = max(T_draft, T_verify) + o
//
// each with the costs of its own thread placement ("sequential": phases take turns, each on all
// cores; "overlapped": both at once, cores split), and runs the workload through a step-level
// simulation (admission prefills, two sub-batches for psd/auto, the tail where batches empty).
//
//   node scripts/simulate.mjs --bench docs/bench/X.json [--json out.json]
//       fit the costs from the bench's ar / sd / psd runs, predict every mode, and compare with what
//       the bench measured. "auto" is auto with exact knowledge of the costs (what it could reach);
//       "auto (replay)" runs the mix of choices auto actually made (checks the cost model on them);
//       "auto (policy)" runs the engine's own AutoPolicy, which sees only what each step cost
//       (needs a build; [--policy-dist DIR] another build's, [--policy-runs N] seeds, default 8,
//       0 = off; [--jitter S] call times vary by up to +-S, default 0.1; [--probe-budget B] the
//       policy's probeBudget)
//   node scripts/simulate.mjs --preset NAME [--batch M] [-k K] [--requests N] [--max-tokens T]
//       a projection from assumed timings (see PRESETS); --list-presets shows them
//   node scripts/simulate.mjs --verify-seq A,B [--verify-ovl A,B] --draft-seq C,D [--draft-ovl C,D]
//       --accept a0,a1,... [--overhead-seq MS] [--overhead-ovl MS] [--prefill MS] --batch M -k K ...
//       the same from numbers given on the command line
//
// No dependencies (auto (policy) loads the built engine; the seeded PRNG of gguf-fuzz-lib.mjs); O(steps) per mode.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { rng } from "../test/support/gguf.mjs";

// ---------------------------------------------------------------------------------------------
// the model

/** E(k) from conditional acceptance rates (extended with the last one beyond what was measured). */
export function expectedTokens(k, alpha) {
  let total = 1;
  let p = 1;
  for (let j = 0; j < k; j++) {
    const a = alpha.length === 0 ? 0 : alpha[Math.min(j, alpha.length - 1)];
    p *= a;
    total += p;
  }
  return total;
}

const verifyMs = (costs, schedule, n) => {
  const v = costs.verify[schedule];
  return v.points?.[n] ?? v.a + v.b * n;
};
const draftMs = (costs, schedule, k, r) =>
  k === 0 ? 0 : ((costs.draft[schedule].a + costs.draft[schedule].b * k) * (4 + r)) / (4 + costs.batchSize);

/** Step time of an option for r requests per pass. */
export function stepMs(costs, schedule, k, r) {
  const v = verifyMs(costs, schedule, r * (k + 1));
  const d = draftMs(costs, schedule, k, r);
  return (schedule === "overlapped" ? Math.max(v, d) : v + d) + (costs.overhead?.[schedule] ?? 0);
}

/** auto's choice with perfect knowledge of the costs: the option with the most tokens per ms. */
export function bestOption(costs, kMax, sizes, canOverlap) {
  let best;
  for (let k = 0; k <= kMax; k++) {
    for (const schedule of ["sequential", "overlapped"]) {
      if (schedule === "overlapped" && (k === 0 || !canOverlap)) continue;
      const r = sizes[schedule];
      const rate = (r * expectedTokens(k, costs.acceptance)) / stepMs(costs, schedule, k, r);
      if (!best || rate > best.rate) best = { schedule, k, rate };
    }
  }
  return best;
}

/**
 * Step-level simulation of one mode over a workload. Requests advance by E(k) tokens per
 * verification (expected values: no sampling noise), except under a `policy` driver.
 *
 * `driver` (auto only) says who chooses each step's schedule and k:
 *   - none: the best option with exact knowledge of the costs;
 *   - { replay }: the measured shares of auto's choices;
 *   - { policy, rng, jitter }: the engine's own AutoPolicy (any build's), which sees only what the
 *     steps cost, as in the engine: each call's time is jittered by up to +-jitter (uniform), each
 *     request's accepted drafts are sampled from the acceptance rates with `rng`.
 */
export function simulate(mode, workload, costs, driver) {
  const { batchSize: m, k: kMax } = workload;
  const paired = mode === "psd" || mode === "auto";
  const capacity = paired ? 2 * m : m;
  const queue = workload.maxTokens.map((max, id) => ({ id, left: max, max, batch: 0, drafted: false }));
  const running = [];
  let t = 0;
  let generated = 0;
  let steps = 0;
  const choices = new Map();
  const count = (key) => choices.set(key, (choices.get(key) ?? 0) + 1);
  const prefillMs = costs.prefill?.[mode] ?? costs.prefill?.default ?? 0;
  const policy = driver?.policy;
  const noisy = (ms) => (policy && driver.jitter ? ms * (1 + driver.jitter * (2 * driver.rng() - 1)) : ms);
  /** Advances a request by a verification of k drafts; returns its outcome (sampled under a policy). */
  const gain = (req, k) => {
    let g = expectedTokens(k, costs.acceptance);
    let accepted = g - 1;
    if (policy) {
      const alpha = costs.acceptance;
      accepted = 0;
      while (accepted < k && alpha.length > 0 && driver.rng() < alpha[Math.min(accepted, alpha.length - 1)]) accepted++;
      g = accepted + 1;
    }
    g = Math.min(req.left, g);
    req.left -= g;
    generated += g;
    return { k, accepted };
  };
  /** A verification's timing as the engine reports it to the policy. */
  const verified = (ms, reqs, ks) => {
    const outcomes = reqs.map((q, i) => gain(q, ks[i]));
    return { ms, requests: reqs.length, tokens: ks.reduce((n, k) => n + k + 1, 0), k: Math.max(0, ...ks), outcomes };
  };
  while (queue.length > 0 || running.length > 0) {
    // admission: new requests join the batch drafted next (psd), prefills one after another
    let admitted = 0;
    while (queue.length > 0 && running.length < capacity) {
      const r = queue.shift();
      const sizes = [0, 1].map((b) => running.filter((q) => q.batch === b).length);
      const holder = running.find((q) => q.drafted);
      r.batch = holder ? 1 - holder.batch : sizes[0] <= sizes[1] ? 0 : 1;
      running.push(r);
      admitted++;
    }
    t += admitted * prefillMs;
    steps++;
    if (mode === "ar" || mode === "sd") {
      const k = mode === "ar" ? 0 : kMax;
      t += stepMs(costs, "sequential", k, running.length);
      for (const r of running) gain(r, k);
      count(`sequential/${k}`);
    } else if (mode === "psd") {
      const drafted = running.filter((q) => q.drafted);
      if (drafted.length === 0) {
        if (running.length >= 2) {
          // fill: draft one sub-batch alone
          rebalance(running);
          const b0 = running.filter((q) => q.batch === 0);
          t += draftMs(costs, "overlapped", kMax, b0.length) + (costs.overhead?.overlapped ?? 0);
          for (const q of b0) q.drafted = true;
          count("fill");
        } else {
          // a single request: sequential SD at the split placement
          t += stepMs(costs, "overlapped", kMax, running.length);
          for (const q of running) gain(q, kMax);
          count("sequential-at-split");
        }
      } else {
        const vb = drafted[0].batch;
        const toDraft = running.filter((q) => q.batch !== vb);
        const v = verifyMs(costs, "overlapped", drafted.length * (kMax + 1));
        const d = draftMs(costs, "overlapped", kMax, toDraft.length);
        t += Math.max(v, d) + (costs.overhead?.overlapped ?? 0);
        for (const q of drafted) {
          gain(q, kMax);
          q.drafted = false;
        }
        for (const q of toDraft) q.drafted = true;
        count(`overlapped/${kMax}`);
      }
    } else {
      // auto, as the engine runs it: entering overlapped, a fill verifies one sub-batch plainly
      // while drafting the other; leaving it, a drain verifies the drafted sub-batch and every
      // other request (plain) in one pass; sequential steps take every running request
      const drafted = running.filter((q) => q.drafted);
      const sizes = { sequential: running.length, overlapped: Math.max(1, running.length / 2) };
      const overlapNow = running.length >= 2 && costs.canOverlap !== false;
      const best = driver?.replay
        ? replayed(driver.replay, steps, overlapNow)
        : policy
          ? policy.choose(sizes, overlapNow)
          : bestOption(costs, kMax, sizes, overlapNow);
      const overhead = (schedule) => costs.overhead?.[schedule] ?? 0;
      let overlapped = false;
      if (best.schedule === "overlapped" && best.k > 0) {
        const fill = drafted.length === 0;
        if (fill) rebalance(running);
        const vb = fill ? 1 : drafted[0].batch;
        const toVerify = running.filter((q) => q.batch === vb);
        const toDraft = running.filter((q) => q.batch !== vb);
        if (toVerify.length > 0 && toDraft.length > 0) {
          overlapped = true;
          const ks = toVerify.map((q) => (q.drafted ? q.draftK : 0));
          const v = noisy(verifyMs(costs, "overlapped", ks.reduce((n, k) => n + k + 1, 0)));
          const d = noisy(draftMs(costs, "overlapped", best.k, toDraft.length));
          t += Math.max(v, d) + overhead("overlapped");
          const tv = verified(v, toVerify, ks);
          for (const q of toVerify) q.drafted = false;
          for (const q of toDraft) {
            q.drafted = true;
            q.draftK = best.k;
          }
          policy?.recordVerify("overlapped", tv);
          policy?.recordDraft("overlapped", { ms: d, requests: toDraft.length, tokens: best.k, k: best.k });
          policy?.recordOverhead("overlapped", overhead("overlapped"));
          count(fill ? "fill" : `overlapped/${best.k}`);
        }
      }
      if (!overlapped && drafted.length > 0) {
        const ks = running.map((q) => (q.drafted ? q.draftK : 0));
        const v = noisy(verifyMs(costs, "sequential", ks.reduce((n, k) => n + k + 1, 0)));
        t += v + overhead("sequential");
        const tv = verified(v, running, ks);
        for (const q of running) q.drafted = false;
        policy?.recordVerify("sequential", tv);
        count("drain");
      } else if (!overlapped) {
        const v = noisy(verifyMs(costs, "sequential", running.length * (best.k + 1)));
        const d = best.k > 0 ? noisy(draftMs(costs, "sequential", best.k, running.length)) : 0;
        t += v + d + overhead("sequential");
        const tv = verified(v, running, running.map(() => best.k));
        if (best.k > 0) policy?.recordDraft("sequential", { ms: d, requests: running.length, tokens: best.k, k: best.k });
        policy?.recordVerify("sequential", tv);
        policy?.recordOverhead("sequential", overhead("sequential"));
        count(`sequential/${best.k}`);
      }
    }
    for (let i = running.length - 1; i >= 0; i--) if (running[i].left <= 1e-9) running.splice(i, 1);
    if (steps > 1e7) throw new Error("simulation does not terminate");
  }
  return { mode, tokensPerSecond: t > 0 ? (1000 * generated) / t : 0, wallMs: t, steps, generated, choices: Object.fromEntries(choices) };
}

/**
 * auto under its own policy, as a bench runs it: per seed, one engine (one policy, from
 * `makePolicy()`) runs a warm-up of the workload's requests at `warmupTokens` tokens each (its
 * calibration mostly happens there), then `repeat` measured runs. Returns the mean throughput of
 * the measured runs over `runs` seeds, the range over seeds, and the pooled choices.
 */
export function simulatePolicy(workload, costs, makePolicy, { runs = 8, jitter = 0.1 } = {}) {
  const warmupTokens = workload.warmupTokens ?? 0;
  const repeat = workload.repeat ?? 1;
  const tps = [];
  const choices = {};
  let steps = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const driver = { policy: makePolicy(), rng: rng(seed).next, jitter };
    if (warmupTokens > 0) simulate("auto", { ...workload, maxTokens: workload.maxTokens.map((t) => Math.min(t, warmupTokens)) }, costs, driver);
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
function replayed(replay, step, canOverlap) {
  let best;
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

function rebalance(running) {
  const sizes = [0, 0];
  for (const q of running) sizes[q.batch]++;
  for (let i = running.length - 1; i >= 0 && Math.abs(sizes[0] - sizes[1]) > 1; i--) {
    const q = running[i];
    if (q.drafted) continue;
    const from = sizes[0] > sizes[1] ? 0 : 1;
    if (q.batch !== from) continue;
    q.batch = 1 - from;
    sizes[from]--;
    sizes[1 - from]++;
  }
}

// ---------------------------------------------------------------------------------------------
// fitting costs from a bench JSON

/** Weighted least squares through (x, y, w) points; with one x, the prior shape (offset + x). */
function fitLine(points, priorOffset, shape) {
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

const byMode = (bench, mode) => bench.modes.find((m) => m.mode === mode);

/** The line, plus the mean of every size measured at least 3 times (used as is for that size). */
function withPoints(line, points) {
  const own = {};
  for (const p of points) if (p.w >= 3) own[p.x] = p.y;
  return { ...line, points: own };
}

function verifyPoints(cost) {
  return (cost?.bySize ?? []).map((p) => ({ x: p.tokens, y: p.meanMs, w: p.calls }));
}

/** Costs from the bench's fixed modes (ar, sd, psd); of auto's runs only the admission prefill time (the rest is left for validation). */
export function fitCosts(bench) {
  const ar = byMode(bench, "ar");
  const sd = byMode(bench, "sd");
  const psd = byMode(bench, "psd");
  if (!sd || !psd) throw new Error("the bench needs sd and psd runs (ar helps: it measures plain decoding)");
  for (const m of [ar, sd, psd]) if (m && !m.phases) throw new Error(`bench mode ${m.mode} has no phases: rerun the bench with this version`);
  const m = bench.options.batchSize;
  const seqPoints = [...verifyPoints(ar?.phases.verify.alone), ...verifyPoints(sd.phases.verify.alone)];
  const verifySeq = withPoints(fitLine(seqPoints, 3), seqPoints);
  const ovlPoints = verifyPoints(psd.phases.verify.overlapped);
  const verifyOvl = withPoints(fitLine(ovlPoints, 3, verifySeq), ovlPoints);
  // draft calls: mean ms at mean steps, scaled to m requests; one length: the prior shape (0.3 + k)
  const draftLine = (cost, shape) =>
    fitLine([{ x: cost.meanSteps, y: (cost.meanMs * (4 + m)) / (4 + cost.meanRequests), w: cost.calls }], 0.3, shape);
  const draftSeq = draftLine(sd.phases.draft.alone);
  const draftOvl = draftLine(psd.phases.draft.overlapped, draftSeq);
  // conditional acceptance from sd's unconditional per-position rates
  const perPos = meanVector(sd.runs.map((r) => r.stats.perPositionAcceptance));
  const alpha = perPos.map((p, i) => (i === 0 ? p : perPos[i - 1] > 0 ? p / perPos[i - 1] : 0));
  const perStepIdle = (m) => (m && m.phases.steps > 0 ? (m.summary.idleFraction * m.phases.wallMs) / m.phases.steps : 0);
  // prefill time per request: the time either worker was prefilling (wallMs: psd's two workers
  // prefill at once, the target's part the longer; sd's take turns). Benches written before
  // wallMs existed have only the sum over both workers: half of it for psd, all of it otherwise.
  const prefillPerRequest = (m, concurrent) => {
    if (!m) return 0;
    const p = m.phases.prefill;
    const wall = p.wallMs ?? (concurrent ? p.totalMs / 2 : p.totalMs);
    return wall / Math.max(1, m.runs.reduce((n, r) => n + r.stats.requests, 0));
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
    draft: { sequential: draftSeq, overlapped: draftOvl },
    overhead: { sequential: perStepIdle(sd), overlapped: perStepIdle(psd) },
    acceptance: alpha,
    prefill,
    canOverlap: true,
  };
}

function meanVector(rows) {
  const n = Math.max(0, ...rows.map((r) => r.length));
  return Array.from({ length: n }, (_, i) => {
    const xs = rows.map((r) => r[i]).filter((x) => x !== undefined);
    return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  });
}

export function workloadOf(bench) {
  const anyMode = bench.modes[0];
  const maxTokens = anyMode.runs[0].requests.map((r) => r.generatedTokens);
  // auto (policy) replays the bench's order too: a warm-up over the prompts, then the measured runs
  return { batchSize: bench.options.batchSize, k: bench.options.draftTokens, maxTokens, warmupTokens: bench.options.warmupMaxTokens ?? 0, repeat: bench.options.repeat ?? 1 };
}

// ---------------------------------------------------------------------------------------------
// projections: assumed timings, clearly not measurements

export const PRESETS = {
  "paper-qwen3-32b-1.7b": {
    description:
      "PROJECTION, assumed timings: Qwen3-32B target (bf16, tensor-parallel on 4 H100) + Qwen3-1.7B draft on a dedicated 5th GPU, as in the MineDraft paper. " +
      "Verify pass ~ 9 ms + 0.02 ms/token (weights read once per pass, all-reduce); a draft call for 16 requests ~ 0.5 ms + 1.95 ms per step; " +
      "separate devices, so overlapping costs nothing extra. Acceptance 0.85, 0.8, 0.75, 0.7, 0.65 per position (conditional).",
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
      "PROJECTION, assumed timings: as paper-qwen3-32b-1.7b with the cheaper Qwen3-0.6B draft: draft call for 16 requests ~ 0.4 ms + 1.35 ms per step, acceptance 0.8, 0.72, 0.65, 0.6, 0.55.",
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
      "PROJECTION, assumed timings: an 8B target on one GPU (verify ~ 14 ms + 0.05 ms/token) and a 0.5B draft on 16 CPU cores " +
      "(a draft call for 8 requests ~ 2 ms + 10 ms per step); the CPU cores are the draft's alone in both schedules. Acceptance 0.75 per position.",
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
      "PROJECTION, assumed timings: target and draft on the SAME GPU: overlapping makes both ~1.6x slower (shared SMs and memory bandwidth). " +
      "Verify ~ 14 ms + 0.05 ms/token alone, a draft call for 16 requests ~ 0.4 ms + 1.35 ms per step alone; acceptance 0.75.",
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

// ---------------------------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("-")) throw new Error(`unexpected argument ${a}`);
    const key = a.replace(/^--?/, "");
    if (["list-presets", "help", "h"].includes(key)) out[key] = true;
    else {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      out[key] = argv[++i];
    }
  }
  return out;
}

const nums = (s, name) => {
  const v = String(s).split(",").map(Number);
  if (v.some((x) => !Number.isFinite(x))) throw new Error(`--${name} must be comma-separated numbers, got ${s}`);
  return v;
};
const line = (s, name) => {
  const [a, b = 0] = nums(s, name);
  return { a, b };
};

function fmt(x, d = 1) {
  return Number.isFinite(x) ? x.toFixed(d) : "-";
}

function table(header, rows) {
  const w = header.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)));
  const l = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  return [l(header), w.map((x) => "-".repeat(x)).join("  "), ...rows.map(l)].join("\n");
}

function describeCosts(costs) {
  const l = (x, v = "n") => `${fmt(x.a, 2)} + ${fmt(x.b, 3)}·${v}`;
  const pts = (x) => {
    const e = Object.entries(x.points ?? {});
    return e.length > 0 ? ` (measured: ${e.map(([n, ms]) => `${n} tokens ${fmt(ms, 0)} ms`).join(", ")})` : "";
  };
  return [
    `T_verify(n tokens): sequential ${l(costs.verify.sequential)} ms${pts(costs.verify.sequential)}; overlapped ${l(costs.verify.overlapped)} ms${pts(costs.verify.overlapped)}`,
    `draft call of k steps for ${costs.batchSize} requests: sequential ${l(costs.draft.sequential, "k")} ms, overlapped ${l(costs.draft.overlapped, "k")} ms`,
    `overhead per step: sequential ${fmt(costs.overhead.sequential, 2)} ms, overlapped ${fmt(costs.overhead.overlapped, 2)} ms`,
    `acceptance (conditional, per position): ${costs.acceptance.map((a) => fmt(a, 2)).join(" ")}`,
  ].join("\n");
}

function summarizeChoices(choices) {
  const total = Object.values(choices).reduce((a, b) => a + b, 0);
  return Object.entries(choices)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, n]) => `${k} ${((100 * n) / total).toFixed(0)}%`)
    .join(", ");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || args.h) {
    process.stdout.write(readFileSync(new URL(import.meta.url)).toString().split("\n").slice(1, 30).map((s) => s.replace(/^\/\/ ?/, "")).join("\n") + "\n");
    return;
  }
  if (args["list-presets"]) {
    for (const [name, p] of Object.entries(PRESETS)) process.stdout.write(`${name}\n  ${p.description}\n`);
    return;
  }
  const modes = ["ar", "sd", "psd", "auto"];
  let costs;
  let workload;
  let measured;
  let title;
  let replayDecisions;
  if (args.bench) {
    const bench = JSON.parse(readFileSync(args.bench, "utf8"));
    costs = fitCosts(bench);
    workload = workloadOf(bench);
    measured = Object.fromEntries(bench.modes.map((m) => [m.mode, m.summary.tokensPerSecond]));
    const auto = byMode(bench, "auto");
    if (auto?.summary.auto) {
      replayDecisions = auto.summary.auto.decisions.map((d) => ({ schedule: d.schedule, k: d.k, share: d.share }));
      measured["auto (replay)"] = auto.summary.tokensPerSecond;
    }
    title = `fitted from ${args.bench} (${bench.machine.cpuModel}, ${bench.machine.availableParallelism} cores; ${bench.models.target.name} / ${bench.models.draft?.name})`;
  } else if (args.preset) {
    const p = PRESETS[args.preset];
    if (!p) throw new Error(`unknown preset ${args.preset}; --list-presets shows them`);
    costs = structuredClone(p.costs);
    costs.canOverlap = true;
    const w = p.workload;
    costs.batchSize = w.batchSize;
    workload = { batchSize: w.batchSize, k: w.k, maxTokens: Array.from({ length: w.requests }, () => w.maxTokens) };
    title = `preset ${args.preset}: ${p.description}`;
  } else {
    if (!args["verify-seq"] || !args["draft-seq"] || !args.accept) throw new Error("give --bench FILE, --preset NAME, or --verify-seq A,B --draft-seq C,D --accept a0,a1,... (see --help)");
    const vs = line(args["verify-seq"], "verify-seq");
    const ds = line(args["draft-seq"], "draft-seq");
    costs = {
      batchSize: Number(args.batch ?? 4),
      verify: { sequential: vs, overlapped: args["verify-ovl"] ? line(args["verify-ovl"], "verify-ovl") : vs },
      draft: { sequential: ds, overlapped: args["draft-ovl"] ? line(args["draft-ovl"], "draft-ovl") : ds },
      overhead: { sequential: Number(args["overhead-seq"] ?? 0), overlapped: Number(args["overhead-ovl"] ?? 0) },
      acceptance: nums(args.accept, "accept"),
      prefill: { default: Number(args.prefill ?? 0) },
      canOverlap: true,
    };
    workload = { batchSize: 4, k: 4, maxTokens: Array.from({ length: 12 }, () => 48) };
    title = "costs from the command line";
  }
  if (args.batch) workload.batchSize = nums(args.batch, "batch")[0];
  if (args.k) workload.k = nums(args.k, "k")[0];
  if (args.requests || args["max-tokens"]) {
    const n = args.requests ? nums(args.requests, "requests")[0] : workload.maxTokens.length;
    const t = args["max-tokens"] ? nums(args["max-tokens"], "max-tokens")[0] : workload.maxTokens[0];
    workload.maxTokens = Array.from({ length: n }, () => t);
  }

  const results = modes.map((mode) => simulate(mode, workload, costs));
  // psd and auto hold 2m requests: the fixed sequential modes with 2m per pass are their fair match
  if (!measured) {
    const wide = { ...workload, batchSize: 2 * workload.batchSize };
    for (const mode of ["ar", "sd"]) if (modes.includes(mode)) results.push({ ...simulate(mode, wide, costs), mode: `${mode} (2m)` });
  }
  if (replayDecisions) {
    const r = simulate("auto", workload, costs, { replay: { decisions: replayDecisions, done: new Map() } });
    results.push({ ...r, mode: "auto (replay)" });
  }
  costs.batchSize ??= workload.batchSize;
  const notes = [];
  const policyRuns = Number(args["policy-runs"] ?? 8);
  if (policyRuns > 0) {
    // the engine's own policy, from a build (dist/ by default; --policy-dist: another commit's)
    const dist = path.resolve(args["policy-dist"] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist"));
    const file = path.join(dist, "engine", "auto-scheduler.js");
    if (!existsSync(file)) throw new Error(`auto (policy) needs a build: ${file} is missing (npm run build, or --policy-runs 0)`);
    const { AutoPolicy } = await import(pathToFileURL(file).href);
    const jitter = Number(args.jitter ?? 0.1);
    if (!(jitter >= 0 && jitter < 1)) throw new Error(`--jitter must be in [0, 1), got ${args.jitter}`);
    const probeBudget = args["probe-budget"] === undefined ? undefined : Number(args["probe-budget"]);
    if (probeBudget !== undefined && !(probeBudget >= 0 && probeBudget < 1)) throw new Error(`--probe-budget must be in [0, 1), got ${args["probe-budget"]}`);
    const make = () => new AutoPolicy({ kMax: workload.k, batchSize: workload.batchSize, canOverlap: costs.canOverlap !== false, probeBudget });
    const r = simulatePolicy(workload, costs, make, { runs: policyRuns, jitter });
    results.push(r);
    if (measured?.auto !== undefined) measured["auto (policy)"] = measured.auto;
    const order = workload.warmupTokens > 0 ? `after a warm-up at ${workload.warmupTokens} tokens, ${workload.repeat ?? 1} measured run(s)` : `${workload.repeat ?? 1} run(s), no warm-up`;
    notes.push(`auto (policy): the AutoPolicy of ${path.relative(process.cwd(), dist) || "."}, ${order}, over ${r.runs} seeds; call times jittered by up to +-${fmt(100 * jitter, 0)}%, acceptance sampled: mean ${fmt(r.tokensPerSecond)} tok/s, range ${fmt(r.min)}-${fmt(r.max)}`);
  }
  const bound = (() => {
    const r = workload.batchSize;
    const v = verifyMs(costs, "sequential", r * (workload.k + 1));
    const d = draftMs(costs, "sequential", workload.k, r);
    return (v + d) / Math.max(v, d);
  })();
  const out = [];
  out.push(title, "", describeCosts(costs), "");
  out.push(`workload: ${workload.maxTokens.length} requests x ~${fmt(workload.maxTokens.reduce((a, b) => a + b, 0) / workload.maxTokens.length, 0)} tokens, batch size ${workload.batchSize}, k ${workload.k}`);
  out.push(`PSD bound at the sequential placement's costs: (T_draft + T_verify) / max = ${fmt(bound, 2)}x over sd`, "");
  const header = measured ? ["mode", "predicted tok/s", "measured tok/s", "error", "predicted choices"] : ["mode", "predicted tok/s", "vs sd", "vs ar", "predicted choices"];
  const sd = results.find((r) => r.mode === "sd").tokensPerSecond;
  const ar = results.find((r) => r.mode === "ar").tokensPerSecond;
  const rows = results.map((r) => {
    if (measured) {
      const m = measured[r.mode];
      return [r.mode, fmt(r.tokensPerSecond), m === undefined ? "-" : fmt(m), m === undefined ? "-" : `${fmt((100 * (r.tokensPerSecond - m)) / m, 1)}%`, summarizeChoices(r.choices)];
    }
    return [r.mode, fmt(r.tokensPerSecond), `${fmt(r.tokensPerSecond / sd, 2)}x`, `${fmt(r.tokensPerSecond / ar, 2)}x`, summarizeChoices(r.choices)];
  });
  out.push(table(header, rows));
  const fixed = results.filter((r) => ["ar", "sd", "psd"].includes(r.mode));
  const bestFixed = fixed.reduce((b, r) => (r.tokensPerSecond > b.tokensPerSecond ? r : b), fixed[0]);
  for (const r of results.filter((x) => x.mode.startsWith("auto"))) {
    notes.push(`${r.mode} / best fixed mode (predicted, ${bestFixed.mode}): ${fmt(r.tokensPerSecond / bestFixed.tokensPerSecond, 2)}x${r.min !== undefined ? ` (range ${fmt(r.min / bestFixed.tokensPerSecond, 2)}-${fmt(r.max / bestFixed.tokensPerSecond, 2)}x)` : ""}`);
  }
  if (notes.length > 0) out.push("", ...notes.map((n) => `- ${n}`));
  if (!measured) out.push("", "These are projections from assumed timings, not measurements.");
  process.stdout.write(`${out.join("\n")}\n`);
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ title, costs, workload: { ...workload, requests: workload.maxTokens.length }, bound, results, measured: measured ?? null }, null, 2)}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stderr.write(`simulate: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  });
}
