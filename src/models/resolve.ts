// Model sources: a local GGUF path, or an `hf:` / https URI resolved (and downloaded once) through
// node-llama-cpp's model resolver into its usual cache.
import path from "node:path";

export function isRemoteModelUri(source: string): boolean {
  return /^(hf:|huggingface:|https?:\/\/)/i.test(source);
}

export interface ResolveOptions {
  /** where to download to (default: node-llama-cpp's cache, ~/.node-llama-cpp/models) */
  directory?: string;
  /** show node-llama-cpp's download progress bar (TTY) */
  progress?: boolean;
  onProgress?: (status: { totalSize: number; downloadedSize: number }) => void;
  /** how long to wait for the model host before calling it unreachable (default 15 s) */
  probeTimeoutMs?: number;
}

/** A local file path for a model source. Remote URIs are downloaded if not cached yet. */
export async function resolveModelSource(source: string, options: ResolveOptions = {}): Promise<string> {
  if (typeof source !== "string" || source.trim() === "")
    throw new TypeError("model must be a file path or an hf: URI");
  if (!isRemoteModelUri(source)) return path.resolve(source);
  const { resolveModelFile } = await import("node-llama-cpp");
  const common = { directory: options.directory, cli: options.progress ?? false, onProgress: options.onProgress };
  try {
    return await resolveModelFile(source, { ...common, download: false }); // already in the cache
  } catch {
    // not cached: download below
  }
  // node-llama-cpp's resolver waits indefinitely on a network that drops packets: check the host first.
  await probeHost(source, options.probeTimeoutMs ?? 15_000);
  try {
    return await resolveModelFile(source, common);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`could not download model ${source}: ${why}`);
  }
}

function hostOf(source: string): string {
  if (/^https?:\/\//i.test(source)) return new URL(source).origin;
  return "https://huggingface.co";
}

async function probeHost(source: string, timeoutMs: number): Promise<void> {
  const origin = hostOf(source);
  try {
    await fetch(origin, { method: "HEAD", signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const why =
      e instanceof Error && e.name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : e instanceof Error
          ? e.cause instanceof Error
            ? e.cause.message
            : e.message
          : String(e);
    throw new Error(
      `cannot download model ${source}: ${origin} is unreachable (${why}); download the GGUF file elsewhere and ` +
        "pass its path",
    );
  }
}
