// createEngine(): checks the options, plans where and how the two models run (plan-placement.ts:
// devices, default mode, threads that never oversubscribe the cores, KV layout), loads the models,
// checks that their vocabularies are compatible, creates one context (and one native worker thread)
// per model, and returns an Engine running the chosen schedule with the placement as its report.
import { Engine } from "./engine/engine.js";
import { checkModeOptions, ENGINE_DEFAULTS, ENGINE_OPTIONS, LIMITS } from "./engine/options.js";
import { checkOptions, integer, OptionRangeError, OptionTypeError, type Rule, type Schema } from "./common/validate.js";
import type { EngineOptions, Mode, NgramOptions } from "./engine/types.js";
import { NGRAM_MAX_N } from "./engine/ngram.js";
import { BACKEND_OPTIONS, type BackendOptions, configureBackends, type LogLevel, loadAddon } from "./native/addon.js";
import { NativeBackend } from "./native/backend.js";
import { LlamaContext } from "./native/context.js";
import { LlamaModel, tensorSplitProblem } from "./native/model.js";
import { planPlacement, type Placement, type PlacementOptions, type PlacementPlan } from "./native/plan-placement.js";
import { coreCount } from "./native/threads.js";
import { resolveModelSource } from "./models/resolve.js";

export { defaultMode, type Placement } from "./native/plan-placement.js";

export interface ModelPlacement {
  /** a GGUF path or an hf: URI, or an already loaded model (not disposed by the engine) */
  model: string | LlamaModel;
  /**
   * "cpu", or a device name such as "CUDA0", "Vulkan0", "Metal", "RPC0" (see devices()); several separated by commas
   * split the offloaded layers across them (see tensorSplit)
   */
  device?: string;
  /** layers offloaded to the GPU (-1 = all) */
  gpuLayers?: number;
  /** each device's share of the offloaded layers when device lists several, as llama.cpp's --tensor-split */
  tensorSplit?: readonly number[];
  /**
   * greedy rows take their argmax on the model's device, so one token per row comes back instead of its logits
   * (ContextOptions.deviceArgmax). Default: on for a model whose output layer is on an RPC server that is not on a
   * loopback address; give true for one reached through a tunnel (ssh -L), false to keep the logits copy
   */
  deviceArgmax?: boolean;
  /** CPU threads of this model's context (default: see planPlacement) */
  threads?: number;
}

/**
 * Drafts without a draft model: prompt lookup (n-gram) over each request's prompt and output (modes sd,
 * the default, and auto). Given beside `model` in a ModelPlacement, the two combine: see DraftPlacement.
 */
export interface NgramDraft {
  ngram: NgramOptions;
  model?: undefined;
}

/**
 * A draft model, optionally combined with prompt lookup: where a request's lookup finds a match its
 * tokens are the drafts, elsewhere the model drafts (per request, per step; sd, psd, auto).
 */
export interface DraftPlacement extends ModelPlacement {
  ngram?: NgramOptions;
}

