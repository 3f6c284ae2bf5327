// Loads the native addon (build/Release/minedraft.node, else the prebuilt one: ./binaries.mjs) and initialises llama.cpp once,
// loading the ggml backends from the same folder as the libraries the addon linked.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type GpuBackendStatus, loadGpuBackends, parseGpuPreference } from "./gpu-backends.js";
import type { NativeAddon } from "./types.js";
import { addonPath as findAddon } from "./binaries.mjs";
import { libDir } from "./llama-paths.mjs";

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export type LogLevel = "silent" | "error" | "warn" | "info" | "debug";
const LOG_LEVELS: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

let addon: NativeAddon | undefined;
let libDirUsed: string | undefined;
let gpuStatus: GpuBackendStatus[] = [];

function addonPath(): string {
  // An alternative build of the addon (e.g. the AddressSanitizer build of scripts/asan-check.sh).
  const override = process.env.MINEDRAFT_ADDON_PATH;
  if (override) {
    const p = path.resolve(override);
    if (!existsSync(p)) throw new Error(`MINEDRAFT_ADDON_PATH points to ${p}, which does not exist`);
    return p;
  }
  // build/Release/minedraft.node when compiled here, else the prebuilt binary (prebuilds/<platform>-<arch>/)
  return findAddon("minedraft", packageRoot);
}

/** The folder holding the llama.cpp / ggml libraries in use (prebuilt or from-source build). */
export async function llamaLibDir(): Promise<string> {
  return libDir();
}

let loading: Promise<NativeAddon> | undefined;

async function initialise(logLevel: LogLevel): Promise<NativeAddon> {
  const require = createRequire(import.meta.url);
  const mod = require(addonPath()) as NativeAddon;
  libDirUsed = mod.init({ libDir: await llamaLibDir(), logLevel: LOG_LEVELS[logLevel] });
  gpuStatus = await loadGpuBackends(mod, parseGpuPreference(process.env.MINEDRAFT_GPU));
  addon = mod;
  return mod;
}

/** The addon, initialised once (backends loaded). Safe to call many times, concurrently too. */
export async function loadAddon(options: { logLevel?: LogLevel } = {}): Promise<NativeAddon> {
  loading ??= initialise(options.logLevel ?? "silent").catch((e) => {
    loading = undefined; // let a later call retry (e.g. after the addon is built)
    throw e;
  });
  const mod = await loading;
  if (options.logLevel) setLogLevel(options.logLevel);
  return mod;
}

export function setLogLevel(level: LogLevel): void {
  const n = LOG_LEVELS[level];
  if (n === undefined)
    throw new RangeError(`logLevel must be one of ${Object.keys(LOG_LEVELS).join(", ")}, got ${String(level)}`);
  addon?.setLogLevel(n);
}

/** What became of node-llama-cpp's prebuilt GPU backends (loaded, or why not). */
export function gpuBackendStatus(): GpuBackendStatus[] {
  return gpuStatus;
}

export function loadedLibDir(): string | undefined {
  return libDirUsed;
}
