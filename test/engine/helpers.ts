// Shared test helpers.
import { Engine } from "../../src/engine/engine.js";
import type { EngineOptions, GenerateOptions, GenerateResult } from "../../src/engine/types.js";
import { FakeBackend, makePrompt, type FakeOptions } from "./fake-backend.js";

export interface Workload {
  prompts: number[][];
  maxTokens: number[];
}

/** `n` prompts of varied lengths with varied output budgets. */
export function workload(n: number, seed = 0): Workload {
  return {
    prompts: Array.from({ length: n }, (_, i) => makePrompt(seed * 1000 + i, 2 + ((i * 7 + seed) % 14))),
    maxTokens: Array.from({ length: n }, (_, i) => 6 + ((i * 11 + seed * 3) % 27)),
  };
}

export function makeEngine(options: EngineOptions, fake: FakeOptions = {}): { engine: Engine; fake: FakeBackend } {
  const backend = new FakeBackend(fake);
  return { engine: new Engine(backend, options), fake: backend };
}

/** Submits the whole workload at once (more requests than capacity: queuing and admission run). */
export function runWorkload(engine: Engine, w: Workload, opts: GenerateOptions = {}): Promise<GenerateResult[]> {
  return Promise.all(w.prompts.map((p, i) => engine.generate(p, { maxTokens: w.maxTokens[i], ...opts })));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves with the rejection of `promise` (fails if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}
