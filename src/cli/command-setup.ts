// Settings every command shares: errors thrown instead of exiting (main.ts picks the exit code),
// usage errors on one line with a pointer to --help, and --verbose for stack traces.
import type { Command } from "commander";
import { EXIT_USAGE } from "./exit-codes.js";

/** Applies the shared settings to a (sub)command and returns it. */
export function configureCommand(cmd: Command, commandLine: string): Command {
  cmd.exitOverride();
  cmd.configureOutput({
    // commander's suggestions ("Did you mean ...?") come on a second line: keep the message to one
    outputError: (str, write) => write(`${str.trim().replace(/\s*\n\s*/g, " ")} (see: ${commandLine} --help)\n`),
  });
  return cmd;
}

/** Adds --verbose (stack traces on failure; main.ts reads it from argv, so it works before parsing fails too). */
export function addVerboseOption(cmd: Command): Command {
  return cmd.option("--verbose", "print stack traces on errors (or set MINEDRAFT_DEBUG=1)");
}

/** Reports bad usage found after parsing (e.g. conflicting values) the same way commander does: exit code 2. */
export function usageError(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: EXIT_USAGE, code: "minedraft.usage" });
}
