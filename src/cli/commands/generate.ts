// `minedraft generate`: runs one prompt (streamed) or a file of prompts (all at once) through the engine.
import { Command, Option } from "commander";
import {
  createEngine,
  type GenerateOptions,
  type GenerateResult,
  type MinedraftEngine,
  type Mode,
} from "../../index.js";
import { addVerboseOption, configureCommand, usageError } from "../command-setup.js";
import {
  addDecodingOptions,
  addPlacementOptions,
  engineOptions,
  NGRAM_DRAFT,
  modeFromFlags,
  modeOption,
  type DecodingFlags,
  type PlacementFlags,
} from "../engine-flags.js";
import { clip } from "../format.js";
import { withInterrupt } from "../interrupt.js";
import { modelFile } from "../model-source.js";
import { fileSink, inOrder, stdoutSink, type OutputSink } from "../output-sink.js";
import { chatTemplateText, collect } from "../parsers.js";
import { readPrompts, type PromptEntry } from "../prompts-file.js";
import { formatRunStats } from "../run-summary.js";

interface GenerateFlags extends DecodingFlags, PlacementFlags {
  model: string;
  draft?: string;
  prompt?: string;
  prompts?: string;
  mode?: Mode;
  chat?: boolean;
  chatTemplate?: string;
  system?: string;
  stop?: string[];
  json?: boolean;
  stats?: boolean;
  output?: string;
}

export function generateCommand(): Command {
  const cmd = new Command("generate")
    .description("generate text for a prompt, or for every prompt of a file at once")
    .summary("generate text for a prompt or a file of prompts")
    .requiredOption("--model <path>", "target model: a GGUF file or an hf: URI")
    .option(
      "--draft <path>",
      'draft model (GGUF file or hf: URI); enables sd, psd and auto. "ngram": prompt lookup drafts, no draft model (sd, auto)',
    )
    .addOption(new Option("--prompt <text>", "the prompt").conflicts("prompts"))
    .addOption(
      new Option(
        "--prompts <file>",
        'file of prompts, one per line or JSON lines {"prompt": ...}; all run concurrently ("-" = stdin)',
      ).conflicts("prompt"),
    )
    .addOption(modeOption());
  addDecodingOptions(cmd);
  addPlacementOptions(cmd)
    .option("--chat", "apply the model's chat template (prompt = user message)")
    .option(
      "--chat-template <name|file>",
      'chat template (implies --chat): a llama.cpp built-in name ("chatml", "llama3", ...) or a file with a ' +
        "template (default: the model's own)",
    )
    .option("--system <text>", "system message (implies --chat)")
    .option("--stop <text>", "stop generating at this text (repeatable)", collect)
    .option("--json", "print one JSON object with every request's text, tokens and statistics")
    .option("--stats", "print run statistics to stderr at the end")
    .option("--output <file>", "write the output to this file (atomically) instead of stdout");
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft generate");
  return cmd.action((flags: GenerateFlags, command: Command) => runGenerate(flags, command));
}

async function runGenerate(flags: GenerateFlags, cmd: Command): Promise<void> {
  if (flags.prompt === undefined && flags.prompts === undefined)
    usageError(cmd, "give a prompt with --prompt <text> or a file with --prompts <file>");
  if (flags.prompt === "") usageError(cmd, "--prompt must not be empty");
  const { mode, error } = modeFromFlags(flags, flags.draft !== undefined);
  if (error) usageError(cmd, error);
  const ngram = flags.draft === NGRAM_DRAFT;

  await withInterrupt(async (signal) => {
    const entries: PromptEntry[] =
      flags.prompts !== undefined ? await readPrompts(flags.prompts) : [{ prompt: flags.prompt! }];
    const target = await modelFile(flags.model, "target", signal);
    const draft =
      mode !== "ar" && flags.draft ? (ngram ? NGRAM_DRAFT : await modelFile(flags.draft, "draft", signal)) : undefined;
    const sink = flags.output ? fileSink(flags.output) : stdoutSink();
    const engine = await createEngine(engineOptions(mode, { target, draft }, flags, flags));
    try {
      signal.throwIfAborted();
      const results = await runPrompts(engine, entries, flags, sink, signal);
      if (flags.json) sink.write(`${JSON.stringify(jsonReport(engine, entries, results), null, 2)}\n`);
      if (flags.stats) process.stderr.write(`${formatRunStats(engine.stats(), engine.placement)}\n`);
    } finally {
      await engine.close();
    }
    signal.throwIfAborted();
    await sink.commit();
  });
}

async function runPrompts(
  engine: MinedraftEngine,
  entries: PromptEntry[],
  flags: GenerateFlags,
  sink: OutputSink,
  signal: AbortSignal,
) {
  const single = entries.length === 1;
  // a lone prompt streams its text as it is accepted; several are printed whole, in file order
  const streamText = single && !flags.json;
  const printBlock = inOrder<GenerateResult>((i, r) => {
    if (!flags.json && !single)
      sink.write(
        `${i > 0 ? "\n" : ""}=== [${i + 1}/${entries.length}] ${clip(entries[i]!.prompt, 60)} ===\n${r.text}\n`,
      );
  });
  const chat = flags.chat || flags.system !== undefined || flags.chatTemplate !== undefined;
  const chatTemplate = chatTemplateText(flags.chatTemplate);
  const results = await Promise.all(
    entries.map(async (entry, i) => {
      const opts: GenerateOptions = {
        maxTokens: flags.maxTokens,
        seed: flags.seed === undefined ? undefined : flags.seed + i,
        stop: flags.stop,
        signal,
        onText: streamText ? (piece) => sink.write(piece) : undefined,
      };
      const result = chat
        ? await engine.chat(
            [
              ...(flags.system !== undefined ? [{ role: "system", content: flags.system }] : []),
              { role: "user", content: entry.prompt },
            ],
            { ...opts, chatTemplate },
          )
        : await engine.generate(entry.prompt, opts);
      printBlock(i, result);
      return result;
    }),
  );
  if (streamText) sink.write("\n");
  return results;
}

/** The --json document: { requests: [...], summary: { ...RunStats, placement } }. */
function jsonReport(engine: MinedraftEngine, entries: PromptEntry[], results: GenerateResult[]) {
  return {
    requests: results.map((r, i) => ({
      id: entries[i]!.id ?? i + 1,
      prompt: entries[i]!.prompt,
      text: r.text,
      tokens: r.tokens,
      stats: r.stats,
    })),
    summary: { ...engine.stats(), placement: engine.placement },
  };
}
