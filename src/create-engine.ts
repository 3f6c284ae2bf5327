// createEngine(): loads the target and draft models, creates one context (and one native worker
// thread) per model with a thread placement that never oversubscribes the cores, checks that the
// vocabularies are compatible, and returns an Engine running the chosen schedule.
import { Engine } from "./engine/engine.js";
import { checkModeOptions, ENGINE_DEFAULTS, ENGINE_OPTIONS, LIMITS } from "./engine/options.js";
import { checkOptions, integer, OptionRangeError, OptionTypeError, type Rule, type Schema } from "./common/validate.js";
import type { ThreadPlacement } from "./engine/backend.js";
import type { EngineOptions, Mode } from "./engine/types.js";
import { type LogLevel, loadAddon } from "./native/addon.js";
import { NativeBackend } from "./native/backend.js";
import { LlamaContext } from "./native/context.js";
import { LlamaModel } from "./native/model.js";
import { AS_LOADED, onGpu, resolvePlacement, type ResolvedPlacement } from "./native/placement.js";
import type { DeviceInfo } from "./native/types.js";
import { coreCount, rowThreads, threadPlacements } from "./native/threads.js";
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

export interface CreateEngineOptions extends Omit<EngineOptions, "mode"> {
  /** default: ar without a draft; with one, auto where the models share the CPU cores, psd with the target on a GPU (defaultMode) */
  mode?: Mode;
  target: ModelPlacement;
  /** required for sd and psd */
  draft?: ModelPlacement;
  /** tokens per sequence (prompt + generation); default 2048 */
  contextSize?: number;
  /**
   * one KV buffer for all sequences instead of one per sequence. Default: unified for a model on a
   * GPU (its kernels give batch-shape-dependent rounding anyway, and a pass over many KV streams
   * measured slower there), one stream per sequence on the CPU (batched greedy output stays
   * bit-identical to single-sequence decoding).
   */
  kvUnified?: boolean;
  flashAttention?: "auto" | "on" | "off";
  /** persistent ggml threadpools whose threads sleep between graphs (default: on for contexts with > 1 thread) */
  threadpool?: boolean;
  /** microseconds each model's worker spins for its next job after one that followed a result that soon, instead of sleeping (0 = always sleep; default 250, see ContextOptions.spinMicros) */
  spinMicros?: number;
  logLevel?: LogLevel;
}

