// Default device placement. PSD pays when the draft has hardware of its own that would otherwise sit
// idle while the target verifies: a second GPU, or the CPU cores next to a single GPU.
import type { DeviceInfo } from "./types.js";

export interface DevicePlacement {
  /** "cpu" or a ggml device name (CUDA0, Vulkan0, Metal, ...) */
  targetDevice: string;
  /** as targetDevice; "none" without a draft model */
  draftDevice: string;
  /** one line for stats and logs */
  note: string;
}

export interface PlacementRequest {
  /** devices the user chose; undefined = choose by default */
  target?: string;
  draft?: string;
  hasDraft: boolean;
  /** the schedule may run draft and target at the same time (psd, auto) */
  overlapped: boolean;
}

export interface ResolvedPlacement extends DevicePlacement {
  /** which of the two were chosen by default (not given by the user) */
  defaulted: { target: boolean; draft: boolean };
}

/**
 * Local GPUs by preference: discrete before integrated, then by memory. RPC devices (which ggml types as GPUs
 * whatever the server runs) are left out: a model goes to another machine only when named.
 */
export function rankGpus(devices: readonly DeviceInfo[]): DeviceInfo[] {
  const rank = (d: DeviceInfo) => (d.type === "gpu" ? 0 : 1);
  return devices
    .filter((d) => (d.type === "gpu" || d.type === "igpu") && d.backend !== "RPC")
    .sort((a, b) => rank(a) - rank(b) || b.memoryTotal - a.memoryTotal);
}

const isCpu = (name: string) => name.toLowerCase() === "cpu";

/** the device of a model passed in loaded with llama.cpp's defaults: every layer on the GPUs, if any */
export const AS_LOADED = "as loaded";

/** whether a placed model runs on a GPU ("as loaded": when there is one) */
export function onGpu(device: string, devices: readonly DeviceInfo[]): boolean {
  if (device === AS_LOADED) return rankGpus(devices).length > 0;
  return device !== "none" && !isCpu(device);
}

/**
 * The devices of both models: the user's choices where given; otherwise the target on the best
 * GPU, and the draft on another GPU if there is one, else on the CPU cores when the schedule
 * overlaps the two (psd, auto), else next to the target.
 */
export function resolvePlacement(devices: readonly DeviceInfo[], req: PlacementRequest): ResolvedPlacement {
  const defaulted = { target: req.target === undefined, draft: req.hasDraft && req.draft === undefined };
  const gpus = rankGpus(devices);
  const target = req.target ?? gpus[0]?.name ?? "cpu";
  const targetWhy = defaulted.target ? (gpus.length > 0 ? "" : " (no GPU found)") : " (as given)";
  const targetPart =
    target === AS_LOADED ? "target as loaded" : `target on ${isCpu(target) ? "the CPU" : target}${targetWhy}`;
  if (!req.hasDraft) return { targetDevice: target, draftDevice: "none", note: targetPart, defaulted };
  if (req.draft !== undefined)
    return {
      targetDevice: target,
      draftDevice: req.draft,
      note: `${targetPart}, draft on ${req.draft} (as given)`,
      defaulted,
    };
  const place = (draftDevice: string, why: string) => ({
    targetDevice: target,
    draftDevice,
    note: `${targetPart}, ${why}`,
    defaulted,
  });
  if (!onGpu(target, devices)) return place("cpu", "draft on the CPU");
  // a target loaded with llama.cpp's defaults spreads over every GPU: none is free for the draft
  const other = target === AS_LOADED ? undefined : gpus.find((g) => g.name !== target);
  if (other) return place(other.name, `draft on ${other.name}`);
  if (req.overlapped) return place("cpu", "draft on the CPU cores so drafting overlaps verification");
  const beside = target === AS_LOADED ? gpus[0]!.name : target;
  return place(beside, `draft beside it on ${beside} (phases take turns)`);
}

/** Both models placed by default (no device given). */
export function defaultPlacement(devices: readonly DeviceInfo[], overlapped: boolean): DevicePlacement {
  return resolvePlacement(devices, { hasDraft: true, overlapped });
}
