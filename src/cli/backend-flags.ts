// --gpu and --vulkan-devices: which GPU backend loads and which Vulkan devices it uses (process-wide);
// --rpc: the devices of ggml rpc-servers, added as RPC0, RPC1, ... for --device / --draft-device.
import { type Command, InvalidArgumentError, Option } from "commander";
import type { BackendOptions, GpuPreference } from "../index.js";
import { checkRpcList } from "../native/rpc.js";

export interface BackendFlags {
  gpu?: GpuPreference;
  vulkanDevices?: number[];
  rpc?: string[];
  rpcAllowRemote?: boolean;
  rpcTimeoutMs?: number;
}

function rpcList(value: string): string[] {
  const list = value.split(",").map((s) => s.trim());
  if (checkRpcList(list) !== null)
    throw new InvalidArgumentError("expected distinct HOST:PORT endpoints, e.g. 127.0.0.1:50052 or h1:50052,h2:50052");
  return list;
}

function milliseconds(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) > 86_400_000)
    throw new InvalidArgumentError("expected a whole number of milliseconds (0: no time-out)");
  return Number(value);
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
    )
    .option(
      "--rpc <list>",
      "ggml rpc-servers (HOST:PORT,...) whose devices become RPC0, RPC1, ... for --device / --draft-device " +
        "(needs npm run build:source -- --rpc; docs/scaling.md)",
      rpcList,
    )
    .option(
      "--rpc-allow-remote",
      "accept --rpc servers that are not on this machine: the RPC protocol is unauthenticated and unencrypted",
    )
    .option(
      "--rpc-timeout-ms <ms>",
      "longest wait on an --rpc server before its requests fail (default 120000; 0: none); must exceed its slowest " +
        "prefill",
      milliseconds,
    );
}

export function backendsFromFlags(flags: BackendFlags): BackendOptions | undefined {
  if (flags.gpu === undefined && flags.vulkanDevices === undefined && flags.rpc === undefined) return undefined;
  return {
    ...(flags.rpc !== undefined
      ? {
          rpc: flags.rpc,
          ...(flags.rpcAllowRemote ? { rpcAllowRemote: true } : {}),
          ...(flags.rpcTimeoutMs !== undefined ? { rpcTimeoutMs: flags.rpcTimeoutMs } : {}),
        }
      : {}),
    ...(flags.gpu !== undefined ? { gpu: flags.gpu } : {}),
    ...(flags.vulkanDevices !== undefined ? { vulkanDevices: flags.vulkanDevices } : {}),
  };
}
