// planPlacement(): every decision createEngine makes about where and how the models run, on made-up
// machines: no addon, no models.
import { describe, expect, it } from "vitest";
import { AS_LOADED } from "../../src/native/placement.js";
import { defaultMode, planPlacement, type PlacementOptions } from "../../src/native/plan-placement.js";
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
const cpuOnly = [cpu];
const oneGpu = [cpu, dev("CUDA0", "gpu", 80)];
const twoGpus = [cpu, dev("CUDA1", "gpu", 24), dev("CUDA0", "gpu", 80)];
const pair: PlacementOptions = { target: { model: "t.gguf" }, draft: { model: "d.gguf" } };

describe("CPU only, defaults", () => {
  it("2 cores: auto between all cores each in turn and one core each at once; one KV stream per sequence", () => {
    const plan = planPlacement({ devices: cpuOnly, cores: 2 }, pair);
    expect(plan.report).toEqual({
      mode: "auto",
      cores: 2,
      targetThreads: 2,
      draftThreads: 2,
      concurrent: true,
      oversubscribed: false,
      targetDevice: "cpu",
      draftDevice: "cpu",
      deviceNote: "target on the CPU (no GPU found), draft on the CPU",
      kvUnified: { target: false, draft: false },
      sequences: 8,
      threadPlans: { sequential: { target: 2, draft: 2 }, overlapped: { target: 1, draft: 1 } },
    });
    expect(plan.target).toEqual({
      device: "cpu",
      onGpu: false,
      context: { threads: 2, threadsMax: 2, threadpoolPoll: 0, rowThreads: 0, kvUnified: false },
    });
    expect(plan.draft).toEqual({
      device: "cpu",
      onGpu: false,
      context: { threads: 2, threadsMax: 2, threadpoolPoll: 0, rowThreads: 0, kvUnified: false },
    });
    // auto: no fixed schedule, and the backend switches between the report's plans
    expect(plan.threads).toMatchObject({
      cores: 2,
      targetOnGpu: false,
      draftOnGpu: false,
      plans: plan.report.threadPlans,
    });
    expect(plan.threads.schedule).toBeUndefined();
  });

  it("16 cores: the overlapped placement splits the cores, the bigger half to the target", () => {
    const plan = planPlacement({ devices: cpuOnly, cores: 16 }, { ...pair, batchSize: 2 });
    expect(plan.report).toMatchObject({
      mode: "auto",
      targetThreads: 16,
      draftThreads: 16,
      sequences: 4,
      oversubscribed: false,
    });
    expect(plan.report.threadPlans).toEqual({
      sequential: { target: 16, draft: 16 },
      overlapped: { target: 8, draft: 8 },
    });
    expect(plan.target.context.threadsMax).toBe(16);
    expect(plan.draft!.context.threadsMax).toBe(16);
  });

  it("fewer free cores: replan gives both placements on them", () => {
    const plan = planPlacement({ devices: cpuOnly, cores: 16 }, pair);
    expect(plan.threads.replan!(5)).toEqual({
      sequential: { target: 5, draft: 5 },
      overlapped: { target: 3, draft: 2 },
    });
    expect(plan.threads.replan!(1)).toEqual({
      sequential: { target: 1, draft: 1 },
      overlapped: { target: 1, draft: 1 },
    });
  });

  it("no draft: ar on all cores, alone on them so its pool may spin; the draft reported as none", () => {
    const plan = planPlacement({ devices: cpuOnly, cores: 16 }, { target: { model: "t.gguf" } });
    expect(plan.report).toMatchObject({
      mode: "ar",
      targetThreads: 16,
      draftThreads: 0,
      draftDevice: "none",
      concurrent: false,
      sequences: 4,
      kvUnified: { target: false, draft: false },
    });
    expect(plan.report.threadPlans).toBeUndefined();
    expect(plan.draft).toBeNull();
    expect(plan.target.context).toMatchObject({ threads: 16, threadsMax: 16, threadpoolPoll: 1 });
    expect(plan.threads.schedule).toBe("sequential");
  });

  it("prompt lookup alone (sd / auto, no draft model): the target alone on all cores, so its pool spins too", () => {
    for (const mode of ["sd", "auto"] as const) {
      const plan = planPlacement({ devices: cpuOnly, cores: 2 }, { mode, target: { model: "t.gguf" } });
      expect(plan.draft).toBeNull();
      expect(plan.report).toMatchObject({ mode, targetThreads: 2, sequences: mode === "auto" ? 8 : 4 });
      expect(plan.target.context).toMatchObject({ threads: 2, threadpoolPoll: 1 });
    }
  });

  it("mode ar with a draft given: the draft is not placed", () => {
    const plan = planPlacement({ devices: oneGpu, cores: 8 }, { ...pair, mode: "ar" });
    expect(plan.draft).toBeNull();
    expect(plan.report).toMatchObject({
      mode: "ar",
      targetDevice: "CUDA0",
      draftDevice: "none",
      draftThreads: 0,
      sequences: 4,
    });
  });

  it("a draft entry without a model is no draft (ar)", () => {
    const plan = planPlacement({ devices: cpuOnly, cores: 2 }, { target: { model: "t.gguf" }, draft: {} });
    expect(plan.report).toMatchObject({ mode: "ar", draftDevice: "none" });
    expect(plan.draft).toBeNull();
  });

  it("fixed modes: sd at the sequential placement, psd at the overlapped one", () => {
    const sd = planPlacement({ devices: cpuOnly, cores: 4 }, { ...pair, mode: "sd" });
    expect(sd.report).toMatchObject({ mode: "sd", targetThreads: 4, draftThreads: 4, concurrent: false, sequences: 4 });
    expect(sd.threads.schedule).toBe("sequential");
    const psd = planPlacement({ devices: cpuOnly, cores: 4 }, { ...pair, mode: "psd" });
    expect(psd.report).toMatchObject({
      mode: "psd",
      targetThreads: 2,
      draftThreads: 2,
      concurrent: true,
      oversubscribed: false,
      sequences: 8,
    });
    expect(psd.threads.schedule).toBe("overlapped");
    expect(psd.target.context).toMatchObject({ threads: 2, threadsMax: 2, threadpoolPoll: 0 });
  });
});

