// llama.cpp's own `llama-server` (built by `npm run build:llama-tools`) as the incumbent of
// `bench serve --incumbents`: started on 127.0.0.1 and a free port, ready once /health answers 200,
// stopped with SIGTERM. Missing binary: an error that says how to build it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CliError } from "./exit-codes.js";
import { stoppable, type ServeProcess } from "./serve-process.js";

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_TOOLS_DIR = path.join(packageRoot, ".cache", "llama-tools", "bin");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

/** The llama-server binary in `toolsDir`; a CliError saying how to build it when it is not there. */
export function llamaServerBinary(toolsDir = DEFAULT_TOOLS_DIR): string {
  const bin = path.join(toolsDir, "llama-server");
  if (!existsSync(bin))
    throw new CliError(
      `llama-server is not built (${bin}): run \`npm run build:llama-tools\` once (~15 min on 2 cores), or give ` +
        "--tools DIR",
    );
  return bin;
}

/** `args`: llama-server's flags besides --host / --port. */
export async function startLlamaServer(
  args: readonly string[],
  toolsDir = DEFAULT_TOOLS_DIR,
  readyTimeoutMs = 300_000,
): Promise<ServeProcess> {
  const bin = llamaServerBinary(toolsDir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, [...args, "--host", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const { exited, stop } = stoppable(child);
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (gone)
      throw new Error(`llama-server exited before it was ready: ${stderr.trim().split("\n").slice(-2).join(" ")}`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { url, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop(1000);
  throw new Error(`llama-server was not ready within ${readyTimeoutMs / 1000} s`);
}
