// `minedraft bench serve`: the serving measurement (requests arriving at a rate, as the MineDraft paper
// and vLLM's `bench serve` measure): for each mode one `minedraft serve` on loopback, then for each rate
// N streaming requests with Poisson arrivals; per mode and rate the throughput and latency
// distributions, and the server's own speculative counters from /metrics. Table on stdout, JSON.
import os from "node:os";
import path from "node:path";
import { Command, Option } from "commander";
import { BUILTIN_PROMPTS } from "../../bench/prompts.js";
import {
  engineRequests,
  httpCompletions,
  runServeLoad,
  summarizeServeLoad,
  type SendRequest,
} from "../../bench/serve-load.js";
import {
  renderServeReport,
  SERVE_TABLE_HEAD,
  serveTableRows,
  type BenchServeReport,
  type ServeRateResult,
} from "../../bench/serve-report.js";
import { compareServe, formatComparisons, summarizeComparisons } from "../../bench/serve-compare.js";
import { screenPrompts } from "../../bench/prompt-screen.js";
import { createEngine, type Mode } from "../../index.js";
import { writeFileAtomic } from "../atomic-write.js";
import { addVerboseOption, configureCommand, usageError } from "../command-setup.js";
import { engineOptions, MODES, NGRAM_DRAFT } from "../engine-flags.js";
import { fixed } from "../format.js";
import { withInterrupt } from "../interrupt.js";
import { choiceList, integer } from "../parsers.js";
import { readPrompts } from "../prompts-file.js";
import { llamaServerBinary, startLlamaServer } from "../llama-server-process.js";
import { startServe, type ServeProcess } from "../serve-process.js";

export const BENCH_SERVE_SCHEMA = "minedraft-bench-serve/1";

export interface BenchServeFlags {
  model?: string;
  draft?: string;
  /** prompt lookup first, the draft model where it finds nothing */
  ngram?: boolean;
  modes?: Mode[];
  rates: number[];
  numPrompts: number;
  prompts?: string;
  maxTokens: number;
  seed: number;
  /** one server per mode and batch size given */
  batchSize?: number[];
  draftTokens?: number;
  ctxSize?: number;
  threads?: number;
  draftThreads?: number;
  timeout: number;
  warmup: number;
  rounds: number;
  /** undefined: on with --incumbents */
  screenPrompts?: boolean;
  incumbents?: boolean;
  library?: boolean;
  adaptThreads?: boolean;
  kvUnified?: boolean;
  tools?: string;
  json?: string;
  report?: string;
}

/** One server (or the library in this process) the bench runs the rates against. */
interface System {
  /** e.g. "minedraft psd", "minedraft psd library", "llama-server -np 8" */
  name: string;
  /** minedraft's mode; undefined for the incumbents */
  mode?: Mode;
  start(maxTokens: number): Promise<RunningSystem>;
}

interface RunningSystem {
  send: SendRequest;
  /** the speculative counters so far */
  specCounters(): Promise<SpecCounters>;
  stop(): Promise<unknown>;
}

/** "8,4" → [8, 4] */
function batchList(value: string): number[] {
  const sizes = [...new Set(value.split(",").map((s) => integer(1)(s)))];
  if (sizes.length === 0)
    throw new Error(`--batch-size: expected sizes, comma-separated, got ${JSON.stringify(value)}`);
  return sizes;
}

/** "1,2,4,inf" → [1, 2, 4, Infinity] */
function rateList(value: string): number[] {
  const rates = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s === "inf" ? Infinity : Number(s)));
  if (rates.length === 0 || rates.some((r) => !(r > 0)))
    throw new Error(`--rates: expected positive numbers or inf, comma-separated, got ${JSON.stringify(value)}`);
  return rates;
}