describe("GPUs", () => {
  it("one GPU: psd by default, the target on it and the draft on the CPU cores beside it", () => {
    const plan = planPlacement({ devices: oneGpu, cores: 16 }, pair);
    expect(plan.report).toMatchObject({
      mode: "psd",
      targetDevice: "CUDA0",
      draftDevice: "cpu",
      targetThreads: 1,
      draftThreads: 15,
      concurrent: true,
      oversubscribed: false,
      kvUnified: { target: true, draft: false },
      sequences: 8,
    });
    expect(plan.report.deviceNote).toMatch(/draft on the CPU cores so drafting overlaps verification/);
    // the target's sampled rows get the one core the draft's 15 decode threads leave
    expect(plan.target).toEqual({
      device: "CUDA0",
      onGpu: true,
      context: { threads: 1, threadsMax: 1, threadpoolPoll: 0, rowThreads: 1, kvUnified: true },
    });
    expect(plan.draft).toEqual({
      device: "cpu",
      onGpu: false,
      context: { threads: 15, threadsMax: 15, threadpoolPoll: 0, rowThreads: 0, kvUnified: false },
    });
    expect(plan.threads).toMatchObject({ targetOnGpu: true, draftOnGpu: false, schedule: "overlapped" });
  });

  it("one GPU, sd: the draft shares the GPU, each model one thread, the cores split for the rows", () => {
    const plan = planPlacement({ devices: oneGpu, cores: 3 }, { ...pair, mode: "sd" });
    expect(plan.report).toMatchObject({
      mode: "sd",
      targetDevice: "CUDA0",
      draftDevice: "CUDA0",
      targetThreads: 1,
      draftThreads: 1,
      kvUnified: { target: true, draft: true },
    });
    expect(plan.target.context.rowThreads).toBe(2); // 3 cores less the draft's floor(3 / 2)
    expect(plan.draft!.context.rowThreads).toBe(1); // 3 cores less the target's ceil(3 / 2)
  });

  it("two GPUs: the target on the biggest, the draft on the other", () => {
    const plan = planPlacement({ devices: twoGpus, cores: 16 }, pair);
    expect(plan.report).toMatchObject({
      mode: "psd",
      targetDevice: "CUDA0",
      draftDevice: "CUDA1",
      targetThreads: 1,
      draftThreads: 1,
      kvUnified: { target: true, draft: true },
    });
    expect(plan.target.context.rowThreads).toBe(8);
    expect(plan.draft!.context.rowThreads).toBe(8);
  });

  it("a target on the CPU by choice: the default mode is auto, as on a machine without a GPU", () => {
    const plan = planPlacement({ devices: oneGpu, cores: 8 }, { ...pair, target: { model: "t.gguf", device: "cpu" } });
    expect(plan.report).toMatchObject({
      mode: "auto",
      targetDevice: "cpu",
      draftDevice: "cpu",
      kvUnified: { target: false, draft: false },
    });
    expect(plan.report.deviceNote).toMatch(/as given/);
  });

  it("explicit devices are kept, whatever the GPUs", () => {
    const plan = planPlacement(
      { devices: twoGpus, cores: 8 },
      { ...pair, target: { model: "t.gguf", device: "CUDA1" }, draft: { model: "d.gguf", device: "cpu" } },
    );
    expect(plan.report).toMatchObject({
      mode: "psd",
      targetDevice: "CUDA1",
      draftDevice: "cpu",
      targetThreads: 1,
      draftThreads: 7,
    });
    expect(plan.report.deviceNote).toBe("target on CUDA1 (as given), draft on cpu (as given)");
  });

  it("a model passed in loaded stays where it was loaded", () => {
    const loaded = planPlacement(
      { devices: oneGpu, cores: 8 },
      { target: { model: { device: undefined } }, draft: { model: "d.gguf" } },
    );
    expect(loaded.report).toMatchObject({ mode: "psd", targetDevice: AS_LOADED, draftDevice: "cpu" });
    expect(loaded.target.onGpu).toBe(true);
    const onCpu = planPlacement(
      { devices: oneGpu, cores: 8 },
      { target: { model: { device: "cpu" } }, draft: { model: "d.gguf" } },
    );
    expect(onCpu.report).toMatchObject({ mode: "auto", targetDevice: "cpu" });
    // as loaded without a GPU: on the CPU
    expect(planPlacement({ devices: cpuOnly, cores: 8 }, { target: { model: {} } }).target).toMatchObject({
      device: AS_LOADED,
      onGpu: false,
    });
  });
});

