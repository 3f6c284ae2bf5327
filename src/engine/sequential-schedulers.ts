// The single-pass schedules: each step is one pass over every running request (ar: a target
// decode step; sd: draft all, then verify all). Each is a Scheduler (scheduler.ts), checked where
// createScheduler returns it: importing the interface here would make an import cycle.
import type { BatchExecutor } from "./executor.js";
import type { Request } from "./request.js";

/** Autoregressive: one target decode step for every running request. */
export class ArScheduler {
  readonly usesDraft = false;
  constructor(readonly capacity: number) {}
  admit(): void {}
  compactsSlots(): boolean {
    return true;
  }
  async step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    await executor.verify(running, { step, batch: -1 });
  }
}

/** Standard speculative decoding: draft all, then verify all (drafts from the draft worker, or by prompt lookup). */
export class SdScheduler {
  constructor(
    readonly capacity: number,
    /** false when the drafts come from prompt lookup: no draft context to fill */
    readonly usesDraft = true,
  ) {}
  admit(): void {}
  compactsSlots(): boolean {
    return true;
  }
  async step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    await executor.draft(running, { step, batch: -1 });
    await executor.verify(running, { step, batch: -1 });
  }
}