export function benchServeCommand(): Command {
  const cmd = new Command("serve")
    .description(
      "serving benchmark: requests arriving at each rate (Poisson) to one `minedraft serve` per mode, over HTTP " +
        "streaming; throughput, TTFT, TPOT, ITL, E2EL (mean, median, p99)",
    )
    .summary("serving benchmark over HTTP at request rates")
    .option("--model <path>", "target model: a GGUF file or an hf: URI")
    .option("--draft <path>", 'draft model (needed for sd, psd, auto), or "ngram": prompt lookup drafts (sd, auto)')
    .option("--ngram", "with --draft PATH: prompt lookup drafts first, the draft model where the lookup finds nothing")
    .addOption(
      new Option(
        "--modes <list>",
        `modes, comma-separated: ${MODES.join(", ")} (default: all with --draft, else ar)`,
      ).argParser(choiceList(MODES)),
    )
    .option("--rates <list>", "request rates per second, comma-separated; inf = all at once", rateList, [
      1,
      2,
      4,
      Infinity,
    ])
    .option("--num-prompts <n>", "requests per rate", integer(1, 100_000), 16)
    .option(
      "--prompts <file>",
      `prompts, one per line or JSON lines (default: the ${BUILTIN_PROMPTS.length} built-in prompts, repeated)`,
    )
    .option("--max-tokens <n>", "max_tokens of every request", integer(1), 64)
    .option("--seed <n>", "seed of the arrivals and of request i (seed + i)", integer(0, Number.MAX_SAFE_INTEGER), 0)
    .option(
      "--warmup <n>",
      "requests each system serves all at once before the first rate, not measured (JIT, caches, auto's calibration)",
      integer(0, 1000),
      8,
    )
    .option(
      "--rounds <n>",
      "run every system this many times, in a rotated order each round; ratios reported per round and as the median",
      integer(1, 100),
      1,
    )
    .option(
      "--screen-prompts",
      "keep only prompts whose greedy text (target alone, --max-tokens) is valid UTF-8: llama-server fails the " +
        "others after generating them, so the systems would not serve the same requests (default: with --incumbents)",
    )
    .option("--no-screen-prompts", "send every prompt, even with --incumbents")
    .option(
      "--batch-size <list>",
      "the servers' --batch-size; several (comma-separated): one server per mode and size, as llama-server runs at " +
        "two slot counts",
      batchList,
    )
    .option("-k, --draft-tokens <n>", "the server's -k", integer(1, 32))
    .option("--ctx-size <n>", "the server's --ctx-size", integer(16))
    .option("--threads <n>", "the server's --threads", integer(1, 512))
    .option("--draft-threads <n>", "the server's --draft-threads", integer(1, 512))
    .option(
      "--timeout <seconds>",
      "the most one rate's run may take; the rest of its requests then fail",
      integer(1),
      600,
    )
    .option("--no-adapt-threads", "the servers' --no-adapt-threads (keep their thread counts whatever the load)")
    .option("--kv-unified", "the servers' --kv-unified (one KV buffer; the CPU default is one per sequence)")
    .option("--no-kv-unified", "the servers' --no-kv-unified")
    .option(
      "--library",
      "also each mode through the library in this process (engine.generate(), no HTTP, same options): what the " +
        "HTTP door costs, side by side",
    )
    .option(
      "--incumbents",
      "also llama.cpp's llama-server on the same models and workload: -np 8 and -np 4 without a draft, with the " +
        "draft (draft-simple, k), and with n-gram drafts (ngram-simple; with --draft ngram also ngram-mod, " +
        "ngram-map-k, ngram-map-k4v and ngram-cache) (needs `npm run build:llama-tools`)",
    )
    .option("--tools <dir>", "where llama-server is (default: .cache/llama-tools/bin)")
    .option("--json <file>", "write every figure as JSON (docs/bench-schema.md)")
    .option(
      "--report <file>",
      "write an HTML report: throughput and latency against the rate, one line per system, and the table",
    );
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft bench serve");
  return cmd.action((flags: BenchServeFlags, command: Command) => benchServe(flags, command));
}

interface SpecCounters {
  drafts: number;
  draftTokens: number;
  acceptedTokens: number;
  /** the core governor's re-placements so far (undefined: not a minedraft engine) */
  coreLimitChanges?: number;
}

