#!/usr/bin/env node
// The minedraft command line. Exit codes: 0 success, 1 runtime failure, 2 bad usage, 130 interrupted.
import { CommanderError } from "commander";
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, debugWanted, oneLine } from "./exit-codes.js";
import { wasInterrupted } from "./interrupt.js";
import { buildProgram } from "./program.js";
import { optionOf } from "../index.js";

/** The flag of a library option, where the CLI has one. */
const FLAG_OF_OPTION: Record<string, string> = {
  "target.threads": "--threads",
  "draft.threads": "--draft-threads",
  "target.gpuLayers": "--gpu-layers",
  "draft.gpuLayers": "--draft-gpu-layers",
  "target.device": "--device",
  "target.tensorSplit": "--tensor-split",
  "draft.device": "--draft-device",
  rpc: "--rpc",
  "backends.rpc": "--rpc",
  contextSize: "--ctx-size",
  batchSize: "--batch-size",
  draftTokens: "-k",
  temperature: "--temp",
  draftTemperature: "--draft-temp",
  topP: "--top-p",
  topK: "--top-k",
  maxTokens: "--max-tokens",
  seed: "--seed",
  mode: "--mode",
  "tetris.extra": "--tetris-extra",
  postVerify: "--post-verify",
  preVerify: "--pre-verify",
};

function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) {
    // commander has already printed its message (or the help)
    const helpOrVersion =
      ["commander.helpDisplayed", "commander.version"].includes(error.code) ||
      (error.code === "commander.help" && error.exitCode === 0);
    return helpOrVersion ? EXIT_OK : EXIT_USAGE;
  }
  // whatever failed after Ctrl-C (an aborted request, a closed engine) is the interruption's doing
  if (wasInterrupted()) {
    process.stderr.write("interrupted\n");
    return EXIT_INTERRUPTED;
  }
  // an option the library refused: bad usage, named by its flag
  const option = optionOf(error);
  if (option !== undefined && !debugWanted()) {
    const flag = FLAG_OF_OPTION[option];
    process.stderr.write(`error: ${oneLine(error)}${flag ? ` (${flag})` : ""}\n`);
    return EXIT_USAGE;
  }
  if (debugWanted() && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  else process.stderr.write(`error: ${oneLine(error)}\n`);
  return EXIT_FAILURE;
}

/** Exits once stdout has been flushed (a pipe may still hold buffered output). */
function exitAfterFlush(code: number): void {
  process.stdout.write("", () => process.exit(code));
}

async function main(): Promise<void> {
  // a failure outside the command's own promise chain still gets the one-line treatment
  const fatal = (error: unknown) => process.exit(exitCodeOf(error));
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
  // `minedraft ... | head` closes the pipe early: that is not an error
  process.stdout.on("error", (error: NodeJS.ErrnoException) =>
    error.code === "EPIPE" ? process.exit(EXIT_OK) : fatal(error),
  );
  let code = EXIT_OK;
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    code = exitCodeOf(error);
  }
  // native worker threads may keep the event loop alive after the engine closed: exit explicitly
  exitAfterFlush(code);
}

void main();
