// What the benchmark ran on, for the JSON report.
import os from "node:os";
import { readFileSync } from "node:fs";
import { devices, loadAddon, type LlamaModel } from "../index.js";
import type { MachineInfo, ModelReport } from "./types.js";

export async function machineInfo(): Promise<MachineInfo> {
  const cpus = os.cpus();
  const addon = await loadAddon();
  return {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    os: { platform: os.platform(), release: os.release(), arch: os.arch() },
    node: process.version,
    llamaSystemInfo: addon.systemInfo().trim(),
    devices: (await devices()).map((d) => ({
      name: d.name,
      type: d.type,
      backend: d.backend,
      description: d.description,
    })),
  };
}

export function modelReport(model: LlamaModel, placement: { device?: string; gpuLayers?: number }): ModelReport {
  const i = model.info;
  return {
    path: i.path,
    name: i.name,
    architecture: i.architecture,
    fileSize: i.fileSize,
    quantization: i.quantization,
    nParams: i.nParams,
    nLayer: i.nLayer,
    nEmbd: i.nEmbd,
    nVocab: i.nVocab,
    nCtxTrain: i.nCtxTrain,
    device: placement.device ?? "default",
    gpuLayers: placement.gpuLayers ?? null,
  };
}

export function minedraftVersion(): string {
  try {
    return (
      (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string })
        .version ?? "unknown"
    );
  } catch {
    return "unknown";
  }
}
