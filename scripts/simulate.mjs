// Predicts ar / sd / psd / auto throughput with the step-level simulator (src/bench/simulator.ts): npm run build:ts,
// then node scripts/simulate.mjs --help.
//
// The simulator runs the workload step by step (admission prefills, two sub-batches for psd/auto,
// the tail where batches empty) on the engine's own pipeline and cost model (from dist/):
//
//   T_verify(n)    = a + b·n         ms for one verification pass of n tokens (n = sum of k_i + 1);
//                                    a size measured directly uses its own mean
//   T_draft(k, r)  = (c + d·k)·(4 + r)/(4 + m)   ms for a draft call of k autoregressive steps over
//                                    r requests (c: feeding the pending tokens, call overhead)
//   E(k)           = 1 + sum_{j=1..k} prod_{i<j} alpha_i   tokens a request gains per verification
//   sd:   step = T_draft + T_verify + o          psd: step = max(T_draft, T_verify) + o
//
// each with the costs of its own thread placement ("sequential": phases take turns, each on all
// cores; "overlapped": both at once, cores split); docs/performance.md describes the model.
//
//   node scripts/simulate.mjs --bench docs/bench/X.json [--json out.json]
//       fit the costs from the bench's ar / sd / psd runs, predict every mode, and compare with what
//       the bench measured. "auto" is auto with exact knowledge of the costs (what it could reach);
//       "auto (replay)" runs the mix of choices auto actually made (checks the cost model on them);
//       "auto (policy)" runs the engine's own AutoPolicy, which sees only what each step cost
//       ([--policy-dist DIR] another build's, [--policy-runs N] seeds, default 8, 0 = off;
//       [--jitter S] call times vary by up to +-S, default 0.1; [--probe-budget B] the policy's
//       probeBudget)
//   node scripts/simulate.mjs --preset NAME [--batch M] [-k K] [--requests N] [--max-tokens T]
//       a projection from assumed timings (PRESETS, src/bench/simulator-inputs.ts); --list-presets shows them
//   node scripts/simulate.mjs --verify-seq A,B [--verify-ovl A,B] --draft-seq C,D [--draft-ovl C,D]
//       --accept a0,a1,... [--overhead-seq MS] [--overhead-ovl MS] [--prefill MS] --batch M -k K ...
//       the same from numbers given on the command line
//
// Needs the TypeScript build (dist/: npm run build:ts); O(steps) per mode.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A module of a build's dist/, with a hint when that build is missing. */
async function fromDist(dist, file, what) {
  const at = path.join(dist, file);
  if (!existsSync(at)) throw new Error(`${what} needs a build: ${at} is missing (npm run build:ts)`);
  return import(pathToFileURL(at).href);
}

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
    `T_verify(n tokens): sequential ${l(costs.verify.sequential)} ms${pts(costs.verify.sequential)}; overlapped ` +
      `${l(costs.verify.overlapped)} ms${pts(costs.verify.overlapped)}`,
    `draft call of k steps for ${costs.batchSize} requests: sequential ${l(costs.draft.sequential, "k")} ms, ` +
      `overlapped ${l(costs.draft.overlapped, "k")} ms`,
    `overhead per step: sequential ${fmt(costs.overhead.sequential, 2)} ms, overlapped ` +
      `${fmt(costs.overhead.overlapped, 2)} ms`,
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
    const lines = readFileSync(new URL(import.meta.url))
      .toString()
      .split("\n");
    const comment = lines.slice(
      0,
      lines.findIndex((s) => !s.startsWith("//")),
    );
    process.stdout.write(`${comment.map((s) => s.replace(/^\/\/ ?/, "")).join("\n")}\n`);
    return;
  }
  const dist = path.join(root, "dist");
  const { simulate, simulatePolicy, psdBound } = await fromDist(dist, "bench/simulator.js", "the simulator");
  const { fitCosts, workloadOf, PRESETS } = await fromDist(dist, "bench/simulator-inputs.js", "the simulator");
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
    const auto = bench.modes.find((m) => m.mode === "auto");
    if (auto?.summary.auto) {
      replayDecisions = auto.summary.auto.decisions.map((d) => ({ schedule: d.schedule, k: d.k, share: d.share }));
      measured["auto (replay)"] = auto.summary.tokensPerSecond;
    }
    title =
      `fitted from ${args.bench} (${bench.machine.cpuModel}, ${bench.machine.availableParallelism} cores; ` +
      `${bench.models.target.name} / ${bench.models.draft?.name})`;
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
    if (!args["verify-seq"] || !args["draft-seq"] || !args.accept)
      throw new Error(
        "give --bench FILE, --preset NAME, or --verify-seq A,B --draft-seq C,D --accept a0,a1,... (see --help)",
      );
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
  if (!(Number.isInteger(workload.k) && workload.k >= 1))
    throw new Error(`-k must be an integer >= 1 (psd drafts k tokens), got ${workload.k}`);
  if (args.requests || args["max-tokens"]) {
    const n = args.requests ? nums(args.requests, "requests")[0] : workload.maxTokens.length;
    const t = args["max-tokens"] ? nums(args["max-tokens"], "max-tokens")[0] : workload.maxTokens[0];
    workload.maxTokens = Array.from({ length: n }, () => t);
  }

  const results = modes.map((mode) => simulate(mode, workload, costs));
  // psd and auto hold 2m requests: the fixed sequential modes with 2m per pass are their fair match
  if (!measured) {
    const wide = { ...workload, batchSize: 2 * workload.batchSize };
    for (const mode of ["ar", "sd"])
      if (modes.includes(mode)) results.push({ ...simulate(mode, wide, costs), mode: `${mode} (2m)` });
  }
  if (replayDecisions) {
    const r = simulate("auto", workload, costs, { replay: { decisions: replayDecisions, done: new Map() } });
    results.push({ ...r, mode: "auto (replay)" });
  }
  costs.batchSize ??= workload.batchSize;
  const notes = [];
  const policyRuns = Number(args["policy-runs"] ?? 8);
  if (policyRuns > 0) {
    // the engine's own policy, from a build (dist/ by default; --policy-dist: another commit's, where
    // builds from before AutoPolicy had its own file hold it in auto-scheduler.js)
    const policyDist = path.resolve(args["policy-dist"] ?? dist);
    const own = path.join("engine", "auto-policy.js");
    const { AutoPolicy } = await fromDist(
      policyDist,
      existsSync(path.join(policyDist, own)) ? own : path.join("engine", "auto-scheduler.js"),
      "auto (policy)",
    );
    const jitter = Number(args.jitter ?? 0.1);
    if (!(jitter >= 0 && jitter < 1)) throw new Error(`--jitter must be in [0, 1), got ${args.jitter}`);
    const probeBudget = args["probe-budget"] === undefined ? undefined : Number(args["probe-budget"]);
    if (probeBudget !== undefined && !(probeBudget >= 0 && probeBudget < 1))
      throw new Error(`--probe-budget must be in [0, 1), got ${args["probe-budget"]}`);
    const make = () =>
      new AutoPolicy({
        kMax: workload.k,
        batchSize: workload.batchSize,
        canOverlap: costs.canOverlap !== false,
        probeBudget,
      });
    const r = simulatePolicy(workload, costs, make, { runs: policyRuns, jitter });
    results.push(r);
    if (measured?.auto !== undefined) measured["auto (policy)"] = measured.auto;
    const order =
      workload.warmupTokens > 0
        ? `after a warm-up at ${workload.warmupTokens} tokens, ${workload.repeat ?? 1} measured run(s)`
        : `${workload.repeat ?? 1} run(s), no warm-up`;
    notes.push(
      `auto (policy): the AutoPolicy of ${path.relative(process.cwd(), policyDist) || "."}, ${order}, over ` +
        `${r.runs} seeds; call times jittered by up to +-${fmt(100 * jitter, 0)}%, acceptance sampled: mean ` +
        `${fmt(r.tokensPerSecond)} tok/s, range ${fmt(r.min)}-${fmt(r.max)}`,
    );
  }
  const bound = psdBound(workload, costs);
  const out = [];
  out.push(title, "", describeCosts(costs), "");
  out.push(
    `workload: ${workload.maxTokens.length} requests x ` +
      `~${fmt(workload.maxTokens.reduce((a, b) => a + b, 0) / workload.maxTokens.length, 0)} tokens, batch size ` +
      `${workload.batchSize}, k ${workload.k}`,
  );
  out.push(`PSD bound at the sequential placement's costs: (T_draft + T_verify) / max = ${fmt(bound, 2)}x over sd`, "");
  const header = measured
    ? ["mode", "predicted tok/s", "measured tok/s", "error", "predicted choices"]
    : ["mode", "predicted tok/s", "vs sd", "vs ar", "predicted choices"];
  const sd = results.find((r) => r.mode === "sd").tokensPerSecond;
  const ar = results.find((r) => r.mode === "ar").tokensPerSecond;
  const rows = results.map((r) => {
    if (measured) {
      const m = measured[r.mode];
      return [
        r.mode,
        fmt(r.tokensPerSecond),
        m === undefined ? "-" : fmt(m),
        m === undefined ? "-" : `${fmt((100 * (r.tokensPerSecond - m)) / m, 1)}%`,
        summarizeChoices(r.choices),
      ];
    }
    return [
      r.mode,
      fmt(r.tokensPerSecond),
      `${fmt(r.tokensPerSecond / sd, 2)}x`,
      `${fmt(r.tokensPerSecond / ar, 2)}x`,
      summarizeChoices(r.choices),
    ];
  });
  out.push(table(header, rows));
  const fixed = results.filter((r) => ["ar", "sd", "psd"].includes(r.mode));
  const bestFixed = fixed.reduce((b, r) => (r.tokensPerSecond > b.tokensPerSecond ? r : b), fixed[0]);
  for (const r of results.filter((x) => x.mode.startsWith("auto"))) {
    notes.push(
      `${r.mode} / best fixed mode (predicted, ${bestFixed.mode}): ` +
        `${fmt(r.tokensPerSecond / bestFixed.tokensPerSecond, 2)}x` +
        (r.min !== undefined
          ? ` (range ${fmt(r.min / bestFixed.tokensPerSecond, 2)}-${fmt(r.max / bestFixed.tokensPerSecond, 2)}x)`
          : ""),
    );
  }
  if (notes.length > 0) out.push("", ...notes.map((n) => `- ${n}`));
  if (!measured) out.push("", "These are projections from assumed timings, not measurements.");
  process.stdout.write(`${out.join("\n")}\n`);
  if (args.json) {
    writeFileSync(
      args.json,
      `${JSON.stringify(
        {
          title,
          costs,
          workload: { ...workload, requests: workload.maxTokens.length },
          bound,
          results,
          measured: measured ?? null,
        },
        null,
        2,
      )}\n`,
    );
  }
}

main().catch((error) => {
  process.stderr.write(`simulate: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
