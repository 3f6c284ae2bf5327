// Helpers for the CLI tests: a fresh build of dist/, running the built CLI, and the tiny synthetic pair.
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureSyntheticPair } from "../../src/synth/index.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const cliPath = path.join(repoRoot, "dist", "cli", "main.js");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles src/ into dist/ when dist/cli/main.js is missing or older than any source file. */
export function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(cliPath).mtimeMs;
  } catch {
    built = 0;
  }
  if (built >= newestMtime(path.join(repoRoot, "src"))) return;
  execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: repoRoot, stdio: "inherit" });
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** called once the child has written this much to stdout (e.g. to interrupt it mid-run) */
  onStdout?: (text: string, child: import("node:child_process").ChildProcess) => void;
  /** called this many ms after the start */
  after?: { ms: number; run: (child: import("node:child_process").ChildProcess) => void };
  timeoutMs?: number;
}

/** Runs `node dist/cli/main.js ...args` with stdout/stderr piped (so neither is a TTY). */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, MINEDRAFT_DEBUG: undefined, MINEDRAFT_DEMO_QUICK: undefined, ...opts.env };
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(stdout, child);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = opts.after ? setTimeout(() => opts.after!.run(child), opts.after.ms) : undefined;
    const killer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The tiny synthetic pair, shared with `minedraft demo --quick` (same cache key). */
export function tinyPair() {
  return ensureSyntheticPair(undefined, { preset: "tiny" });
}

/** stderr lines, without empty ones. */
export function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}