describe("threads the user pins", () => {
  it("hold in both placements; auto never overlaps counts that together exceed the cores", () => {
    const plan = planPlacement(
      { devices: cpuOnly, cores: 4 },
      { target: { model: "t.gguf", threads: 3 }, draft: { model: "d.gguf", threads: 3 } },
    );
    expect(plan.report).toMatchObject({
      mode: "auto",
      targetThreads: 3,
      draftThreads: 3,
      concurrent: false,
      oversubscribed: false,
    });
    expect(plan.report.threadPlans).toEqual({ sequential: { target: 3, draft: 3 }, overlapped: null });
    expect(plan.target.context.threadsMax).toBe(3);
  });

  it("psd runs them as pinned and reports the oversubscription", () => {
    const plan = planPlacement(
      { devices: cpuOnly, cores: 4 },
      { mode: "psd", target: { model: "t.gguf", threads: 3 }, draft: { model: "d.gguf", threads: 3 } },
    );
    expect(plan.report).toMatchObject({ targetThreads: 3, draftThreads: 3, oversubscribed: true });
  });

  it("one pinned, the other defaulted; auto sizes each pool for its larger placement", () => {
    const plan = planPlacement(
      { devices: cpuOnly, cores: 8 },
      { target: { model: "t.gguf" }, draft: { model: "d.gguf", threads: 2 } },
    );
    expect(plan.report.threadPlans).toEqual({
      sequential: { target: 8, draft: 2 },
      overlapped: { target: 4, draft: 2 },
    });
    expect(plan.target.context).toMatchObject({ threads: 8, threadsMax: 8 });
    expect(plan.draft!.context).toMatchObject({ threads: 2, threadsMax: 2 });
  });

  it("counts below one are refused", () => {
    expect(() => planPlacement({ devices: cpuOnly, cores: 4 }, { target: { model: "t.gguf", threads: 0 } })).toThrow(
      "target.threads must be an integer >= 1, got 0",
    );
  });
});

describe("KV layout", () => {
  it("kvUnified given: both contexts follow it, on a GPU or not", () => {
    expect(planPlacement({ devices: cpuOnly, cores: 2 }, { ...pair, kvUnified: true }).report.kvUnified).toEqual({
      target: true,
      draft: true,
    });
    const gpu = planPlacement({ devices: oneGpu, cores: 2 }, { ...pair, kvUnified: false });
    expect(gpu.report.kvUnified).toEqual({ target: false, draft: false });
    expect(gpu.target.context.kvUnified).toBe(false);
  });
  it("no draft: the report's draft layout is false", () => {
    expect(
      planPlacement({ devices: oneGpu, cores: 2 }, { target: { model: "t.gguf" }, kvUnified: true }).report.kvUnified,
    ).toEqual({ target: true, draft: false });
  });
});

describe("defaultMode", () => {
  it("ar without a draft, psd with the target on a GPU, else auto", () => {
    expect(defaultMode(false, true)).toBe("ar");
    expect(defaultMode(true, true)).toBe("psd");
    expect(defaultMode(true, false)).toBe("auto");
  });
});
