import { describe, expect, it } from "vitest";
import { defaultPlacement, rankGpus } from "../../src/native/placement.js";
import { defaultThreads } from "../../src/native/threads.js";
import type { DeviceInfo } from "../../src/native/types.js";

const dev = (name: string, type: DeviceInfo["type"], gib: number): DeviceInfo => ({
  name,
  type,
  description: name,
  backend: name.replace(/\d+$/, ""),
  memoryFree: gib * 2 ** 30,
  memoryTotal: gib * 2 ** 30,
});
const cpu = dev("CPU", "cpu", 24);

describe("default placement", () => {
  it("CPU only: both models on the CPU", () => {
    expect(defaultPlacement([cpu], true)).toMatchObject({ targetDevice: "cpu", draftDevice: "cpu" });
  });
  it("one GPU: psd puts the draft on the CPU cores, sd shares the GPU", () => {
    const devices = [cpu, dev("CUDA0", "gpu", 80)];
    expect(defaultPlacement(devices, true)).toMatchObject({ targetDevice: "CUDA0", draftDevice: "cpu" });
    expect(defaultPlacement(devices, true).note).toMatch(/draft on the CPU cores/);
    expect(defaultPlacement(devices, false)).toMatchObject({ targetDevice: "CUDA0", draftDevice: "CUDA0" });
  });
  it("two GPUs: target on the biggest discrete one, draft on the other", () => {
    const devices = [cpu, dev("Vulkan0", "igpu", 16), dev("CUDA1", "gpu", 24), dev("CUDA0", "gpu", 80)];
    expect(rankGpus(devices).map((d) => d.name)).toEqual(["CUDA0", "CUDA1", "Vulkan0"]);
    expect(defaultPlacement(devices, true)).toMatchObject({ targetDevice: "CUDA0", draftDevice: "CUDA1" });
  });
});

describe("default threads never oversubscribe", () => {
  for (const cores of [1, 2, 3, 8, 16]) {
    it(`${cores} cores`, () => {
      const seq = defaultThreads({ concurrent: false, cores });
      expect(seq).toMatchObject({ target: cores, draft: cores });
      const par = defaultThreads({ concurrent: true, cores });
      expect(par.target + par.draft).toBeLessThanOrEqual(Math.max(cores, 2));
      expect(par.target).toBeGreaterThanOrEqual(par.draft);
      const gpuTarget = defaultThreads({ concurrent: true, cores, targetOnGpu: true });
      expect(gpuTarget.target).toBe(1);
      expect(gpuTarget.draft).toBe(Math.max(1, cores - 1));
    });
  }
});
