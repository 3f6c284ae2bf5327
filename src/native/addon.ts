// Loads the native addon (build/Release/minedraft.node, else the prebuilt one: ./binaries.mjs) and initialises llama.cpp once,
// loading the ggml backends from the same folder as the libraries the addon linked.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkOptions, OptionRangeError, type Schema } from "../common/validate.js";
import { type GpuBackendStatus, type GpuPreference, loadGpuBackends, parseGpuPreference } from "./gpu-backends.js";
import { addRpcServers, checkRpcList, checkRpcRemote, type RpcServerStatus } from "./rpc.js";
import type { NativeAddon } from "./types.js";
import { addonPath as findAddon } from "./binaries.mjs";
import { libDir, sourceBuildLibDir } from "./llama-paths.mjs";

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export type LogLevel = "silent" | "error" | "warn" | "info" | "debug";
const LOG_LEVELS: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

let addon: NativeAddon | undefined;
let libDirUsed: string | undefined;
let gpuStatus: GpuBackendStatus[] = [];
let rpcStatus: RpcServerStatus[] = [];

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

/** Which GPU backends load: process-wide, fixed when the first model (or devices()) loads the addon. */
export interface BackendOptions {
  /** which prebuilt GPU backend to try (default: MINEDRAFT_GPU, else "auto": CUDA, then Vulkan) */
  gpu?: GpuPreference;
  /**
   * Vulkan devices to use, by index in the Vulkan loader's order (`vulkaninfo --summary`). Default: ggml's
   * choice, every discrete and integrated GPU. Naming devices is how a CPU-type device such as Mesa's llvmpipe
   * (a software rasteriser ggml skips) is used: it runs the GPU code path on a machine without a GPU.
   */
  vulkanDevices?: readonly number[];
  /**
   * ggml rpc-servers (HOST:PORT) whose devices are added as RPC0, RPC1, ... in this order, for a model's
   * `device` (docs/scaling.md). Needs a build with the RPC backend: npm run build:source -- --rpc.
   */
  rpc?: readonly string[];
  /** accept rpc servers that are not on a loopback address (the protocol is unauthenticated and unencrypted) */
  rpcAllowRemote?: boolean;
  /**
   * longest wait on one rpc-server socket operation, in ms (default: MINEDRAFT_RPC_TIMEOUT_MS, else 120 000; 0: none,
   * as llama.cpp). A server that
   * stops answering (hung, stopped, cut off) then fails the requests on it instead of holding them for ever. It must
   * exceed the slowest single graph the server computes (a long prompt's prefill on a slow remote device).
   */
  rpcTimeoutMs?: number;
}

export const DEFAULT_RPC_TIMEOUT_MS = 120_000;

export const BACKEND_OPTIONS: Schema = {
  gpu: { kind: "enum", values: ["auto", "cuda", "vulkan", "off"] },
  vulkanDevices: {
    kind: "custom",
    expected: "a non-empty array of distinct device indices (integers >= 0)",
    check: (v: unknown) =>
      !Array.isArray(v)
        ? "type"
        : v.length === 0 || new Set(v).size !== v.length || !v.every((i) => Number.isInteger(i) && i >= 0)
          ? "range"
          : null,
  },
  rpc: {
    kind: "custom",
    expected: 'an array of distinct HOST:PORT strings, e.g. ["127.0.0.1:50052"]',
    check: checkRpcList,
  },
  rpcAllowRemote: { kind: "boolean" },
  rpcTimeoutMs: { kind: "integer", min: 0, max: 86_400_000 },
};

let backendOptions: BackendOptions = {};

const sameBackends = (a: BackendOptions, b: BackendOptions) =>
  a.gpu === b.gpu &&
  String(a.vulkanDevices ?? "") === String(b.vulkanDevices ?? "") &&
  String(a.rpc ?? "") === String(b.rpc ?? "") &&
  a.rpcTimeoutMs === b.rpcTimeoutMs;

/**
 * Chooses the GPU backends before the addon loads. Calling it again with the same choice is fine; a different
 * choice after the first model loaded throws (ggml registers backends once per process).
 */
export function configureBackends(options: BackendOptions): void {
  checkOptions(options, BACKEND_OPTIONS, "backends");
  if (options.rpc) checkRpcRemote(options.rpc, options.rpcAllowRemote === true);
  const next = {
    gpu: options.gpu,
    vulkanDevices: options.vulkanDevices ? [...options.vulkanDevices] : undefined,
    ...(options.rpc?.length ? { rpc: [...options.rpc] } : {}),
    ...(options.rpc?.length && options.rpcTimeoutMs !== undefined ? { rpcTimeoutMs: options.rpcTimeoutMs } : {}),
  };
  if (loading && !sameBackends(backendOptions, next))
    throw new OptionRangeError(
      "backends",
      "the GPU backends are chosen once per process, before the first model loads: call configureBackends() " +
        `first (in use: ${JSON.stringify(backendOptions)}, asked: ${JSON.stringify(next)})`,
    );
  backendOptions = next;
}

async function initialise(logLevel: LogLevel): Promise<NativeAddon> {
  const require = createRequire(import.meta.url);
  const mod = require(addonPath()) as NativeAddon;
  libDirUsed = mod.init({ libDir: await llamaLibDir(), logLevel: LOG_LEVELS[logLevel] });
  // ggml-vulkan reads its device list from the environment when it registers, and nowhere else
  if (backendOptions.vulkanDevices) process.env.GGML_VK_VISIBLE_DEVICES = backendOptions.vulkanDevices.join(",");
  const preference =
    backendOptions.gpu ?? (backendOptions.vulkanDevices ? "vulkan" : parseGpuPreference(process.env.MINEDRAFT_GPU));
  // RPC first: a server that is down fails here before any GPU backend loads, so a retry loads nothing twice
  // read by the patched ggml RPC client at each connect (scripts/patches/ggml-rpc-lost-server.patch)
  // (the option, else a valid MINEDRAFT_RPC_TIMEOUT_MS already set, else the default)
  if (backendOptions.rpc) {
    const env = process.env.MINEDRAFT_RPC_TIMEOUT_MS;
    const fromEnv = env !== undefined && /^\d+$/.test(env) ? Number(env) : undefined;
    process.env.MINEDRAFT_RPC_TIMEOUT_MS = String(backendOptions.rpcTimeoutMs ?? fromEnv ?? DEFAULT_RPC_TIMEOUT_MS);
  }
  rpcStatus = await addRpcServers(mod, backendOptions.rpc ?? []);
  // a from-source build links the backends it was built with (--gpu cuda|vulkan|metal); node-llama-cpp's prebuilt
  // modules belong to its prebuilt libraries, not to these
  gpuStatus = await loadGpuBackends(mod, libDirUsed === sourceBuildLibDir ? "source-build" : preference);
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

/** The RPC servers whose devices were added (configureBackends' rpc). */
export function rpcServerStatus(): RpcServerStatus[] {
  return rpcStatus;
}

/** What became of node-llama-cpp's prebuilt GPU backends (loaded, or why not). */
export function gpuBackendStatus(): GpuBackendStatus[] {
  return gpuStatus;
}

export function loadedLibDir(): string | undefined {
  return libDirUsed;
}
