// Choosing the GPU backends (configureBackends) and refusing a KV cache its device cannot hold (device-fit.ts).
// Its own file: the backends are chosen once per process, and vitest runs each file in a fresh one.
import { describe, expect, it } from "vitest";
import { configureBackends, gpuBackendStatus, loadAddon } from "../../src/native/addon.js";
import { kvFitProblem } from "../../src/native/device-fit.js";
import type { DeviceInfo } from "../../src/native/types.js";

describe("configureBackends", () => {
  it("checks its options, applies them when the addon loads, and refuses another choice afterwards", async () => {
    expect(() => configureBackends({ vulkanDevices: [] })).toThrow(/vulkanDevices must be a non-empty array/);
    expect(() => configureBackends({ vulkanDevices: [0, 0] })).toThrow(/distinct/);
    expect(() => configureBackends({ vulkanDevices: [-1] })).toThrow(/integers >= 0/);
    expect(() => configureBackends({ gpu: "metal" as never })).toThrow(/gpu must be one of/);
    expect(() => configureBackends({ vulkan: [0] } as never)).toThrow(/unknown option vulkan/);
    configureBackends({ gpu: "off" });
    const addon = await loadAddon();
    // (a from-source build never loads the prebuilt modules, whatever is asked)
    for (const s of gpuBackendStatus()) expect(s.reason).toMatch(/turned off|from-source build/);
    expect(addon.devices().every((d) => d.type === "cpu")).toBe(true);
    configureBackends({ gpu: "off" }); // the same choice again is fine
    expect(() => configureBackends({ gpu: "vulkan" })).toThrow(/chosen once per process/);
  });

  it("deviceHoldsTensor asks the device's backend (the CPU holds any size; unknown devices throw)", async () => {
    const addon = await loadAddon();
    expect(addon.deviceHoldsTensor("CPU", "f16", [128, 1 << 20, 1])).toBe(true);
    expect(() => addon.deviceHoldsTensor("Nope0", "f16", [1])).toThrow(/no device named Nope0/);
    expect(() => addon.deviceHoldsTensor("CPU", "q4" as never, [1])).toThrow(/f16 or f32/);
    expect(() => addon.deviceHoldsTensor("CPU", "f16", [1, 2, 3, 4, 5])).toThrow(/1 to 4 dimensions/);
  });
});

describe("kvFitProblem", () => {
  const gpu: DeviceInfo = {
    name: "Vulkan0",
    description: "test",
    type: "gpu",
    backend: "Vulkan",
    memoryFree: 2 * 1024 ** 3,
    memoryTotal: 2 * 1024 ** 3,
  };
  // 4 layers of 128-wide K and V in f16: 2 KiB per token
  const kv = (cells: number, streams = 1) => ({ layers: 4, nEmbdK: 128, nEmbdV: 128, cells, streams });
  const any = () => true;

  it("fits: nothing to say; a CPU device or no offloaded layer is never checked", () => {
    expect(kvFitProblem(gpu, kv(65536), any)).toBeUndefined();
    expect(kvFitProblem({ ...gpu, type: "cpu" }, kv(1 << 22), () => false)).toBeUndefined();
    expect(kvFitProblem(gpu, { ...kv(1 << 22), layers: 0 }, () => false)).toBeUndefined();
  });

  it("past the device's free memory: the size, the tokens and what to lower", () => {
    expect(kvFitProblem(gpu, kv(2 * 1024 * 1024), any)).toBe(
      "the KV cache (4.00 GiB for 2097152 tokens over 4 layers) does not fit Vulkan0's 2.00 GiB free: " +
        "lower contextSize or batchSize (or offload fewer layers)",
    );
  });

  it("one layer's tensor beyond what the device holds: asked with the tensor's shape per stream", () => {
    const asked: (readonly number[])[] = [];
    const problem = kvFitProblem(gpu, kv(786432, 16), (ne) => {
      asked.push(ne);
      return false;
    });
    expect(asked).toEqual([[128, 49152, 16]]);
    expect(problem).toMatch(
      /one layer's KV tensor \(192\.0 MiB for 786432 tokens\) is larger than Vulkan0 can address/,
    );
  });
});