export interface CreateEngineOptions extends Omit<EngineOptions, "mode" | "ngram"> {
  /**
   * default: ar without a draft; with one, auto where the models share the CPU cores, psd with the target on a GPU
   * (defaultMode)
   */
  mode?: Mode;
  target: ModelPlacement;
  /**
   * a draft model (required for psd), `{ ngram: {} }`: prompt lookup drafts (sd, auto) with no draft model, or
   * both (`{ model, ngram: {} }`): lookup first, the model where it finds nothing
   */
  draft?: DraftPlacement | NgramDraft;
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
  /**
   * microseconds each model's worker spins for its next job after one that followed a result that soon, instead of
   * sleeping (0 = always sleep; default 250, see ContextOptions.spinMicros)
   */
  spinMicros?: number;
  logLevel?: LogLevel;
  /** GPU backends (process-wide, chosen before the first model loads; see configureBackends) */
  backends?: BackendOptions;
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

/** ggml's limit on the threads of a graph (GGML_MAX_N_THREADS) */
const GGML_MAX_THREADS = 512;
/** llama.cpp's limit on the tokens of one context, all sequences together */
const MAX_CONTEXT_TOKENS = 1 << 22;

const modelRule: Rule = {
  kind: "custom",
  expected: "a GGUF path or hf: URI (a non-empty string), or a LlamaModel",
  check: (v) =>
    v instanceof LlamaModel || (typeof v === "string" && v !== "") ? null : typeof v === "string" ? "range" : "type",
};
const placementRule: Rule = {
  kind: "object",
  fields: {
    model: modelRule,
    device: { kind: "string", nonEmpty: true },
    gpuLayers: integer(-1, 100_000),
    deviceArgmax: { kind: "boolean" },
    tensorSplit: {
      kind: "custom",
      expected: 'one share >= 0 per device listed in device, e.g. [3, 1] for "RPC0,RPC1"',
      check: (v) => (!Array.isArray(v) ? "type" : null),
    },
    threads: integer(1, GGML_MAX_THREADS),
  },
};
const draftRule: Rule = {
  kind: "object",
  fields: { ...placementRule.fields, ngram: { kind: "object", fields: { maxN: integer(1, NGRAM_MAX_N) } } },
};
const { ngram: _engineNgram, ...engineOptionRules } = ENGINE_OPTIONS;

/** createEngine()'s options: the engine's, the two models' placements and the contexts'. */
const CREATE_ENGINE_OPTIONS: Schema = {
  ...engineOptionRules,
  target: placementRule,
  draft: draftRule,
  contextSize: integer(16, MAX_CONTEXT_TOKENS),
  kvUnified: { kind: "boolean" },
  flashAttention: { kind: "enum", values: ["auto", "on", "off"] },
  threadpool: { kind: "boolean" },
  spinMicros: integer(0, 100_000),
  logLevel: { kind: "enum", values: ["silent", "error", "warn", "info", "debug"] },
  backends: { kind: "object", fields: BACKEND_OPTIONS },
};

/**
 * Every option checked before anything loads: its type and range, then what depends on the mode
 * (a draft model, the sequences the batch holds, the context they share).
 */
function checkCreateOptions(options: CreateEngineOptions): void {
  checkOptions(options, CREATE_ENGINE_OPTIONS, "createEngine options");
  if (options.target === undefined || options.target.model === undefined)
    throw new OptionTypeError("target.model", "target.model is required: a GGUF path or hf: URI, or a LlamaModel");
  for (const role of ["target", "draft"] as const) {
    const p = options[role] as ModelPlacement | undefined;
    const why = p?.tensorSplit && tensorSplitProblem(p.device, p.tensorSplit);
    if (why) throw new OptionRangeError(`${role}.tensorSplit`, `${role}.${why}`);
  }
  const requested = options.mode;
  const ngram = ngramOf(options);
  const model = options.draft?.model !== undefined;
  if (ngram && !model && requested === "psd")
    throw new OptionRangeError(
      "draft.ngram",
      'mode "psd" overlaps a draft model\'s work with verification: with prompt lookup alone use "sd" or "auto"',
    );
  if (!ngram && requested !== undefined && requested !== "ar" && !model)
    throw new OptionTypeError("draft.model", `mode "${requested}" needs a draft model: draft.model is required`);
}

/** The prompt lookup options when the drafts come from it (draft.ngram). */
function ngramOf(options: CreateEngineOptions): NgramOptions | undefined {
  const draft = options.draft as { ngram?: NgramOptions } | undefined;
  return draft?.ngram;
}

/**
 * What depends on the mode (known once the devices are): its own options, and the sequences it holds must fit
 * llama.cpp's limits.
 */
function checkForMode(options: CreateEngineOptions, mode: Mode, batchSize: number, contextSize: number): void {
  checkModeOptions(options, mode);
  const paired = mode === "psd" || mode === "auto";
  const maxBatch = paired ? LIMITS.sequences / 2 : LIMITS.sequences;
  if (batchSize > maxBatch) {
    throw new OptionRangeError(
      "batchSize",
      `batchSize must be an integer in 1..${maxBatch} in mode ${mode} (it holds ` +
        `${paired ? "2 x batchSize" : "batchSize"} sequences, at most ${LIMITS.sequences}), got ${batchSize}`,
    );
  }
  const sequences = paired ? 2 * batchSize : batchSize;
  const maxContext = Math.floor(MAX_CONTEXT_TOKENS / sequences);
  if (contextSize > maxContext) {
    throw new OptionRangeError(
      "contextSize",
      `contextSize must be an integer in 16..${maxContext} with ${sequences} sequences (mode ${mode}, batchSize ` +
        `${batchSize}: together at most ${MAX_CONTEXT_TOKENS} tokens), got ${contextSize}`,
    );
  }
}

/** The options the Engine itself takes. */
function engineOptionsOf(
  options: CreateEngineOptions,
  mode: Mode,
  batchSize: number,
  plan: PlacementPlan,
): EngineOptions {
  const picked: Record<string, unknown> = { mode, batchSize };
  for (const key of Object.keys(ENGINE_OPTIONS)) {
    const v = (options as unknown as Record<string, unknown>)[key];
    if (v !== undefined && key !== "mode" && key !== "batchSize") picked[key] = v;
  }
  // psd's one-request overlap pays where the draft does not take the target's cores (target on a GPU); with
  // both models on the CPU cores the two one-thread workers slow each other more than the overlap hides
  // (docs/performance.md, "One request: post-verify")
  if (mode === "psd" && options.postVerify === undefined)
    picked.postVerify = options.preVerify === true || plan.target.onGpu;
  const ngram = ngramOf(options);
  if (ngram) picked.ngram = { ...ngram };
  return picked as unknown as EngineOptions;
}

/**
 * Both models on their planned devices, loaded at once; a model passed in loaded is used as is, the ones loaded here go
 * to `owned`.
 */
function loadModels(
  options: CreateEngineOptions,
  plan: PlacementPlan,
  owned: LlamaModel[],
): Promise<[LlamaModel, LlamaModel | undefined]> {
  const load = async (p: ModelPlacement, device: string): Promise<LlamaModel> => {
    if (typeof p.model !== "string") return p.model;
    const m = await LlamaModel.load(await resolveModelSource(p.model), {
      device,
      gpuLayers: p.gpuLayers,
      ...(p.tensorSplit ? { tensorSplit: p.tensorSplit } : {}),
      logLevel: options.logLevel,
    });
    owned.push(m);
    return m;
  };
  return Promise.all([
    load(options.target, plan.target.device),
    plan.draft && options.draft?.model !== undefined ? load(options.draft, plan.draft.device) : undefined,
  ]);
}

export async function createEngine(options: CreateEngineOptions): Promise<MinedraftEngine> {
  checkCreateOptions(options);
  if (options.backends) configureBackends(options.backends);
  const addon = await loadAddon({ logLevel: options.logLevel });
  const ngram = ngramOf(options);
  // prompt lookup alone: the target runs alone on its cores, and the schedule is sd unless asked for auto
  const lookupOnly = ngram !== undefined && options.draft?.model === undefined;
  const plan = planPlacement(
    { devices: addon.devices(), cores: coreCount() },
    lookupOnly ? { ...options, mode: options.mode ?? "sd", draft: undefined } : (options as PlacementOptions),
  );
  const { mode, sequences } = plan.report;
  const batchSize = options.batchSize ?? ENGINE_DEFAULTS.batchSize;
  const contextSize = options.contextSize ?? 2048;
  checkForMode(options, mode, batchSize, contextSize);

  const owned: LlamaModel[] = [];
  const contexts: LlamaContext[] = [];
  try {
    const [targetModel, draftModel] = await loadModels(options, plan, owned);
    const why = draftModel && targetModel.incompatibilityWith(draftModel);
    if (why) throw new Error(`the draft model cannot draft for the target: ${why}`);
    const shared = {
      contextSize,
      sequences,
      batchSize: Math.max(512, sequences * 33),
      flashAttention: options.flashAttention,
      threadpool: options.threadpool,
      spinMicros: options.spinMicros,
    };
    const argmax = (p: ModelPlacement | undefined) =>
      p?.deviceArgmax !== undefined ? { deviceArgmax: p.deviceArgmax } : {};
    const targetContext = await LlamaContext.create(targetModel, {
      ...shared,
      ...plan.target.context,
      ...argmax(options.target),
    });
    contexts.push(targetContext);
    const draftContext =
      draftModel && plan.draft
        ? await LlamaContext.create(draftModel, {
            ...shared,
            ...plan.draft.context,
            ...argmax(options.draft as ModelPlacement | undefined),
          })
        : undefined;
    if (draftContext) contexts.push(draftContext);
    // whether the workers may overlap follows their current threads (plan.threads), not the flag left undefined
    const backend = new NativeBackend(
      targetModel,
      targetContext,
      draftModel,
      draftContext,
      owned,
      undefined,
      plan.threads,
    );
    return new MinedraftEngine(backend, engineOptionsOf(options, mode, batchSize, plan), plan.report);
  } catch (e) {
    await Promise.allSettled(contexts.map((c) => c.dispose()));
    for (const m of owned) m.dispose();
    throw e;
  }
}
