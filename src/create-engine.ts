// createEngine(): loads the target and draft models, creates one context (and one native worker
// thread) per model with a thread placement that never oversubscribes the cores, checks that the
// vocabularies are compatible, and returns an Engine running the chosen schedule.
import { Engine } from "./engine/engine.js";
import type { EngineOptions, Mode } from "./engine/types.js";
import { type LogLevel, loadAddon } from "./native/addon.js";
import { NativeBackend } from "./native/backend.js";
import { LlamaContext } from "./native/context.js";
import { LlamaModel } from "./native/model.js";
import { coreCount, defaultThreads } from "./native/threads.js";
import { resolveModelSource } from "./models/resolve.js";

export interface ModelPlacement {
  /** a GGUF path or an hf: URI, or an already loaded model (not disposed by the engine) */
  model: string | LlamaModel;
  /** "cpu", or a device name such as "CUDA0", "Vulkan0", "Metal" (see devices()) */
  device?: string;
  /** layers offloaded to the GPU (-1 = all) */
  gpuLayers?: number;
  /** CPU threads of this model's context (default: see threadPolicy) */
  threads?: number;
}

export interface CreateEngineOptions extends EngineOptions {
  target: ModelPlacement;
  /** required for sd and psd */
  draft?: ModelPlacement;
  /** tokens per sequence (prompt + generation); default 2048 */
  contextSize?: number;
  /** one KV buffer for all sequences instead of one per sequence (default false) */
  kvUnified?: boolean;
  flashAttention?: "auto" | "on" | "off";
  /** persistent ggml threadpools whose threads sleep between graphs (default: on for contexts with > 1 thread) */
  threadpool?: boolean;
  logLevel?: LogLevel;
}

export interface Placement {
  mode: Mode;
  cores: number;
  targetThreads: number;
  draftThreads: number;
  /** draft and target run at the same time (psd) */
  concurrent: boolean;
  /** target + draft threads exceed the cores while running concurrently */
  oversubscribed: boolean;
  targetDevice: string;
  draftDevice: string;
  sequences: number;
}

export class MinedraftEngine extends Engine {
  constructor(
    backend: NativeBackend,
    options: EngineOptions,
    readonly placement: Placement,
  ) {
    super(backend, options);
  }
}

function isGpuDevice(p: ModelPlacement | undefined): boolean {
  if (!p) return false;
  if (p.device && p.device.toLowerCase() !== "cpu") return true;
  return false;
}

export async function createEngine(options: CreateEngineOptions): Promise<MinedraftEngine> {
  if (!options || typeof options !== "object") throw new TypeError("createEngine(options): options must be an object");
  const mode = options.mode ?? "psd";
  if (!["ar", "sd", "psd"].includes(mode)) throw new RangeError(`mode must be "ar", "sd" or "psd", got ${JSON.stringify(mode)}`);
  if (!options.target?.model) throw new TypeError("createEngine: target.model is required (a GGUF path or hf: URI)");
  if (mode !== "ar" && !options.draft?.model) throw new TypeError(`createEngine: mode "${mode}" needs a draft model (draft.model)`);
  const batchSize = options.batchSize ?? 4;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be an integer >= 1, got ${batchSize}`);
  const contextSize = options.contextSize ?? 2048;
  if (!Number.isInteger(contextSize) || contextSize < 16) throw new RangeError(`contextSize must be an integer >= 16, got ${contextSize}`);
  await loadAddon({ logLevel: options.logLevel });

  const sequences = mode === "psd" ? 2 * batchSize : batchSize;
  const cores = coreCount();
  const plan = defaultThreads({ concurrent: mode === "psd", cores, targetOnGpu: isGpuDevice(options.target), draftOnGpu: isGpuDevice(options.draft) });
  const targetThreads = options.target.threads ?? plan.target;
  const draftThreads = options.draft?.threads ?? plan.draft;

  const owned: LlamaModel[] = [];
  const contexts: LlamaContext[] = [];
  const load = async (p: ModelPlacement): Promise<LlamaModel> => {
    if (typeof p.model !== "string") return p.model;
    const m = await LlamaModel.load(await resolveModelSource(p.model), { device: p.device, gpuLayers: p.gpuLayers, logLevel: options.logLevel });
    owned.push(m);
    return m;
  };
  try {
    const [targetModel, draftModel] = await Promise.all([load(options.target), mode !== "ar" && options.draft ? load(options.draft) : undefined]);
    if (draftModel) {
      const why = targetModel.incompatibilityWith(draftModel);
      if (why) throw new Error(`the draft model cannot draft for the target: ${why}`);
    }
    const ctxOpts = { contextSize, sequences, batchSize: Math.max(512, sequences * 33), kvUnified: options.kvUnified, flashAttention: options.flashAttention, threadpool: options.threadpool };
    const targetContext = await LlamaContext.create(targetModel, { ...ctxOpts, threads: targetThreads });
    contexts.push(targetContext);
    const draftContext = draftModel ? await LlamaContext.create(draftModel, { ...ctxOpts, threads: draftThreads }) : undefined;
    if (draftContext) contexts.push(draftContext);
    const concurrent = mode === "psd";
    // Two CPU contexts that together want more threads than there are cores must take turns.
    const cpuThreadsAtOnce = (isGpuDevice(options.target) ? 0 : targetThreads) + (draftModel && !isGpuDevice(options.draft) ? draftThreads : 0);
    const backend = new NativeBackend(targetModel, targetContext, draftModel, draftContext, owned, concurrent || cpuThreadsAtOnce <= cores);
    const placement: Placement = {
      mode,
      cores,
      targetThreads,
      draftThreads: draftModel ? draftThreads : 0,
      concurrent,
      oversubscribed: concurrent ? targetThreads + draftThreads > cores : Math.max(targetThreads, draftThreads) > cores,
      targetDevice: options.target.device ?? "default",
      draftDevice: options.draft?.device ?? "default",
      sequences,
    };
    return new MinedraftEngine(backend, { ...options, mode, batchSize }, placement);
  } catch (e) {
    await Promise.allSettled(contexts.map((c) => c.dispose()));
    for (const m of owned) m.dispose();
    throw e;
  }
}