/** The speculative counters of a minedraft server; zeros where there are none (llama-server, a server that died). */
async function specCounters(url: string): Promise<SpecCounters> {
  const text = await fetch(`${url}/metrics`).then(
    (r) => r.text(),
    () => "",
  );
  const match = (name: string) => new RegExp(`^minedraft:${name} (\\S+)$`, "m").exec(text)?.[1];
  const value = (name: string) => Number(match(name) ?? 0);
  const changes = match("core_limit_changes");
  return {
    drafts: value("spec_decode_num_drafts_total"),
    draftTokens: value("spec_decode_num_draft_tokens_total"),
    acceptedTokens: value("spec_decode_num_accepted_tokens_total"),
    ...(changes !== undefined ? { coreLimitChanges: Number(changes) } : {}),
  };
}

type RateResult = ServeRateResult;

async function benchServe(flags: BenchServeFlags, cmd: Command): Promise<void> {
  if (!flags.model) usageError(cmd, "required option '--model <path>' not specified");
  const ngram = flags.draft === NGRAM_DRAFT;
  const modes =
    flags.modes ?? ((flags.draft ? (ngram ? ["ar", "sd", "auto"] : ["ar", "sd", "psd", "auto"]) : ["ar"]) as Mode[]);
  if (!flags.draft && modes.some((m) => m !== "ar"))
    usageError(cmd, `modes ${modes.filter((m) => m !== "ar").join(", ")} need a draft model (--draft <path>)`);
  if (ngram && modes.includes("psd"))
    usageError(cmd, "--draft ngram (prompt lookup alone) works with modes ar, sd and auto: psd overlaps a draft model");
  if (flags.ngram && (ngram || !flags.draft))
    usageError(cmd, "--ngram combines prompt lookup with a draft model: give --draft PATH");
  const log = (s: string) => process.stderr.write(`${s}\n`);
  if (flags.incumbents) llamaServerBinary(flags.tools); // fails now, not after minedraft's runs
  let source = flags.prompts ? (await readPrompts(flags.prompts)).map((e) => e.prompt) : [...BUILTIN_PROMPTS];
  let screened: { kept: number; dropped: number } | null = null;
  if (flags.screenPrompts ?? flags.incumbents === true) {
    const { kept, dropped } = await screen(flags, source);
    if (kept.length === 0)
      throw new Error(
        `no prompt's greedy text (${flags.maxTokens} tokens) is valid UTF-8: give other --prompts, or ` +
          "--no-screen-prompts to send them anyway (llama-server will fail them)",
      );
    log(
      `bench serve: kept ${kept.length} of ${kept.length + dropped.length} distinct prompts` +
        (dropped.length > 0
          ? ` (${dropped.length} decode to text that is not valid UTF-8, which llama-server fails)`
          : ""),
    );
    source = kept;
    screened = { kept: kept.length, dropped: dropped.length };
  }
  const prompts = Array.from({ length: flags.numPrompts }, (_, i) => source[i % source.length]!);
  const results: RateResult[] = [];
  const started = new Date();
  const systems = [
    ...modes.flatMap((mode) =>
      (flags.batchSize ?? [undefined]).flatMap((batch) => [
        minedraftSystem(flags, mode, batch, prompts.length),
        ...(flags.library ? [librarySystem(flags, mode, batch)] : []),
      ]),
    ),
    ...(flags.incumbents ? llamaServerSystems(flags) : []),
  ];
  await withInterrupt(async (signal) => {
    for (let round = 1; round <= flags.rounds; round++) {
      // each round starts one system later: drifts of the machine's load spread over every system
      const order = systems.map((_, i) => systems[(i + round - 1) % systems.length]!);
      if (flags.rounds > 1) log(`bench serve: round ${round} of ${flags.rounds}`);
      for (const system of order) await runSystem(system, round, signal);
    }
  });

  async function runSystem(system: System, round: number, signal: AbortSignal): Promise<void> {
    log(`bench serve: starting ${system.name}`);
    const server = await system.start(flags.maxTokens);
    try {
      if (flags.warmup > 0) {
        // a fresh server's first requests pay for JIT compilation and, in minedraft, auto's calibration and
        // the core governor's reaction to them: steady-state figures start after a burst that is not measured
        const warm = await runServeLoad({
          send: server.send,
          prompts: Array.from({ length: flags.warmup }, (_, i) => prompts[i % prompts.length]!),
          rate: Infinity,
          seed: flags.seed + prompts.length,
          timeoutMs: flags.timeout * 1000,
        });
        const failed = warm.records.filter((r) => r.error).length;
        log(
          `bench serve: ${system.name} warmed up with ${flags.warmup} requests${failed ? ` (${failed} failed)` : ""}`,
        );
      }
      for (const rate of flags.rates) {
        signal.throwIfAborted();
        const before = await server.specCounters();
        const label = `${system.name} at ${rate === Infinity ? "inf" : rate} req/s`;
        const { records, durationMs } = await runServeLoad({
          send: server.send,
          prompts,
          rate,
          seed: flags.seed,
          timeoutMs: flags.timeout * 1000,
          onRequestDone: (done, total) =>
            process.stderr.isTTY && process.stderr.write(`\r${label}: ${done}/${total}\x1b[K`),
        });
        if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
        const after = await server.specCounters();
        const spec = {
          drafts: after.drafts - before.drafts,
          draftTokens: after.draftTokens - before.draftTokens,
          acceptedTokens: after.acceptedTokens - before.acceptedTokens,
        };
        const summary = summarizeServeLoad(records, durationMs);
        results.push({
          round,
          system: system.name,
          mode: system.mode ?? null,
          rate: rate === Infinity ? "inf" : rate,
          summary,
          spec: { ...spec, acceptanceRate: spec.draftTokens > 0 ? spec.acceptedTokens / spec.draftTokens : 0 },
          coreLimitChanges:
            after.coreLimitChanges !== undefined ? after.coreLimitChanges - (before.coreLimitChanges ?? 0) : null,
        });
        const replaced = results.at(-1)!.coreLimitChanges;
        log(
          `${label}: ${fixed(summary.outputTokensPerSecond, 1)} output tok/s, median E2EL ` +
            `${fixed(summary.e2eMs.median, 0)} ms, ${summary.failed} failed` +
            (summary.failedOutputTokensPerSecond > 0
              ? ` (they streamed ${fixed(summary.failedOutputTokensPerSecond, 1)} tok/s more)`
              : "") +
            (replaced ? `, threads re-placed ${replaced} times (other work held cores)` : ""),
        );
      }
    } finally {
      await server.stop();
    }
  }

  process.stdout.write(`${formatServeTable(results)}\n`);
  const comparisons = compareServe(results);
  const sideBySide = formatComparisons(summarizeComparisons(comparisons));
  if (sideBySide) process.stdout.write(`\n${sideBySide}\n`);
  if (flags.json || flags.report) {
    const report: BenchServeReport = {
      schema: BENCH_SERVE_SCHEMA,
      createdAt: started.toISOString(),
      machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? "unknown" },
      options: {
        model: flags.model,
        draft: flags.draft ?? null,
        modes,
        systems: systems.map((x) => x.name),
        rates: flags.rates.map((r) => (r === Infinity ? "inf" : r)),
        numPrompts: prompts.length,
        maxTokens: flags.maxTokens,
        seed: flags.seed,
        warmup: flags.warmup,
        rounds: flags.rounds,
        screenedPrompts: screened,
        batchSize:
          flags.batchSize === undefined ? null : flags.batchSize.length === 1 ? flags.batchSize[0] : flags.batchSize,
        draftTokens: flags.draftTokens ?? null,
        ctxSize: flags.ctxSize ?? null,
      },
      results,
      comparisons,
    };
    if (flags.json) {
      await writeFileAtomic(flags.json, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`\nJSON written to ${path.resolve(flags.json)}\n`);
    }
    if (flags.report) {
      await writeFileAtomic(flags.report, renderServeReport(report));
      process.stdout.write(`HTML report written to ${path.resolve(flags.report)}\n`);
    }
  }
  const failed = results.reduce((n, r) => n + r.summary.failed, 0);
  if (failed > 0)
    process.stderr.write(
      `warning: ${failed} requests failed (e.g. ` +
        `${results.find((r) => r.summary.errors.length > 0)?.summary.errors[0] ?? "?"})\n`,
    );
}

