// --gpu and --vulkan-devices: which GPU backend loads and which Vulkan devices it uses (process-wide).
import { type Command, InvalidArgumentError, Option } from "commander";
import type { BackendOptions, GpuPreference } from "../index.js";

export interface BackendFlags {
  gpu?: GpuPreference;
  vulkanDevices?: number[];
}

function deviceIndexList(value: string): number[] {
  const list = value.split(",").map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s)) || new Set(list).size !== list.length)
    throw new InvalidArgumentError("expected distinct device indices, e.g. 0 or 0,1");
  return list.map(Number);
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--gpu <backend>",
        "GPU backend to load (default: MINEDRAFT_GPU, else auto: CUDA, then Vulkan)",
      ).choices(["auto", "cuda", "vulkan", "off"]),
    )
    .option(
      "--vulkan-devices <list>",
      "Vulkan devices to use, by index (vulkaninfo --summary); also CPU-type ones such as Mesa's llvmpipe, " +
        "which ggml skips by default (the GPU code path on a machine without a GPU)",
      deviceIndexList,
    );
}

export function backendsFromFlags(flags: BackendFlags): BackendOptions | undefined {
  if (flags.gpu === undefined && flags.vulkanDevices === undefined) return undefined;
  return {
    ...(flags.gpu !== undefined ? { gpu: flags.gpu } : {}),
    ...(flags.vulkanDevices !== undefined ? { vulkanDevices: flags.vulkanDevices } : {}),
  };
}
