// minedraft: batch-parallel speculative decoding (MineDraft PSD) for local GGUF models.
export {
  createEngine,
  MinedraftEngine,
  type CreateEngineOptions,
  type ModelPlacement,
  type DraftPlacement,
  type NgramDraft,
  type Placement,
} from "./create-engine.js";
export {
  Engine,
  AbortError,
  isAbortError,
  ENGINE_DEFAULTS,
  MAX_DRAFT_TOKENS,
  OptionRangeError,
  OptionTypeError,
  optionOf,
} from "./engine/index.js";
export type * from "./engine/types.js";
export type { ChatMessage, ChatOptions, EngineLoad } from "./engine/engine.js";
export { LlamaModel, type LoadModelOptions, type ModelInfo as LoadedModelInfo } from "./native/model.js";
export { LlamaContext, type ContextOptions } from "./native/context.js";
export { NativeBackend } from "./native/backend.js";
export {
  loadAddon,
  setLogLevel,
  gpuBackendStatus,
  rpcServerStatus,
  configureBackends,
  type BackendOptions,
  type LogLevel,
} from "./native/addon.js";
export type { GpuBackendStatus, GpuPreference } from "./native/gpu-backends.js";
export type { RpcServerStatus } from "./native/rpc.js";
export { defaultPlacement, type DevicePlacement } from "./native/placement.js";
export { readGgufHeader, GgufError } from "./native/gguf.js";
export { defaultThreads, coreCount } from "./native/threads.js";
export { resolveModelSource, isRemoteModelUri } from "./models/resolve.js";
export { cacheDir, resolveCacheDir, type CacheDirInputs } from "./common/cache-dir.js";
export {
  synthesizePair,
  ensureSyntheticPair,
  SYNTH_PRESETS,
  SYNTH_PRESET_NAMES,
  type SynthPresetName,
  type SynthDtype,
  type SynthesizeOptions,
} from "./synth/index.js";

/** Backends and devices llama.cpp found (CPU, CUDA, Vulkan, Metal). */
export async function devices() {
  const { loadAddon } = await import("./native/addon.js");
  return (await loadAddon()).devices();
}
export {
  createServer,
  isLoopback,
  type ServerOptions,
  type ListenOptions,
  type MinedraftServer,
  type ChatTemplateSource,
} from "./server/index.js";