/**
 * " ngram" where the drafts come from prompt lookup (--draft ngram), so the row reads beside llama-server's;
 * " ngram+draft" where lookup and the draft model combine (--ngram).
 */
const ngramLabel = (flags: BenchServeFlags, mode: Mode) =>
  mode === "ar" ? "" : flags.draft === NGRAM_DRAFT ? " ngram" : flags.ngram ? " ngram+draft" : "";

/** " b4" in a system's name where several batch sizes run */
const batchLabel = (flags: BenchServeFlags, batch: number | undefined) =>
  (flags.batchSize?.length ?? 0) > 1 ? ` b${batch}` : "";

/** One `minedraft serve` per mode (and batch size), with the bench's server flags. */
function minedraftSystem(flags: BenchServeFlags, mode: Mode, batch: number | undefined, requests: number): System {
  const args = [
    "--model",
    flags.model!,
    ...(mode !== "ar" ? ["--draft", flags.draft!, ...(flags.ngram ? ["--ngram"] : [])] : []),
    "--mode",
    mode,
    "--max-queue",
    String(requests + 16),
  ];
  for (const [flag, v] of [
    ["--batch-size", batch],
    ["-k", mode === "ar" ? undefined : flags.draftTokens],
    ["--ctx-size", flags.ctxSize],
    ["--threads", flags.threads],
    ["--draft-threads", mode === "ar" ? undefined : flags.draftThreads],
  ] as const) {
    if (v !== undefined) args.push(flag, String(v));
  }
  if (flags.adaptThreads === false) args.push("--no-adapt-threads");
  if (flags.kvUnified !== undefined) args.push(flags.kvUnified ? "--kv-unified" : "--no-kv-unified");
  return {
    name: `minedraft ${mode}${ngramLabel(flags, mode)}${batchLabel(flags, batch)}`,
    mode,
    start: (maxTokens) => startServe(args).then((server) => overHttp(server, maxTokens)),
  };
}