export interface Placement {
  mode: Mode;
  cores: number;
  targetThreads: number;
  draftThreads: number;
  /** draft and target run at the same time (psd; auto when it may overlap) */
  concurrent: boolean;
  /** target + draft threads exceed the cores while running concurrently */
  oversubscribed: boolean;
  /** "cpu", a device name, or "as loaded" for a model passed in already loaded */
  targetDevice: string;
  draftDevice: string;
  /** why the models are where they are, e.g. "target on CUDA0, draft on the CPU cores so drafting overlaps verification" */
  deviceNote: string;
  /** KV layout of each context: one buffer for all sequences (true) or one stream per sequence */
  kvUnified: { target: boolean; draft: boolean };
  sequences: number;
  /**
   * auto: the placements it switches between at run time (targetThreads / draftThreads above are
   * the sequential one, which it starts with). `overlapped` is null when the threads are pinned
   * to counts that together exceed the cores: auto then never overlaps.
   */
  threadPlans?: { sequential: ThreadPlacement; overlapped: ThreadPlacement | null };
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

/**
 * The mode when none is asked for: ar without a draft; with one, auto where the two models share the
 * CPU cores (one request on 2 cores: auto 1.31x the best fixed mode, psd 0.68x ar, docs/performance.md
 * 5.9), psd with the target on a GPU (the fastest fixed mode there; auto's GPU figure under unified KV
 * predates its switching changes and awaits a re-measurement).
 */
export function defaultMode(hasDraft: boolean, targetOnGpu: boolean): Mode {
  return !hasDraft ? "ar" : targetOnGpu ? "psd" : "auto";
}

/** Devices of both models: the user's, else the defaults of resolvePlacement() over the devices found. */
function placeDevices(devices: readonly DeviceInfo[], options: CreateEngineOptions, hasDraft: boolean, overlapped: boolean): ResolvedPlacement {
  // a model passed in already loaded stays where it was loaded
  const given = (p: ModelPlacement | undefined) => (p && typeof p.model !== "string" ? (p.device ?? p.model.device ?? AS_LOADED) : p?.device);
  return resolvePlacement(devices, { target: given(options.target), draft: given(options.draft), hasDraft, overlapped });
}

/** ggml's limit on the threads of a graph (GGML_MAX_N_THREADS) */
const GGML_MAX_THREADS = 512;
/** llama.cpp's limit on the tokens of one context, all sequences together */
const MAX_CONTEXT_TOKENS = 1 << 22;

const modelRule: Rule = {
  kind: "custom",
  expected: "a GGUF path or hf: URI (a non-empty string), or a LlamaModel",
  check: (v) => (v instanceof LlamaModel || (typeof v === "string" && v !== "") ? null : typeof v === "string" ? "range" : "type"),
};
const placementRule: Rule = {
  kind: "object",
  fields: { model: modelRule, device: { kind: "string", nonEmpty: true }, gpuLayers: integer(-1, 100_000), threads: integer(1, GGML_MAX_THREADS) },
};

/** createEngine()'s options: the engine's, the two models' placements and the contexts'. */
const CREATE_ENGINE_OPTIONS: Schema = {
  ...ENGINE_OPTIONS,
  target: placementRule,
  draft: placementRule,
  contextSize: integer(16, MAX_CONTEXT_TOKENS),
  kvUnified: { kind: "boolean" },
  flashAttention: { kind: "enum", values: ["auto", "on", "off"] },
  threadpool: { kind: "boolean" },
  spinMicros: integer(0, 100_000),
  logLevel: { kind: "enum", values: ["silent", "error", "warn", "info", "debug"] },
};

/**
 * Every option checked before anything loads: its type and range, then what depends on the mode
 * (a draft model, the sequences the batch holds, the context they share).
 */
function checkCreateOptions(options: CreateEngineOptions): void {
  checkOptions(options, CREATE_ENGINE_OPTIONS, "createEngine options");
  if (options.target === undefined || options.target.model === undefined) throw new OptionTypeError("target.model", "target.model is required: a GGUF path or hf: URI, or a LlamaModel");
  const requested = options.mode;
  if (requested !== undefined && requested !== "ar" && options.draft?.model === undefined) throw new OptionTypeError("draft.model", `mode "${requested}" needs a draft model: draft.model is required`);
}

/** What depends on the mode (known once the devices are): its own options, and the sequences it holds must fit llama.cpp's limits. */
function checkForMode(options: CreateEngineOptions, mode: Mode, batchSize: number, contextSize: number): void {
  checkModeOptions(options, mode);
  const paired = mode === "psd" || mode === "auto";
  const maxBatch = paired ? LIMITS.sequences / 2 : LIMITS.sequences;
  if (batchSize > maxBatch) {
    throw new OptionRangeError("batchSize", `batchSize must be an integer in 1..${maxBatch} in mode ${mode} (it holds ${paired ? "2 x batchSize" : "batchSize"} sequences, at most ${LIMITS.sequences}), got ${batchSize}`);
  }
  const sequences = paired ? 2 * batchSize : batchSize;
  const maxContext = Math.floor(MAX_CONTEXT_TOKENS / sequences);
  if (contextSize > maxContext) {
    throw new OptionRangeError("contextSize", `contextSize must be an integer in 16..${maxContext} with ${sequences} sequences (mode ${mode}, batchSize ${batchSize}: together at most ${MAX_CONTEXT_TOKENS} tokens), got ${contextSize}`);
  }
}

/** The options the Engine itself takes. */
function engineOptionsOf(options: CreateEngineOptions, mode: Mode, batchSize: number): EngineOptions {
  const picked: Record<string, unknown> = { mode, batchSize };
  for (const key of Object.keys(ENGINE_OPTIONS)) {
    const v = (options as unknown as Record<string, unknown>)[key];
    if (v !== undefined && key !== "mode" && key !== "batchSize") picked[key] = v;
  }
  return picked as unknown as EngineOptions;
}

export async function createEngine(options: CreateEngineOptions): Promise<MinedraftEngine> {
  checkCreateOptions(options);
  const requested = options.mode;
  const hasDraft = requested !== "ar" && Boolean(options.draft?.model);
  const batchSize = options.batchSize ?? ENGINE_DEFAULTS.batchSize;
  const contextSize = options.contextSize ?? 2048;
  const addon = await loadAddon({ logLevel: options.logLevel });

  const cores = coreCount();
  const found = addon.devices();
  // psd and auto place the models alike (both may overlap the phases), so the default is placed first
  const devices = placeDevices(found, options, hasDraft, requested === undefined ? hasDraft : requested === "psd" || requested === "auto");
  const targetOnGpu = onGpu(devices.targetDevice, found);
  const mode = requested ?? defaultMode(hasDraft, targetOnGpu);
  checkForMode(options, mode, batchSize, contextSize);
  const auto = mode === "auto";
  const sequences = mode === "psd" || auto ? 2 * batchSize : batchSize;
  const draftOnGpu = mode !== "ar" && onGpu(devices.draftDevice, found);
  const pinned = { target: options.target.threads, draft: options.draft?.threads };
  // both placements on c cores (the pinned counts hold): the full machine now, fewer while other work holds cores
  const replan = (c: number) => {
    const p = threadPlacements({ cores: c, targetOnGpu, draftOnGpu, pinned });
    return { sequential: p.sequential, overlapped: p.overlapFits ? p.overlapped : null };
  };
  const full = threadPlacements({ cores, targetOnGpu, draftOnGpu, pinned });
  // auto switches between the sequential and the overlapped placement and starts sequential;
  // psd runs at the overlapped one, ar and sd at the sequential one
  const start = mode === "psd" ? full.overlapped : full.sequential;
  const targetThreads = start.target;
  const draftThreads = start.draft;
  const threadPlans: Placement["threadPlans"] = auto ? replan(cores) : undefined;
  for (const [name, v] of [["target.threads", targetThreads], ["draft.threads", draftThreads]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
  }

  const owned: LlamaModel[] = [];
  const contexts: LlamaContext[] = [];
  const load = async (p: ModelPlacement, device: string): Promise<LlamaModel> => {
    if (typeof p.model !== "string") return p.model;
    const m = await LlamaModel.load(await resolveModelSource(p.model), { device, gpuLayers: p.gpuLayers, logLevel: options.logLevel });
    owned.push(m);
    return m;
  };
  try {
    const [targetModel, draftModel] = await Promise.all([
      load(options.target, devices.targetDevice),
      mode !== "ar" && options.draft ? load(options.draft, devices.draftDevice) : undefined,
    ]);
    if (draftModel) {
      const why = targetModel.incompatibilityWith(draftModel);
      if (why) throw new Error(`the draft model cannot draft for the target: ${why}`);
    }
    const ctxOpts = { contextSize, sequences, batchSize: Math.max(512, sequences * 33), flashAttention: options.flashAttention, threadpool: options.threadpool, spinMicros: options.spinMicros };
    const kvUnified = { target: options.kvUnified ?? targetOnGpu, draft: options.kvUnified ?? draftOnGpu };
    // auto: each threadpool is sized for the larger of its two placements
    const maxOf = (role: "target" | "draft", n: number) =>
      threadPlans ? Math.max(threadPlans.sequential[role], threadPlans.overlapped?.[role] ?? 1) : n;
    // ar: the target is alone on its cores, so its pool's threads may spin between graphs (poll 1, about a millisecond)
    // CPU threads beside each model's sampled rows: the other model's decode threads on the CPU, or,
    // with both models on a GPU (their jobs may overlap), the other's share of the cores for its rows
    const bothOnGpu = draftModel !== undefined && targetOnGpu && draftOnGpu;
    const draftCpuThreads = !draftModel ? 0 : bothOnGpu ? Math.floor(cores / 2) : draftOnGpu ? 0 : maxOf("draft", draftThreads);
    const targetCpuThreads = bothOnGpu ? Math.ceil(cores / 2) : targetOnGpu ? 0 : maxOf("target", targetThreads);
    const targetContext = await LlamaContext.create(targetModel, { ...ctxOpts, kvUnified: kvUnified.target, threads: targetThreads, threadsMax: maxOf("target", targetThreads), threadpoolPoll: mode === "ar" ? 1 : 0, rowThreads: rowThreads(targetOnGpu, draftCpuThreads, cores) });
    contexts.push(targetContext);
    const draftContext = draftModel ? await LlamaContext.create(draftModel, { ...ctxOpts, kvUnified: kvUnified.draft, threads: draftThreads, threadsMax: maxOf("draft", draftThreads), rowThreads: rowThreads(draftOnGpu, targetCpuThreads, cores) }) : undefined;
    if (draftContext) contexts.push(draftContext);
    const concurrent = mode === "psd" || (auto && threadPlans?.overlapped != null);
    const backend = new NativeBackend(
      targetModel,
      targetContext,
      draftModel,
      draftContext,
      owned,
      // whether the workers may overlap follows their current threads (NativeThreadOptions below)
      undefined,
      { plans: threadPlans ?? replan(cores), cores, targetOnGpu, draftOnGpu, replan, ...(auto ? {} : { schedule: mode === "psd" ? ("overlapped" as const) : ("sequential" as const) }) },
    );
    const placement: Placement = {
      mode,
      cores,
      targetThreads,
      draftThreads: draftModel ? draftThreads : 0,
      concurrent,
      oversubscribed: mode === "psd" ? targetThreads + draftThreads > cores : Math.max(targetThreads, draftThreads) > cores,
      targetDevice: devices.targetDevice,
      draftDevice: draftModel ? devices.draftDevice : "none",
      deviceNote: devices.note,
      kvUnified: { target: kvUnified.target, draft: draftModel ? kvUnified.draft : false },
      sequences,
      ...(threadPlans ? { threadPlans } : {}),
    };
    return new MinedraftEngine(backend, engineOptionsOf(options, mode, batchSize), placement);
  } catch (e) {
    await Promise.allSettled(contexts.map((c) => c.dispose()));
    for (const m of owned) m.dispose();
    throw e;
  }
}
