// Thread placement. Measured on 2-core machines: oversubscribing the cores makes ggml 3-5x slower,
// so contexts that run at the same time must never together use more threads than there are cores.
import { availableParallelism } from "node:os";

export interface ThreadPlan {
  target: number;
  draft: number;
  /** true when the two contexts run at the same time (psd) */
  concurrent: boolean;
}

export function coreCount(): number {
  return Math.max(1, availableParallelism());
}

/**
 * Default policy: when draft and target overlap (psd) split the cores between them (the target,
 * the bigger model, gets the larger half); when phases run one after the other (ar, sd) each phase
 * uses all cores. A model placed on a GPU needs one thread to drive it.
 */
export function defaultThreads(opts: {
  concurrent: boolean;
  cores?: number;
  targetOnGpu?: boolean;
  draftOnGpu?: boolean;
}): ThreadPlan {
  const cores = opts.cores ?? coreCount();
  if (!opts.concurrent)
    return { target: opts.targetOnGpu ? 1 : cores, draft: opts.draftOnGpu ? 1 : cores, concurrent: false };
  if (opts.targetOnGpu && !opts.draftOnGpu) return { target: 1, draft: Math.max(1, cores - 1), concurrent: true };
  if (opts.draftOnGpu && !opts.targetOnGpu) return { target: Math.max(1, cores - 1), draft: 1, concurrent: true };
  if (opts.targetOnGpu && opts.draftOnGpu) return { target: 1, draft: 1, concurrent: true };
  const draft = Math.max(1, Math.floor(cores / 2));
  return { target: Math.max(1, cores - draft), draft, concurrent: true };
}

export interface ThreadPlacements {
  /** the phases take turns: each may use all the cores */
  sequential: { target: number; draft: number };
  /** both workers at once: the cores split between them */
  overlapped: { target: number; draft: number };
  /**
   * whether the overlapped placement may run: its CPU threads fit the cores, or each context has one
   * thread (a one-thread graph has no barrier for a descheduled thread to stall, so two of them
   * beyond the cores only share them)
   */
  overlapFits: boolean;
}

/** Both placements on `cores` cores; counts the user pinned hold in both. */
export function threadPlacements(o: {
  cores: number;
  targetOnGpu: boolean;
  draftOnGpu: boolean;
  pinned?: { target?: number; draft?: number };
}): ThreadPlacements {
  const pin = (p: ThreadPlan) => ({ target: o.pinned?.target ?? p.target, draft: o.pinned?.draft ?? p.draft });
  const sequential = pin(
    defaultThreads({ concurrent: false, cores: o.cores, targetOnGpu: o.targetOnGpu, draftOnGpu: o.draftOnGpu }),
  );
  const overlapped = pin(
    defaultThreads({ concurrent: true, cores: o.cores, targetOnGpu: o.targetOnGpu, draftOnGpu: o.draftOnGpu }),
  );
  const cpuThreads = (o.targetOnGpu ? 0 : overlapped.target) + (o.draftOnGpu ? 0 : overlapped.draft);
  return {
    sequential,
    overlapped,
    overlapFits: cpuThreads <= o.cores || (overlapped.target === 1 && overlapped.draft === 1),
  };
}

/**
 * Threads for the sampled rows of a context whose model is on a GPU (ContextOptions.rowThreads): it
 * decodes with one CPU thread, but each sampled row costs 0.3-1.3 ms of CPU math after the decode
 * (docs/performance.md "Per-row sampling math"). It gets the cores the threads beside it (a CPU-side model's decode
 * threads, or a second GPU model's rows) do not use. A context on the CPU returns 0: its rows use its
 * own decode threads.
 */
export function rowThreads(onGpu: boolean, cpuThreadsBeside: number, cores: number = coreCount()): number {
  return onGpu ? Math.max(1, cores - cpuThreadsBeside) : 0;
}