/** serve's placement defaults, with the bench's flags */
function libraryPlacement(flags: BenchServeFlags) {
  return {
    threads: flags.threads,
    draftThreads: flags.draftThreads,
    ctxSize: flags.ctxSize ?? 2048,
    adaptThreads: flags.adaptThreads,
    kvUnified: flags.kvUnified,
    logLevel: "error" as const,
  };
}

/** The same engine options as minedraftSystem's server (serve's defaults), in this process. */
function librarySystem(flags: BenchServeFlags, mode: Mode, batch: number | undefined): System {
  const decoding = {
    batchSize: batch ?? 4,
    draftTokens: mode === "ar" ? undefined : flags.draftTokens,
    ngram: flags.ngram,
  };
  const placement = libraryPlacement(flags);
  return {
    name: `minedraft ${mode}${ngramLabel(flags, mode)}${batchLabel(flags, batch)} library`,
    mode,
    start: async (maxTokens) => {
      const engine = await createEngine(
        engineOptions(mode, { target: flags.model!, draft: flags.draft }, decoding, placement),
      );
      const send = engineRequests(engine, maxTokens);
      const totals: SpecCounters = { drafts: 0, draftTokens: 0, acceptedTokens: 0 };
      return {
        send: async (...args) => {
          const outcome = await send(...args);
          for (const key of ["drafts", "draftTokens", "acceptedTokens"] as const)
            totals[key] += outcome.spec?.[key] ?? 0;
          return outcome;
        },
        specCounters: async () => ({ ...totals, coreLimitChanges: engine.stats().coreLimit?.changes ?? 0 }),
        stop: () => engine.close(),
      };
    },
  };
}

