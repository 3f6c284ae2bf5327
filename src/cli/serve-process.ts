// A `minedraft serve` child process on 127.0.0.1 and a free port, for benchmarks: started, waited for
// until it says it is ready, and stopped with SIGTERM (its drain), all under time limits.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const cliMain = path.join(path.dirname(fileURLToPath(import.meta.url)), "main.js");

export interface ServeProcess {
  url: string;
  /** SIGTERM, then SIGKILL after `graceMs` more; resolves with the exit code */
  stop(graceMs?: number): Promise<number | null>;
}

/** A child's exit, and stop(): SIGTERM, then SIGKILL after `graceMs` more; resolves with the exit code. */
export function stoppable(child: ChildProcess): { exited: Promise<number | null>; stop: ServeProcess["stop"] } {
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async (graceMs = 30_000) => {
    if (!gone) child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const code = await exited;
    clearTimeout(killer);
    return code;
  };
  return { exited, stop };
}

/** `args`: serve's flags (--port and --host are set here). */
export function startServe(args: readonly string[], readyTimeoutMs = 300_000): Promise<ServeProcess> {
  const child = spawn(process.execPath, [cliMain, "serve", ...args, "--host", "127.0.0.1", "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const { exited, stop } = stoppable(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(1000);
      reject(
        new Error(
          `minedraft serve was not ready within ${readyTimeoutMs / 1000} s: ${stderr.trim().split("\n").at(-1) ?? ""}`,
        ),
      );
    }, readyTimeoutMs);
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url && stdout.includes("\nready: ")) {
        clearTimeout(timer);
        resolve({ url, stop });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(`minedraft serve exited (${code}) before it was ready: ${stderr.trim().split("\n").at(-1) ?? ""}`),
      );
    });
  });
}
