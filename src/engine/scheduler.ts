// Schedules: what one engine step does with the running requests. `ar` and `sd` here, `psd` in
// psd-scheduler.ts. A step awaits everything it starts, so the engine loop is the only code path
// that ever issues worker jobs.
import type { Mode } from "./types.js";
import type { BatchExecutor } from "./executor.js";
import type { Request } from "./request.js";
import { PsdScheduler } from "./psd-scheduler.js";

export interface Scheduler {
  /** running requests the schedule holds (admission stops there; the rest queue) */
  readonly capacity: number;
  /** whether admission prefills the draft context too */
  readonly usesDraft: boolean;
  /** place a newly admitted request (already in `running`) */
  admit(request: Request, running: readonly Request[]): void;
  step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void>;
}

/** Autoregressive: one target decode step for every running request. */
export class ArScheduler implements Scheduler {
  readonly usesDraft = false;
  constructor(readonly capacity: number) {}
  admit(): void {}
  async step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    await executor.verify(running, { step, batch: -1 });
  }
}

/** Standard speculative decoding: draft all, then verify all. */
export class SdScheduler implements Scheduler {
  readonly usesDraft = true;
  constructor(readonly capacity: number) {}
  admit(): void {}
  async step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    await executor.draft(running, { step, batch: -1 });
    await executor.verify(running, { step, batch: -1 });
  }
}

export function createScheduler(mode: Mode, batchSize: number): Scheduler {
  switch (mode) {
    case "ar":
      return new ArScheduler(batchSize);
    case "sd":
      return new SdScheduler(batchSize);
    case "psd":
      return new PsdScheduler(batchSize);
  }
}
