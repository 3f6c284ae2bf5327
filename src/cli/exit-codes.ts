// Exit codes and the two error kinds the CLI distinguishes: bad usage (2) and runtime failure (1).

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, as shells report a command stopped by Ctrl-C */
export const EXIT_INTERRUPTED = 130;

/** A runtime failure the user can act on; printed as one line without a stack trace. */
export class CliError extends Error {
  override name = "CliError";
}

/** True when stack traces are wanted: --verbose on the command line or MINEDRAFT_DEBUG in the environment. */
export function debugWanted(argv: readonly string[] = process.argv): boolean {
  const env = process.env.MINEDRAFT_DEBUG;
  return argv.includes("--verbose") || (env !== undefined && env !== "" && env !== "0");
}

/** One line describing an error: its message's first line (library messages are one line already). */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.trim() || (error instanceof Error ? error.name : "unknown error");
}
