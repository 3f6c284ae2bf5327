// The core governor: thread placements that follow the cores other work leaves free. Its hysteresis on
// scripted load readings, and the engine on the fake backend: a fixed mode and auto re-placed while a
// competitor comes and goes, outputs unchanged (greedy stays exact through every re-placement).
import { describe, expect, it } from "vitest";
import type { Backend, CpuLoad } from "../../src/engine/backend.js";
import { CoreGovernor } from "../../src/engine/core-governor.js";
import { makePrompt } from "./fake-backend.js";
import { makeEngine, sleep } from "./helpers.js";

/** A backend with only what the governor reads: scripted readings, recorded limits. */
function scripted(cores: number) {
  const limits: number[] = [];
  let reading: CpuLoad = { competing: 0, sample: 0 };
  const backend = {
    cores,
    cpuLoad: () => reading,
    limitCores: async (c: number) => (limits.push(c), true),
  } as unknown as Backend;
  return {
    governor: CoreGovernor.for(backend)!,
    limits,
    /** a fresh reading */
    read(competing: number) {
      reading = { competing, sample: reading.sample + 1 };
    },
  };
}

describe("CoreGovernor", () => {
  it("is there only when the backend measures the load and can re-place its threads", () => {
    expect(CoreGovernor.for({} as Backend)).toBeUndefined();
    expect(scripted(2).governor).toBeDefined();
  });

  it("takes fewer cores after two busy readings, and all of them back after three quiet ones", async () => {
    const g = scripted(2);
    for (const c of [0, 0.05, 0.3, 0.45, 0.3]) {
      g.read(c);
      expect(await g.governor.update()).toBe(false); // a little background load is not competition
    }
    g.read(0.9);
    expect(await g.governor.update()).toBe(false); // one busy reading may be a burst
    g.read(0.7);
    expect(await g.governor.update()).toBe(true);
    expect(g.limits).toEqual([1]);
    expect(g.governor.stats).toEqual({ cores: 1, of: 2, changes: 1 });
    // re-reading the same measurement never counts twice
    g.read(0.05);
    for (let i = 0; i < 5; i++) expect(await g.governor.update()).toBe(false);
    g.read(0.05);
    expect(await g.governor.update()).toBe(false);
    g.read(1); // a busy reading in between starts the count again
    expect(await g.governor.update()).toBe(false);
    for (let i = 0; i < 2; i++) {
      g.read(0.1);
      expect(await g.governor.update()).toBe(false);
    }
    g.read(0.1);
    expect(await g.governor.update()).toBe(true);
    expect(g.limits).toEqual([1, 2]);
    expect(g.governor.stats).toEqual({ cores: 2, of: 2, changes: 2 });
  });

  it("on a larger machine, leaves as many cores as the others do not use, at least one", async () => {
    const g = scripted(16);
    for (const c of [3.2, 3.4]) {
      g.read(c);
      await g.governor.update();
    }
    for (const c of [40, 40]) {
      g.read(c);
      await g.governor.update();
    }
    expect(g.limits).toEqual([13, 1]);
  });
});

describe("the engine under a changing load (fake backend)", () => {
  it("sd: re-placed on one core while a competitor runs and back after, every output exact", async () => {
    let competing = 0;
    const { engine, fake } = makeEngine(
      { mode: "sd", batchSize: 2, draftTokens: 3 },
      { verifyDelayMs: 2, load: { cores: 2, competing: () => competing } },
    );
    const prompts = [makePrompt(1, 6), makePrompt(2, 6), makePrompt(3, 6), makePrompt(4, 6)];
    const run = Promise.all(prompts.map((p) => engine.generate(p, { maxTokens: 60 })));
    await sleep(20);
    competing = 1;
    await sleep(40);
    competing = 0;
    const results = await run;
    results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(prompts[i]!, 60)));
    expect(fake.coreLimits).toEqual([1, 2]);
    expect(engine.stats().coreLimit).toEqual({ cores: 2, of: 2, changes: 2 });
    await engine.close();
  });

  it("adaptThreads: false keeps the placement whatever the load", async () => {
    const { engine, fake } = makeEngine(
      { mode: "ar", batchSize: 1, adaptThreads: false },
      { verifyDelayMs: 1, load: { cores: 2, competing: () => 2 } },
    );
    await engine.generate(makePrompt(1, 4), { maxTokens: 20 });
    expect(fake.coreLimits).toEqual([]);
    expect(engine.stats().coreLimit).toBeUndefined();
    await engine.close();
  });

  it("auto: moves to the new placements and measures them afresh; output exact", async () => {
    let competing = 0;
    const plansFor = (cores: number) =>
      cores >= 2
        ? { sequential: { target: 2, draft: 2 }, overlapped: { target: 1, draft: 1 } }
        : { sequential: { target: 1, draft: 1 }, overlapped: { target: 1, draft: 1 } };
    const { engine, fake } = makeEngine(
      { mode: "auto", batchSize: 2, draftTokens: 3 },
      {
        threadPlans: plansFor(2),
        verifyMs: (tokens, threads) => (2 + 0.2 * tokens) * (2 / threads),
        draftStepMs: (_r, threads) => 0.5 * (2 / threads),
        load: { cores: 2, competing: () => competing, replan: plansFor },
      },
    );
    const prompts = [makePrompt(5, 6), makePrompt(6, 6), makePrompt(7, 6), makePrompt(8, 6)];
    const run = Promise.all(prompts.map((p) => engine.generate(p, { maxTokens: 80 })));
    await sleep(30);
    competing = 1.2;
    const results = await run;
    results.forEach((r, i) => expect(r.tokens).toEqual(fake.greedyContinuation(prompts[i]!, 80)));
    expect(fake.coreLimits).toEqual([1]);
    // after the change every sequential step ran on one thread each
    const last = fake.threadCalls.at(-1)!;
    expect(last).toEqual({ target: 1, draft: 1 });
    const auto = engine.stats().auto!;
    expect(auto.decisions.some((d) => d.schedule === "sequential" && d.threads.target === 1)).toBe(true);
    expect(auto.decisions.some((d) => d.schedule === "sequential" && d.threads.target === 2)).toBe(true);
    await engine.close();
  });
});
