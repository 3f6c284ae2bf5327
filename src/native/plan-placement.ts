// Where and how the two models run, decided before anything loads: their devices, the mode when none
// is asked for (it depends on where the target lands), each context's threads and KV layout, and the
// report the engine carries. Pure: the machine comes in as data, so every placement is testable
// without models or an addon.
import type { ThreadPlacement } from "../engine/backend.js";
import { ENGINE_DEFAULTS } from "../engine/options.js";
import type { Mode } from "../engine/types.js";
import type { NativeThreadOptions } from "./backend.js";
import type { ContextOptions } from "./context.js";
import { AS_LOADED, onGpu, resolvePlacement } from "./placement.js";
import { rowThreads, threadPlacements } from "./threads.js";
import type { DeviceInfo } from "./types.js";

/** The report of where and how the models run (MinedraftEngine.placement). */
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
  /**
   * why the models are where they are, e.g. "target on CUDA0, draft on the CPU cores so drafting overlaps verification"
   */
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

/** What the placement depends on besides the options. */
export interface Machine {
  /** the devices llama.cpp found (addon.devices()) */
  devices: readonly DeviceInfo[];
  /** CPU cores the two contexts share (coreCount()) */
  cores: number;
}

/** One model as createEngine's options give it (ModelPlacement): only what placing it reads. */
export interface PlacedModel {
  /** a path or URI, or a model already loaded (it stays on the device it was loaded on) */
  model?: string | { readonly device?: string };
  device?: string;
  threads?: number;
}

/** The options placement reads, already checked by createEngine's validation. */
export interface PlacementOptions {
  mode?: Mode;
  target: PlacedModel;
  draft?: PlacedModel;
  batchSize?: number;
  kvUnified?: boolean;
}

/** One model's device and its context's placement options. */
export interface ModelPlan {
  /** where its model loads ("cpu", a device name, or AS_LOADED for a model passed in loaded) */
  device: string;
  onGpu: boolean;
  context: Required<Pick<ContextOptions, "threads" | "threadsMax" | "threadpoolPoll" | "rowThreads" | "kvUnified">>;
}

export interface PlacementPlan {
  report: Placement;
  target: ModelPlan;
  /** null without a draft (ar) */
  draft: ModelPlan | null;
  /** the backend's runtime thread switching (NativeBackend's `threads`) */
  threads: NativeThreadOptions;
}

/**
 * The mode when none is asked for: ar without a draft; with one, auto where the two models share the
 * CPU cores (one request on 2 cores: auto 1.31x the best fixed mode, psd 0.68x ar, docs/performance.md
 * "Throughput per mode"), psd with the target on a GPU (the fastest fixed mode there; auto's GPU figure under
 * unified KV predates its switching changes and awaits a re-measurement).
 */
export function defaultMode(hasDraft: boolean, targetOnGpu: boolean): Mode {
  return !hasDraft ? "ar" : targetOnGpu ? "psd" : "auto";
}

/** the device the user gave; a model passed in loaded stays where it was loaded */
function givenDevice(p: PlacedModel | undefined): string | undefined {
  return p?.model !== undefined && typeof p.model !== "string" ? (p.device ?? p.model.device ?? AS_LOADED) : p?.device;
}

/**
 * Both models placed on `machine` for createEngine's options (already checked: mode, draft model,
 * batch size). Throws only on a thread count below one, which the options' schema already refuses.
 */
export function planPlacement(machine: Machine, options: PlacementOptions): PlacementPlan {
  const { devices, cores } = machine;
  const requested = options.mode;
  const hasDraft = requested !== "ar" && Boolean(options.draft?.model);
  // psd and auto place the models alike (both may overlap the phases), so the default is placed first
  const overlapped = requested === undefined ? hasDraft : requested === "psd" || requested === "auto";
  const placed = resolvePlacement(devices, {
    target: givenDevice(options.target),
    draft: givenDevice(options.draft),
    hasDraft,
    overlapped,
  });
  const targetOnGpu = onGpu(placed.targetDevice, devices);
  const mode = requested ?? defaultMode(hasDraft, targetOnGpu);
  const auto = mode === "auto";
  const batchSize = options.batchSize ?? ENGINE_DEFAULTS.batchSize;
  const sequences = mode === "psd" || auto ? 2 * batchSize : batchSize;
  const draftOnGpu = mode !== "ar" && onGpu(placed.draftDevice, devices);

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
  const threadPlans = auto ? replan(cores) : undefined;
  for (const [name, v] of [
    ["target.threads", targetThreads],
    ["draft.threads", draftThreads],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
  }

  // default: unified KV on a GPU, one stream per sequence on the CPU (see CreateEngineOptions.kvUnified)
  const kvUnified = { target: options.kvUnified ?? targetOnGpu, draft: options.kvUnified ?? draftOnGpu };
  // auto: each threadpool is sized for the larger of its two placements
  const maxOf = (role: "target" | "draft", n: number) =>
    threadPlans ? Math.max(threadPlans.sequential[role], threadPlans.overlapped?.[role] ?? 1) : n;
  // CPU threads beside each model's sampled rows: the other model's decode threads on the CPU, or,
  // with both models on a GPU (their jobs may overlap), the other's share of the cores for its rows
  const bothOnGpu = hasDraft && targetOnGpu && draftOnGpu;
  const draftCpuThreads = !hasDraft
    ? 0
    : bothOnGpu
      ? Math.floor(cores / 2)
      : draftOnGpu
        ? 0
        : maxOf("draft", draftThreads);
  const targetCpuThreads = bothOnGpu ? Math.ceil(cores / 2) : targetOnGpu ? 0 : maxOf("target", targetThreads);

  const report: Placement = {
    mode,
    cores,
    targetThreads,
    draftThreads: hasDraft ? draftThreads : 0,
    concurrent: mode === "psd" || (auto && threadPlans?.overlapped != null),
    oversubscribed:
      mode === "psd" ? targetThreads + draftThreads > cores : Math.max(targetThreads, draftThreads) > cores,
    targetDevice: placed.targetDevice,
    draftDevice: hasDraft ? placed.draftDevice : "none",
    deviceNote: placed.note,
    kvUnified: { target: kvUnified.target, draft: hasDraft ? kvUnified.draft : false },
    sequences,
    ...(threadPlans ? { threadPlans } : {}),
  };
  return {
    report,
    target: {
      device: placed.targetDevice,
      onGpu: targetOnGpu,
      // without a draft model (ar, or prompt lookup alone) the target is alone on its cores, so its pool's
      // threads may spin between graphs (poll 1, about a millisecond)
      context: {
        threads: targetThreads,
        threadsMax: maxOf("target", targetThreads),
        threadpoolPoll: mode === "ar" || !hasDraft ? 1 : 0,
        rowThreads: rowThreads(targetOnGpu, draftCpuThreads, cores),
        kvUnified: kvUnified.target,
      },
    },
    draft: hasDraft
      ? {
          device: placed.draftDevice,
          onGpu: draftOnGpu,
          context: {
            threads: draftThreads,
            threadsMax: maxOf("draft", draftThreads),
            threadpoolPoll: 0,
            rowThreads: rowThreads(draftOnGpu, targetCpuThreads, cores),
            kvUnified: kvUnified.draft,
          },
        }
      : null,
    // a fixed mode keeps its one placement (ar, sd: sequential; psd: overlapped); auto switches between both
    threads: {
      plans: threadPlans ?? replan(cores),
      cores,
      targetOnGpu,
      draftOnGpu,
      replan,
      ...(auto ? {} : { schedule: mode === "psd" ? ("overlapped" as const) : ("sequential" as const) }),
    },
  };
}
