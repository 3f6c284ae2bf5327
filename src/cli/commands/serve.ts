// `minedraft serve`: the OpenAI-compatible HTTP server (createServer) over one engine. With no --model
// it serves the demo's synthetic pair. SIGTERM / SIGINT drain: stop accepting, let requests in flight
// finish within --shutdown-grace, abort the rest, close the engine, exit 0 (a second signal exits at once).
import path from "node:path";
import { Command, Option } from "commander";
import { createEngine, createServer, ensureSyntheticPair, type MinedraftEngine, type Mode } from "../../index.js";
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
import { EXIT_INTERRUPTED } from "../exit-codes.js";
import { modelFile } from "../model-source.js";
import { chatTemplateText, integer } from "../parsers.js";
import { createProgressBar } from "../progress.js";
import { describePlacement } from "../run-summary.js";
import { DEFAULT_DEMO_PRESET } from "./demo.js";

interface ServeFlags extends DecodingFlags, PlacementFlags {
  model?: string;
  draft?: string;
  mode?: Mode;
  host: string;
  port: number;
  apiKey?: string;
  maxQueue: number;
  modelAlias?: string;
  chatTemplate?: string;
  shutdownGrace: number;
}

export function serveCommand(): Command {
  const cmd = new Command("serve")
    .description(
      "serve the models over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, " +
        "/health, /metrics)",
    )
    .summary("OpenAI-compatible HTTP server")
    .option(
      "--model <path>",
      `target model: a GGUF file or an hf: URI (default: the demo's synthetic "${DEFAULT_DEMO_PRESET}" pair, ` +
        "whose text is meaningless)",
    )
    .option(
      "--draft <path>",
      'draft model (GGUF file or hf: URI); enables sd, psd and auto. "ngram": prompt lookup drafts, no draft model (sd, auto)',
    )
    .addOption(modeOption())
    .option(
      "--host <address>",
      "address to listen on (another than loopback needs --api-key, or gets a warning)",
      "127.0.0.1",
    )
    .option("--port <n>", "port (0 = any free port)", integer(0, 65535), 8080)
    .addOption(
      new Option("--api-key <key>", "require 'Authorization: Bearer <key>' (all routes but /health)").env(
        "MINEDRAFT_API_KEY",
      ),
    )
    .option("--max-queue <n>", "requests that may wait beyond the batch capacity; then 429", integer(0), 64)
    .option("--model-alias <name>", "model name clients use and /v1/models lists (default: the target file's name)")
    .option(
      "--chat-template <name|file>",
      'chat template: a llama.cpp built-in name ("chatml", "llama3", ...) or a file with a template (default: ' +
        "the model's own, else chatml)",
    )
    .option(
      "--shutdown-grace <seconds>",
      "on SIGTERM / SIGINT, how long requests in flight may finish before they are aborted",
      integer(0),
      30,
    );
  addDecodingOptions(cmd, {
    maxTokens: null,
    maxTokensHelp: "max_tokens of requests that give none (default: up to the context)",
  });
  addPlacementOptions(cmd);
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft serve");
  return cmd.action((flags: ServeFlags, command: Command) => serve(flags, command));
}

async function serve(flags: ServeFlags, cmd: Command): Promise<void> {
  if (flags.draft && !flags.model)
    usageError(cmd, "--draft needs --model (without --model the demo's synthetic pair is served)");
  // without --model the demo's synthetic pair is served: it has a draft
  const { mode, error } = modeFromFlags(flags, flags.draft !== undefined || !flags.model);
  if (error) usageError(cmd, error);
  const out = process.stdout;

  // signals from now on drain instead of killing: also while the models load
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    if (++signals > 1) process.exit(name === "SIGINT" ? EXIT_INTERRUPTED : 143);
    stopRequested();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  const models = await serveModels(flags, mode);
  const enginePromise = createEngine(engineOptions(mode, models, flags, flags));
  const server = createServer(enginePromise, {
    modelName: flags.modelAlias ?? models.name,
    apiKey: flags.apiKey,
    maxQueue: flags.maxQueue,
    chatTemplate: chatTemplateText(flags.chatTemplate),
    defaultMaxTokens: flags.maxTokens,
    defaultSeed: flags.seed,
  });
  const url = await server.listen({ host: flags.host, port: flags.port });
  out.write(`minedraft serve: listening on ${url} (loading models; /health answers 503 until ready)\n`);

  let engine: MinedraftEngine | undefined;
  try {
    engine = (await Promise.race([enginePromise, stopped])) ?? undefined;
    if (engine) {
      await server.ready();
      const p = engine.placement;
      out.write(
        `model "${flags.modelAlias ?? models.name}": target ` +
          `${models.target}${models.draft && p.mode !== "ar" ? `, draft ${models.draft}` : ""}\n`,
      );
      out.write(
        `mode ${p.mode}, batch ${engine.options.batchSize}` +
          `${p.mode !== "ar" ? `, k ${engine.options.draftTokens}` : ""}, context ${engine.contextSize} tokens ` +
          `per request; ${describePlacement(p)}\n`,
      );
      const source = server.chatTemplateSource;
      out.write(
        "chat template: " +
          (source === "model"
            ? "the model's own"
            : source === "option"
              ? `--chat-template ${flags.chatTemplate}`
              : "chatml (the model has none)") +
          "\n",
      );
      if (models.synthetic)
        out.write(
          "note: the synthetic models have random weights: their text is meaningless; only speed and acceptance " +
            "mean something\n",
        );
      out.write(
        `ready: ${url}/v1/chat/completions, ${url}/v1/completions, ${url}/v1/models, ${url}/health, ${url}/metrics\n`,
      );
      await stopped;
    }
    out.write(`shutting down: finishing requests in flight (up to ${flags.shutdownGrace} s)\n`);
    await server.close({ graceMs: flags.shutdownGrace * 1000 });
  } finally {
    await server.close({ graceMs: 0 });
    // an engine still loading when the signal came is closed once it is there
    const e = engine ?? (await enginePromise.catch(() => undefined));
    await e?.close();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  out.write("stopped\n");
}

interface ServeModels {
  target: string;
  draft?: string;
  name: string;
  synthetic: boolean;
}

async function serveModels(flags: ServeFlags, mode: Mode | undefined): Promise<ServeModels> {
  if (!flags.model) {
    const bar = createProgressBar(`making the ${DEFAULT_DEMO_PRESET} synthetic models`);
    try {
      const pair = await ensureSyntheticPair(undefined, {
        preset: DEFAULT_DEMO_PRESET,
        onProgress: (f, stage) => bar.update(f, stage),
      });
      return {
        target: pair.target,
        draft: mode === "ar" ? undefined : pair.draft,
        name: `minedraft-synthetic-${DEFAULT_DEMO_PRESET}`,
        synthetic: true,
      };
    } finally {
      bar.done();
    }
  }
  const target = await modelFile(flags.model, "target");
  const draft =
    mode !== "ar" && flags.draft
      ? flags.draft === NGRAM_DRAFT
        ? NGRAM_DRAFT
        : await modelFile(flags.draft, "draft")
      : undefined;
  return { target, draft, name: path.basename(flags.model).replace(/\.gguf$/i, ""), synthetic: false };
}
