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
