// Default device placement. PSD pays when the draft has hardware of its own that would otherwise sit
// idle while the target verifies: a second GPU, or the CPU cores next to a single GPU.
import type { DeviceInfo } from "./types.js";

export interface DevicePlacement {
  /** "cpu" or a ggml device name (CUDA0, Vulkan0, Metal, ...) */
  targetDevice: string;
  draftDevice: string;
  /** one line for stats and logs */
  note: string;
}

/** GPUs by preference: discrete before integrated, then by memory. */
export function rankGpus(devices: readonly DeviceInfo[]): DeviceInfo[] {
  const rank = (d: DeviceInfo) => (d.type === "gpu" ? 0 : 1);
  return devices.filter((d) => d.type === "gpu" || d.type === "igpu").sort((a, b) => rank(a) - rank(b) || b.memoryTotal - a.memoryTotal);
}

/**
 * Target on the best GPU; draft on a second GPU if there is one, else on the CPU cores when the
 * schedule overlaps the two (psd), else next to the target.
 */
export function defaultPlacement(devices: readonly DeviceInfo[], overlapped: boolean): DevicePlacement {
  const gpus = rankGpus(devices);
  if (gpus.length === 0) return { targetDevice: "cpu", draftDevice: "cpu", note: "no GPU found: target and draft on the CPU" };
  const target = gpus[0].name;
  if (gpus.length > 1) return { targetDevice: target, draftDevice: gpus[1].name, note: `target on ${target}, draft on ${gpus[1].name}` };
  if (overlapped) {
    return { targetDevice: target, draftDevice: "cpu", note: `one GPU: target on ${target}, draft on the CPU cores so drafting overlaps verification` };
  }
  return { targetDevice: target, draftDevice: target, note: `one GPU: target and draft share ${target} (phases take turns)` };
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

const isCpu = (name: string) => name.toLowerCase() === "cpu";

/**
 * The devices of both models: the user's choices where given, defaultPlacement()'s rules for the
 * rest (a draft next to a target the user placed goes on another GPU, else on the CPU cores when
 * the phases overlap, else beside the target).
 */
export function resolvePlacement(devices: readonly DeviceInfo[], req: PlacementRequest): ResolvedPlacement {
  const defaulted = { target: req.target === undefined, draft: req.hasDraft && req.draft === undefined };
  if (!defaulted.target && !defaulted.draft) {
    const draftDevice = req.draft ?? "none";
    return { targetDevice: req.target!, draftDevice, note: `target on ${req.target}${req.hasDraft ? `, draft on ${draftDevice}` : ""} (as given)`, defaulted };
  }
  const gpus = rankGpus(devices);
  const target = req.target ?? (gpus[0]?.name ?? "cpu");
  if (!req.hasDraft) {
    const note = gpus.length === 0 ? "no GPU found: target on the CPU" : `target on ${target}${defaulted.target ? " (the best GPU found)" : ""}`;
    return { targetDevice: target, draftDevice: "none", note, defaulted };
  }
  if (!defaulted.draft) {
    const note = `target on ${target}${gpus.length > 0 ? " (the best GPU found)" : " (no GPU found)"}, draft on ${req.draft} (as given)`;
    return { targetDevice: target, draftDevice: req.draft!, note, defaulted };
  }
  if (defaulted.target) return { ...defaultPlacement(devices, req.overlapped), defaulted };
  // the user placed the target: the draft takes what is left
  if (isCpu(target)) return { targetDevice: target, draftDevice: "cpu", note: "target on the CPU (as given), draft on the CPU", defaulted };
  const other = gpus.find((g) => g.name !== target);
  if (other) return { targetDevice: target, draftDevice: other.name, note: `target on ${target} (as given), draft on ${other.name}`, defaulted };
  if (req.overlapped) {
    return { targetDevice: target, draftDevice: "cpu", note: `target on ${target} (as given), draft on the CPU cores so drafting overlaps verification`, defaulted };
  }
  return { targetDevice: target, draftDevice: target, note: `target on ${target} (as given), draft beside it (phases take turns)`, defaulted };
}
