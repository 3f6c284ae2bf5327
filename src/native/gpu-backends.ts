// Prebuilt GPU backends: when node-llama-cpp's CUDA or Vulkan package is installed and a device
// works, its ggml backend module is loaded next to the CPU backend; otherwise minedraft runs on the
// CPU and says why (driver missing, no device, package not installed).
import type { NativeAddon } from "./types.js";
import { gpuBackendCandidates } from "./llama-paths.mjs";

export type GpuPreference = "auto" | "cuda" | "vulkan" | "off";

export interface GpuBackendStatus {
  backend: "cuda" | "vulkan";
  /** npm package that would provide it */
  package: string;
  loaded: boolean;
  devices: number;
  /** why it is not in use */
  reason?: string;
}

interface Candidate {
  backend: "cuda" | "vulkan";
  pkg: string;
  path: string | undefined;
}

export function parseGpuPreference(value: string | undefined): GpuPreference {
  const v = (value ?? "auto").toLowerCase();
  if (v === "auto" || v === "cuda" || v === "vulkan" || v === "off") return v;
  if (v === "false" || v === "0" || v === "cpu") return "off";
  throw new RangeError(`MINEDRAFT_GPU must be auto, cuda, vulkan or off, got ${JSON.stringify(value)}`);
}

/** Loads the first working GPU backend (in preference order) and reports on every candidate. */
export async function loadGpuBackends(
  addon: NativeAddon,
  /** "source-build": the libraries are a from-source build, whose own backends are already linked */
  preference: GpuPreference | "source-build",
): Promise<GpuBackendStatus[]> {
  const statuses: GpuBackendStatus[] = [];
  let found = false;
  for (const c of gpuBackendCandidates() as Candidate[]) {
    const status: GpuBackendStatus = { backend: c.backend, package: c.pkg, loaded: false, devices: 0 };
    statuses.push(status);
    if (preference === "source-build")
      status.reason = "not used with a from-source build (build:source --gpu ... links its own GPU backends)";
    else if (preference === "off") status.reason = "GPU backends turned off (--gpu off / MINEDRAFT_GPU=off)";
    else if (preference !== "auto" && preference !== c.backend)
      status.reason = `not requested (the GPU backend asked for is ${preference})`;
    else if (found) status.reason = "another GPU backend is in use";
    else if (!c.path) status.reason = `${c.pkg} is not installed`;
    else {
      try {
        const r = addon.loadBackend(c.path);
        status.loaded = true;
        status.devices = r.devices;
        if (r.devices > 0) found = true;
        else
          status.reason =
            c.backend === "vulkan"
              ? "loaded, but it found no device (ggml uses discrete and integrated GPUs only; a CPU-type device " +
                "such as Mesa's llvmpipe is used when named: --vulkan-devices 0, or configureBackends({ vulkanDevices: [0] }))"
              : "loaded, but it found no device";
      } catch (e) {
        status.reason = e instanceof Error ? e.message : String(e);
      }
    }
  }
  return statuses;
}