/** The distinct prompts split by whether their greedy text is valid UTF-8, through the library (target alone). */
async function screen(flags: BenchServeFlags, prompts: readonly string[]) {
  const engine = await createEngine(
    engineOptions("ar", { target: flags.model! }, { batchSize: flags.batchSize?.[0] ?? 4 }, libraryPlacement(flags)),
  );
  try {
    return await screenPrompts(engine, prompts, flags.maxTokens);
  } finally {
    await engine.close();
  }
}

/** A server child: requests over HTTP to its first model, counters from its /metrics. */
async function overHttp(
  server: ServeProcess,
  maxTokens: number,
  extraBody?: Record<string, unknown>,
): Promise<RunningSystem> {
  try {
    const model =
      ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] }).data[0]?.id ?? "model";
    return {
      send: httpCompletions({ url: server.url, model, maxTokens, extraBody }),
      specCounters: () => specCounters(server.url),
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/**
 * llama.cpp's n-gram draft types (--spec-type) of the bundled release beside ngram-simple, each an incumbent row
 * with --draft ngram: "llama-server -np 4 <type>". Their sizes are llama-server's defaults.
 */
export const LLAMA_SERVER_NGRAM_TYPES = ["ngram-mod", "ngram-map-k", "ngram-map-k4v", "ngram-cache"] as const;

/**
 * llama.cpp's server on the same models: without a draft at two slot counts, with the draft model
 * (in this release `-md` alone does not speculate: --spec-type draft-simple does) and with n-gram
 * drafts (ngram-simple always; with --draft ngram also LLAMA_SERVER_NGRAM_TYPES). Threads: the cores, for the
 * target and for the draft. [row name, llama-server arguments] per row.
 */
export function llamaServerConfigs(
  flags: Pick<BenchServeFlags, "model" | "draft" | "threads" | "draftTokens" | "ctxSize">,
  cores = os.availableParallelism(),
): [string, string[]][] {
  const threads = String(flags.threads ?? cores);
  const k = String(flags.draftTokens ?? 4);
  const base = (np: number) => [
    "-m",
    flags.model!,
    "-np",
    String(np),
    "-c",
    String(np * (flags.ctxSize ?? 1024)),
    "-t",
    threads,
    "-ngl",
    "0",
  ];
  return [
    ["llama-server -np 8", base(8)],
    ["llama-server -np 4", base(4)],
    // a draft model only: with --draft ngram the n-gram rows below are llama-server's counterparts
    ...(flags.draft && flags.draft !== NGRAM_DRAFT
      ? ([
          [
            `llama-server -np 4 draft k=${k}`,
            [
              ...base(4),
              "-md",
              flags.draft,
              "--spec-type",
              "draft-simple",
              "--spec-draft-n-max",
              k,
              "-td",
              threads,
              "-ngld",
              "0",
            ],
          ],
        ] as [string, string[]][])
      : []),
    ["llama-server -np 4 ngram", [...base(4), "--spec-type", "ngram-simple"]],
    ...(flags.draft === NGRAM_DRAFT
      ? LLAMA_SERVER_NGRAM_TYPES.map((type): [string, string[]] => [
          `llama-server -np 4 ${type}`,
          [...base(4), "--spec-type", type],
        ])
      : []),
  ];
}

function llamaServerSystems(flags: BenchServeFlags): System[] {
  return llamaServerConfigs(flags).map(([name, args]) => ({
    name,
    // no reuse of a slot's cached prompt: every rate sends the same prompts, and minedraft has no prefix cache
    start: (maxTokens) =>
      startLlamaServer(args, flags.tools).then((server) => overHttp(server, maxTokens, { cache_prompt: false })),
  }));
}

export function formatServeTable(results: readonly RateResult[]): string {
  const head = SERVE_TABLE_HEAD;
  const rows = serveTableRows(results);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return ["latencies in ms", line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
