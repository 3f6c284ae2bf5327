// `minedraft demo`: no model files needed. Makes (or reuses) a synthetic target/draft pair, benchmarks
// ar, sd, psd and auto (the default mode with a draft on the CPU) on it, prints the table and writes the HTML report.
import path from "node:path";
import { Command, Option } from "commander";
import { ENGINE_DEFAULTS, ensureSyntheticPair } from "../../index.js";
import { BUILTIN_PROMPTS } from "../../bench/prompts.js";
import { SYNTH_PRESETS, SYNTH_PRESET_NAMES, type SynthPresetName } from "../../index.js";
import { runBenchSession } from "../bench-session.js";
import { addVerboseOption, configureCommand } from "../command-setup.js";
import { untilAborted, withInterrupt } from "../interrupt.js";
import { integer } from "../parsers.js";
import { createProgressBar } from "../progress.js";

/**
 * Measured on 2 busy cores: ~20 s with cached models (3 interleaved runs per mode), ~60 s including making them;
 * psd clearly beats sd (medium takes ~40 s and psd does not beat sd there; tinyllama is far over two minutes).
 */
export const DEFAULT_DEMO_PRESET: SynthPresetName = "small";

interface DemoFlags {
  preset: SynthPresetName;
  quick?: boolean;
  report?: string;
  threads?: number;
  draftThreads?: number;
}

/** How much work the demo does: the full demo, or the --quick one used by tests. */
const SIZES = {
  // three measured runs per mode, round-robin over the modes: the table's medians survive one run
  // disturbed by other work on the machine
  full: { prompts: 8, maxTokens: 48, batchSize: 4, repeat: 3 },
  quick: { prompts: 4, maxTokens: 12, batchSize: 2, repeat: 1 },
} as const;

export function demoCommand(): Command {
  const cmd = new Command("demo")
    .description(
      "benchmark ar, sd, psd and auto on a synthetic model pair (no model files needed) and write an HTML report",
    )
    .summary("benchmark on synthetic models, no downloads needed")
    .addOption(
      new Option("--preset <name>", "synthetic model size").choices(SYNTH_PRESET_NAMES).default(DEFAULT_DEMO_PRESET),
    )
    .option("--quick", "tiny models, few tokens: a smoke test; overrides --preset (also MINEDRAFT_DEMO_QUICK=1)")
    .option("--report <file>", "where to write the HTML report", "minedraft-demo.html")
    .option(
      "--threads <n>",
      "CPU threads of the target model in every mode (default: the library's placement per mode)",
      integer(1, 512),
    )
    .option("--draft-threads <n>", "CPU threads of the draft model in every mode", integer(1, 512));
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft demo");
  return cmd.action((flags: DemoFlags) => runDemo(flags));
}

function runDemo(flags: DemoFlags): Promise<void> {
  return withInterrupt((signal) => demo(flags, signal));
}

async function demo(flags: DemoFlags, signal: AbortSignal): Promise<void> {
  const quick = flags.quick === true || process.env.MINEDRAFT_DEMO_QUICK === "1";
  const preset: SynthPresetName = quick ? "tiny" : flags.preset;
  const size = quick ? SIZES.quick : SIZES.full;
  const out = process.stdout;

  out.write(`minedraft demo: synthetic "${preset}" model pair (${SYNTH_PRESETS[preset].description})\n`);
  const bar = createProgressBar(`making ${preset} models`);
  let pair: Awaited<ReturnType<typeof ensureSyntheticPair>>;
  try {
    pair = await untilAborted(
      ensureSyntheticPair(undefined, { preset, onProgress: (f, stage) => bar.update(f, stage) }),
      signal,
    );
  } finally {
    bar.done();
  }
  out.write(`models: ${pair.dir} (${pair.created ? "made now" : "cached"})\n\n`);

  const reportFile = path.resolve(flags.report ?? "minedraft-demo.html");
  await runBenchSession(
    {
      target: { path: pair.target, threads: flags.threads },
      draft: { path: pair.draft, threads: flags.draftThreads },
      modes: ["ar", "sd", "psd", "auto"],
      prompts: BUILTIN_PROMPTS.slice(0, size.prompts),
      promptSource: "builtin",
      batchSize: size.batchSize,
      draftTokens: ENGINE_DEFAULTS.draftTokens,
      temperature: 0,
      maxTokens: size.maxTokens,
      repeat: size.repeat,
      interleave: true,
      seed: 0,
      contextSize: 512,
      logLevel: "error",
    },
    { report: reportFile },
    signal,
  );
  out.write(
    [
      "",
      "Note: these synthetic models have random weights, so they produce meaningless text. Only the speed,",
      "acceptance and overlap figures mean something (the draft is the target's first layer(s), so it agrees often).",
      "",
      "With real GGUF models (a target and a smaller draft sharing its tokenizer):",
      "  minedraft inspect target.gguf draft.gguf",
      "  minedraft bench --model target.gguf --draft draft.gguf --report report.html",
      '  minedraft generate --model target.gguf --draft draft.gguf --prompt "Why is the sky blue?"',
      "",
    ].join("\n"),
  );
}
