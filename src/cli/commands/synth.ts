// `minedraft synth`: writes a synthetic target/draft GGUF pair (random weights, real tokenizer) for tests and demos.
import path from "node:path";
import { Command, Option } from "commander";
import { synthesizePair } from "../../index.js";
import { SYNTH_PRESETS, SYNTH_PRESET_NAMES, type SynthDtype, type SynthPresetName } from "../../index.js";
import { addVerboseOption, configureCommand } from "../command-setup.js";
import { decimal, integer } from "../parsers.js";
import { createProgressBar } from "../progress.js";

interface SynthFlags {
  out: string;
  preset: SynthPresetName;
  vocab?: string;
  eps?: number;
  attnScale?: number;
  dtype?: SynthDtype;
  seed: number;
}

export function synthCommand(): Command {
  const presets = SYNTH_PRESET_NAMES.map((n) => `  ${n.padEnd(10)} ${SYNTH_PRESETS[n].description}`).join("\n");
  const cmd = new Command("synth")
    .description(
      "write a synthetic target/draft GGUF pair: DIR/target.gguf and DIR/draft.gguf (random weights: the text " +
        "they produce is meaningless)",
    )
    .summary("write a synthetic target/draft GGUF pair")
    .requiredOption("--out <dir>", "output folder (created if missing)")
    .addOption(new Option("--preset <name>", "model size").choices(SYNTH_PRESET_NAMES).default("tiny"))
    .option(
      "--vocab <name>",
      'tokenizer: a llama.cpp vocab name ("llama-spm", "llama-bpe", "gpt-2", ...) or a GGUF path (default llama-spm)',
    )
    .option(
      "--eps <e>",
      "how far the target strays from the draft (0 = identical behaviour; default: the preset's)",
      decimal(0, 100, "a number"),
    )
    .option(
      "--attn-scale <s>",
      "scale of attn_output in every layer of both models (default 1; 0 = each token's logits depend on that token " +
        "only, so greedy output repeats itself: a workload for prompt-lookup drafts)",
      decimal(0, 100, "a number"),
    )
    .addOption(new Option("--dtype <type>", "weight type (default: the preset's)").choices(["f32", "f16", "q8_0"]))
    .option("--seed <n>", "weights seed", integer(0, Number.MAX_SAFE_INTEGER), 0)
    .addHelpText("after", `\nPresets:\n${presets}`);
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft synth");
  return cmd.action((flags: SynthFlags) => runSynth(flags));
}

async function runSynth(flags: SynthFlags): Promise<void> {
  const bar = createProgressBar(`synth ${flags.preset}`);
  try {
    const pair = await synthesizePair({
      outDir: path.resolve(flags.out),
      preset: flags.preset,
      vocab: flags.vocab,
      eps: flags.eps,
      attnScale: flags.attnScale,
      dtype: flags.dtype,
      seed: flags.seed,
      onProgress: (fraction, stage) => bar.update(fraction, stage),
    });
    bar.done();
    process.stdout.write(`target: ${pair.target}\ndraft:  ${pair.draft}\n`);
  } finally {
    bar.done();
  }
}
