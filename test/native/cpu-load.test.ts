// The load monitor's count of this process's JS work: work between the models' jobs waits for nothing
// the models do (the engine's step, streaming its tokens), so with a JobClock it is not counted as
// competing; work while a job runs is. Two monitors read the same windows, with and without the clock.
import { describe, expect, it } from "vitest";
import { CpuLoadMonitor, JobClock } from "../../src/native/cpu-load.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe("CpuLoadMonitor with a JobClock", () => {
  it("does not count JS work that ran while no job was in flight", async () => {
    const clock = new JobClock();
    const [withClock, without] = [new CpuLoadMonitor(2, 0, clock), new CpuLoadMonitor(2, 0)];
    spin(120); // JS busy, no job
    await clock.track(sleep(120)); // a job, JS idle
    const [a, b] = [withClock.read().competing, without.read().competing];
    // the event loop was busy about half the window: counted without the clock, not with it
    expect(b - a).toBeGreaterThan(0.3);
    expect(clock.busyMs).toBeGreaterThan(100);
  });

  it("counts JS work that ran while a job was in flight", async () => {
    const clock = new JobClock();
    const [withClock, without] = [new CpuLoadMonitor(2, 0, clock), new CpuLoadMonitor(2, 0)];
    let release!: () => void;
    const job = clock.track(new Promise<void>((resolve) => (release = resolve)));
    spin(120); // JS busy beside the job
    await sleep(120);
    release();
    await job;
    const [a, b] = [withClock.read().competing, without.read().competing];
    expect(Math.abs(b - a)).toBeLessThan(0.15);
    expect(a).toBeGreaterThan(0.3);
  });

  it("a rejected job settles the clock too", async () => {
    const clock = new JobClock();
    await expect(clock.track(Promise.reject(new Error("x")))).rejects.toThrow("x");
    await sleep(0);
    const before = clock.busyMs;
    await sleep(30);
    expect(clock.busyMs).toBe(before);
  });
});
