import { describe, expect, it } from "vitest";
import { AS_LOADED, defaultPlacement, onGpu, rankGpus, resolvePlacement } from "../../src/native/placement.js";
import { defaultThreads, rowThreads } from "../../src/native/threads.js";
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

describe("row threads of a model on a GPU: the cores no CPU-side model uses", () => {
  it("follows the decode threads on the CPU, takes the free cores on a GPU, at least one", () => {
    expect(rowThreads(false, 0, 16)).toBe(0);
    expect(rowThreads(true, 0, 16)).toBe(16); // both models on the GPU, or no draft
    expect(rowThreads(true, 15, 16)).toBe(1); // the draft on the CPU cores beside it
    expect(rowThreads(true, 4, 16)).toBe(12);
    expect(rowThreads(true, 32, 16)).toBe(1);
  });
});

describe("resolvePlacement: the user's devices where given, the defaults for the rest", () => {
  const oneGpu = [cpu, dev("CUDA0", "gpu", 80)];
  const twoGpus = [cpu, dev("CUDA0", "gpu", 80), dev("CUDA1", "gpu", 24)];
  it("nothing given: the defaults, marked as such", () => {
    const r = resolvePlacement(oneGpu, { hasDraft: true, overlapped: true });
    expect(r).toMatchObject({ targetDevice: "CUDA0", draftDevice: "cpu", defaulted: { target: true, draft: true } });
    expect(resolvePlacement([cpu], { hasDraft: true, overlapped: false })).toMatchObject({
      targetDevice: "cpu",
      draftDevice: "cpu",
    });
  });
  it("both given: kept as given", () => {
    const r = resolvePlacement(twoGpus, { target: "CUDA1", draft: "cpu", hasDraft: true, overlapped: true });
    expect(r).toMatchObject({ targetDevice: "CUDA1", draftDevice: "cpu", defaulted: { target: false, draft: false } });
    expect(r.note).toMatch(/as given/);
  });
  it("target given: the draft takes another GPU, else the CPU when overlapping, else shares", () => {
    expect(resolvePlacement(twoGpus, { target: "CUDA1", hasDraft: true, overlapped: false })).toMatchObject({
      targetDevice: "CUDA1",
      draftDevice: "CUDA0",
    });
    expect(resolvePlacement(oneGpu, { target: "CUDA0", hasDraft: true, overlapped: true })).toMatchObject({
      draftDevice: "cpu",
    });
    expect(resolvePlacement(oneGpu, { target: "CUDA0", hasDraft: true, overlapped: false })).toMatchObject({
      draftDevice: "CUDA0",
    });
    expect(resolvePlacement(oneGpu, { target: "cpu", hasDraft: true, overlapped: true })).toMatchObject({
      targetDevice: "cpu",
      draftDevice: "cpu",
    });
  });
  it("draft given: the target takes the best GPU; no draft: draft device none", () => {
    expect(resolvePlacement(twoGpus, { draft: "CUDA1", hasDraft: true, overlapped: true })).toMatchObject({
      targetDevice: "CUDA0",
      draftDevice: "CUDA1",
    });
    const ar = resolvePlacement(oneGpu, { hasDraft: false, overlapped: false });
    expect(ar).toMatchObject({ targetDevice: "CUDA0", draftDevice: "none", defaulted: { target: true, draft: false } });
    expect(resolvePlacement([cpu], { hasDraft: false, overlapped: false }).note).toMatch(/no GPU/);
  });
  it(
    "a target passed in loaded with llama.cpp's defaults occupies every GPU: " +
      "the draft never takes one of them as 'another GPU'",
    () => {
      expect(onGpu(AS_LOADED, twoGpus)).toBe(true);
      expect(onGpu(AS_LOADED, [cpu])).toBe(false);
      expect(resolvePlacement(twoGpus, { target: AS_LOADED, hasDraft: true, overlapped: true })).toMatchObject({
        targetDevice: AS_LOADED,
        draftDevice: "cpu",
      });
      expect(resolvePlacement(twoGpus, { target: AS_LOADED, hasDraft: true, overlapped: false })).toMatchObject({
        draftDevice: "CUDA0",
      });
      expect(resolvePlacement([cpu], { target: AS_LOADED, hasDraft: true, overlapped: true })).toMatchObject({
        draftDevice: "cpu",
      });
      expect(resolvePlacement(oneGpu, { target: AS_LOADED, hasDraft: true, overlapped: true }).note).toMatch(
        /^target as loaded, draft on the CPU cores/,
      );
    },
  );
});
