// Where minedraft caches what it makes (the synthetic model pairs of `demo`, `synth` and ensureSyntheticPair):
// a per-user folder that survives reinstalls, never a folder inside the package.
import { homedir } from "node:os";
import path from "node:path";

export interface CacheDirInputs {
  env: Record<string, string | undefined>;
  platform: NodeJS.Platform;
  home: string;
}

/**
 * The cache folder for these inputs (a pure function; cacheDir() applies it to this process):
 * $MINEDRAFT_CACHE; else $XDG_CACHE_HOME/minedraft (when absolute, as the XDG spec asks); else the platform's
 * per-user cache folder: ~/Library/Caches/minedraft (macOS), %LOCALAPPDATA%\minedraft\Cache (Windows),
 * ~/.cache/minedraft (Linux and the rest).
 */
export function resolveCacheDir({ env, platform, home }: CacheDirInputs): string {
  const p = platform === "win32" ? path.win32 : path.posix;
  if (env.MINEDRAFT_CACHE) return p.resolve(env.MINEDRAFT_CACHE);
  if (env.XDG_CACHE_HOME && p.isAbsolute(env.XDG_CACHE_HOME)) return p.join(env.XDG_CACHE_HOME, "minedraft");
  if (platform === "darwin") return p.join(home, "Library", "Caches", "minedraft");
  if (platform === "win32") return p.join(env.LOCALAPPDATA || p.join(home, "AppData", "Local"), "minedraft", "Cache");
  return p.join(home, ".cache", "minedraft");
}

/** This process's cache folder (see resolveCacheDir). */
export function cacheDir(): string {
  return resolveCacheDir({ env: process.env, platform: process.platform, home: homedir() });
}
