// Schedules: what one engine step does with the running requests (`ar` and `sd` in
// sequential-schedulers.ts, `psd` in psd-scheduler.ts, `auto` in auto-scheduler.ts), and the
// factory that picks one per mode. A step awaits everything it starts, so the engine loop is the
// only code path that ever issues worker jobs. The schedules do not import this interface (that
// would be an import cycle with the factory): createScheduler's return type checks them.
import type { Backend } from "./backend.js";
import type { Mode } from "./types.js";
import type { BatchExecutor } from "./executor.js";
import type { Request } from "./request.js";
import type { StatsCollector } from "./stats.js";
import { AutoScheduler } from "./auto-scheduler.js";
import { PsdScheduler } from "./psd-scheduler.js";
import { ArScheduler, SdScheduler } from "./sequential-schedulers.js";

export interface Scheduler {
  /** running requests the schedule holds (admission stops there; the rest queue) */
  readonly capacity: number;
  /** whether the schedule uses the draft context (admission then prefills it too, unless lazyDraftCache) */
  readonly usesDraft: boolean;
  /**
   * whether a new request's draft cache is filled by its first draft call (which catches it up)
   * instead of at admission: for a schedule that may never draft it
   */
  readonly lazyDraftCache?: boolean;
  /** place a newly admitted request (already in `running`) */
  admit(request: Request, running: readonly Request[]): void;
  /** whether a newly admitted request takes the highest free slot (default: sub-batch 1 does) */
  slotFromTop?(request: Request): boolean;
  /**
   * whether the next step is one pass over every running request (ar, sd, auto's sequential
   * schedule), so the engine should first move requests to make their slots one run of ids
   */
  compactsSlots?(): boolean;
  /**
   * whether the requests admitted now can have their admission prefills run by the next step, beside
   * the running requests' calls (the step's `admitted`), instead of the engine running them first
   * while both workers wait; asked before they join `running`
   */
  prefillsInStep?(running: readonly Request[]): boolean;
  /** `admitted`: requests admitted since the last step whose prefills this step must run (prefillsInStep) */
  step(
    running: readonly Request[],
    executor: BatchExecutor,
    step: number,
    admitted?: readonly Request[],
  ): Promise<void>;
  /** the backend's thread placements changed (Backend.limitCores): what was measured at the old ones is stale */
  placementChanged?(): void;
}

export interface SchedulerSetup {
  mode: Mode;
  batchSize: number;
  /** k (the largest k in auto) */
  draftTokens: number;
  /** psd: TETRIS extra drafts per request (0 = off) */
  tetrisExtra: number;
  /** drafts by prompt lookup; combined: the draft worker drafts where the lookup finds nothing */
  ngram?: { combined: boolean };
  /** psd: post-verify with one running request (default true) */
  postVerify?: boolean;
  /** psd: pre-verify too, with postVerify (default false) */
  preVerify?: boolean;
  /** psd: admission prefills overlapped with the running requests' step (default true) */
  overlapAdmission?: boolean;
  /** auto: steps between probes, and their time budget */
  probeEvery?: number;
  probeBudget?: number;
  backend: Backend;
  collector: StatsCollector;
}

export function createScheduler(setup: SchedulerSetup): Scheduler {
  const { mode, batchSize } = setup;
  switch (mode) {
    case "ar":
      return new ArScheduler(batchSize);
    case "sd":
      return new SdScheduler(batchSize, setup.ngram?.combined !== false);
    case "psd":
      return new PsdScheduler(batchSize, {
        k: setup.draftTokens,
        tetrisExtra: setup.tetrisExtra,
        postVerify: setup.postVerify ?? true,
        preVerify: setup.preVerify === true,
        overlapAdmission: setup.overlapAdmission ?? true,
        collector: setup.collector,
      });
    case "auto":
      return new AutoScheduler({
        batchSize,
        kMax: setup.draftTokens,
        backend: setup.backend,
        collector: setup.collector,
        probeEvery: setup.probeEvery,
        probeBudget: setup.probeBudget,
      });
  }
}
