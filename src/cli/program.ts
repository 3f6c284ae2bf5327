// The root command and its subcommands (one module each, under commands/).
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { configureCommand } from "./command-setup.js";
import { benchCommand } from "./commands/bench.js";
import { cacheCommand } from "./commands/cache.js";
import { demoCommand } from "./commands/demo.js";
import { generateCommand } from "./commands/generate.js";
import { inspectCommand } from "./commands/inspect.js";
import { serveCommand } from "./commands/serve.js";
import { synthCommand } from "./commands/synth.js";

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export function buildProgram(): Command {
  const program = new Command("minedraft")
    .description("batch-parallel speculative decoding (MineDraft PSD) for local GGUF models on llama.cpp")
    .version(packageVersion(), "-V, --version")
    .showSuggestionAfterError(true)
    // a subcommand's options belong to it (bench and bench serve both have --model)
    .enablePositionalOptions();
  configureCommand(program, "minedraft");
  for (const cmd of [
    generateCommand(),
    serveCommand(),
    benchCommand(),
    demoCommand(),
    inspectCommand(),
    synthCommand(),
    cacheCommand(),
  ])
    program.addCommand(cmd);
  return program;
}
