// `minedraft bench`: ar, sd, psd and auto (and psd-tetris) on the same prompts, models, seeds and
// placement; a table on stdout, optionally every figure as JSON and an HTML report with throughput
// bars, timelines and auto's decisions.
import { Command, Option } from "commander";
import { configureBackends, ENGINE_DEFAULTS } from "../../index.js";
import { backendsFromFlags } from "../backend-flags.js";
import { BUILTIN_PROMPTS } from "../../bench/prompts.js";
import { DEFAULT_TETRIS_EXTRA, modesNeedDraft } from "../../bench/runner.js";
import { BENCH_MODES, type BenchConfig, type BenchMode } from "../../bench/types.js";
import { runBenchSession } from "../bench-session.js";
import { benchServeCommand } from "./bench-serve.js";
import { addVerboseOption, configureCommand, usageError } from "../command-setup.js";
import { addDecodingOptions, addPlacementOptions, type DecodingFlags, type PlacementFlags } from "../engine-flags.js";
import { withInterrupt } from "../interrupt.js";
import { modelFile } from "../model-source.js";
import { choiceList, integer } from "../parsers.js";
import { readPrompts } from "../prompts-file.js";

interface BenchFlags extends DecodingFlags, PlacementFlags {
  model?: string;
  draft?: string;
  prompts?: string;
  modes: BenchMode[];
  repeat: number;
  json?: string;
  report?: string;
  interleave?: boolean;
}

const DEFAULT_MODES: readonly BenchMode[] = ["ar", "sd", "psd", "auto"];

export function benchCommand(): Command {
  const cmd = new Command("bench")
    .description(
      "compare ar, sd, psd and auto on the same prompts, models, seeds and thread placement (psd-tetris: psd " +
        `with TETRIS, e = --tetris-extra, default ${DEFAULT_TETRIS_EXTRA})`,
    )
    .summary("compare ar, sd, psd and auto (table, JSON, HTML report)")
    // not a requiredOption: commander would then demand it of `bench serve` too
    .option("--model <path>", "target model: a GGUF file or an hf: URI (required)")
    .option("--draft <path>", "draft model (needed for sd and psd)")
    .option(
      "--prompts <file>",
      `prompts, one per line or JSON lines {"prompt": ...} (default: ${BUILTIN_PROMPTS.length} built-in prompts)`,
    )
    .addOption(
      new Option("--modes <list>", `modes to compare, comma-separated: ${BENCH_MODES.join(", ")}`)
        .argParser(choiceList(BENCH_MODES))
        .default([...DEFAULT_MODES], DEFAULT_MODES.join(",")),
    );
  addDecodingOptions(cmd, { maxTokens: 64, batchSize: 4, seed: 0 });
  addPlacementOptions(cmd)
    .option("--repeat <n>", "measured runs per mode (after one warm-up run)", integer(1, 1000), 3)
    .option(
      "--interleave",
      "keep every mode's engine open and run the measured runs round-robin over the modes (fairer on a machine " +
        "whose load changes)",
    )
    .option(
      "--json <file>",
      "write every figure, the machine, models, options and per-run numbers as JSON (docs/bench-schema.md)",
    )
    .option("--report <file>", "write a self-contained HTML report (throughput bars, draft/target timelines)");
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft bench");
  // `bench serve` has options of its own: the options after its name are its, not bench's
  cmd.enablePositionalOptions().addCommand(benchServeCommand());
  return cmd.action((flags: BenchFlags, command: Command) => runBenchCommand(flags, command));
}

async function runBenchCommand(flags: BenchFlags, cmd: Command): Promise<void> {
  if (!flags.model) usageError(cmd, "required option '--model <path>' not specified");
  if (flags.tetrisExtra !== undefined && !flags.modes.includes("psd-tetris"))
    usageError(cmd, "--tetris-extra sets TETRIS's e for mode psd-tetris: add psd-tetris to --modes");
  if (modesNeedDraft(flags.modes) && !flags.draft)
    usageError(
      cmd,
      `modes ${flags.modes.filter((m) => m !== "ar" && !m.endsWith("-ngram")).join(", ")} need a draft model (--draft <path>)`,
    );
  // --gpu / --vulkan-devices / --rpc: chosen before the bench loads anything
  const backends = backendsFromFlags(flags);
  if (backends) configureBackends(backends);
  await withInterrupt(async (signal) => {
    const prompts = flags.prompts ? (await readPrompts(flags.prompts)).map((e) => e.prompt) : [...BUILTIN_PROMPTS];
    const target = await modelFile(flags.model!, "target", signal);
    const draft =
      flags.draft && modesNeedDraft(flags.modes) ? await modelFile(flags.draft, "draft", signal) : undefined;
    const config: BenchConfig = {
      target: { path: target, device: flags.device, gpuLayers: flags.gpuLayers, threads: flags.threads },
      draft: draft
        ? { path: draft, device: flags.draftDevice, gpuLayers: flags.draftGpuLayers, threads: flags.draftThreads }
        : undefined,
      modes: flags.modes,
      prompts,
      promptSource: flags.prompts ?? "builtin",
      batchSize: flags.batchSize!,
      draftTokens: flags.draftTokens ?? ENGINE_DEFAULTS.draftTokens,
      temperature: flags.temp ?? ENGINE_DEFAULTS.temperature,
      topK: flags.topK,
      topP: flags.topP,
      draftTemperature: flags.draftTemp,
      maxTokens: flags.maxTokens!,
      repeat: flags.repeat,
      seed: flags.seed!,
      contextSize: flags.ctxSize!,
      kvUnified: flags.kvUnified,
      ...(flags.adaptThreads === false ? { adaptThreads: false } : {}),
      logLevel: flags.logLevel,
      ...(flags.tetrisExtra !== undefined ? { tetrisExtra: flags.tetrisExtra } : {}),
      ...(flags.interleave ? { interleave: true } : {}),
    };
    await runBenchSession(config, { json: flags.json, report: flags.report }, signal);
  });
}
