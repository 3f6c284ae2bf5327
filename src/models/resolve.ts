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
}

/** A local file path for a model source. Remote URIs are downloaded if not cached yet. */
export async function resolveModelSource(source: string, options: ResolveOptions = {}): Promise<string> {
  if (typeof source !== "string" || source.trim() === "") throw new TypeError("model must be a file path or an hf: URI");
  if (!isRemoteModelUri(source)) return path.resolve(source);
  const { resolveModelFile } = await import("node-llama-cpp");
  try {
    return await resolveModelFile(source, { directory: options.directory, cli: options.progress ?? false, onProgress: options.onProgress });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`could not resolve model ${source} (is the network reachable, and does the file exist?): ${why}`);
  }
}
