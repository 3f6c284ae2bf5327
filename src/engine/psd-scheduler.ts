// Parallel speculative decoding (MineDraft PSD): 2m running requests in two sub-batches. While the
// target verifies the batch drafted last step, the draft worker drafts the other; then roles swap.
//
// Invariant between steps: every request holding unverified drafts is in the same sub-batch, and
// all of that sub-batch's requests hold drafts except ones just moved there by rebalancing.
// Drafting always starts from a request's latest verified state, so nothing is drafted past
// unverified tokens.
import type { BatchExecutor } from "./executor.js";
import type { Request } from "./request.js";
import type { Scheduler } from "./scheduler.js";

type Batch = 0 | 1;

const other = (batch: Batch): Batch => (batch === 0 ? 1 : 0);

function batchSizes(running: readonly Request[]): [number, number] {
  const sizes: [number, number] = [0, 0];
  for (const r of running) sizes[r.batch]++;
  return sizes;
}

export class PsdScheduler implements Scheduler {
  readonly usesDraft = true;
  readonly capacity: number;

  constructor(batchSize: number) {
    this.capacity = 2 * batchSize;
  }

  /** Join the batch that is drafted next, so nobody reaches verification without drafts. */
  admit(request: Request, running: readonly Request[]): void {
    const holder = running.find((r) => r !== request && r.drafts !== null);
    if (holder) {
      request.batch = other(holder.batch);
      return;
    }
    const sizes = batchSizes(running.filter((r) => r !== request));
    request.batch = sizes[0] <= sizes[1] ? 0 : 1; // start-up: alternate
  }

  async step(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    const drafted = running.filter((r) => r.drafts !== null);
    if (drafted.length === 0) return this.stepWithoutDrafts(running, executor, step);

    const verifyBatch = drafted[0]!.batch;
    const draftBatch = other(verifyBatch);
    this.rebalance(running, draftBatch);
    const batchSizesNow = batchSizes(running);
    const toDraft = running.filter((r) => r.batch === draftBatch);
    if (toDraft.length === 0) {
      // The other batch emptied (finishes, aborts): verify alone; the next step re-splits.
      await executor.verify(drafted, { step, batch: -1, batchSizes: batchSizesNow });
      return;
    }
    await Promise.all([
      executor.verify(drafted, { step, batch: verifyBatch, batchSizes: batchSizesNow }),
      executor.draft(toDraft, { step, batch: draftBatch, batchSizes: batchSizesNow }),
    ]);
  }

  /** Nothing awaits verification: start-up, or the pipeline drained. */
  private async stepWithoutDrafts(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    this.rebalance(running, 0);
    this.rebalance(running, 1);
    const sizes = batchSizes(running);
    if (sizes[0] > 0 && sizes[1] > 0) {
      // Fill the pipeline: draft one batch alone; next step verifies it while drafting the other.
      await executor.draft(
        running.filter((r) => r.batch === 0),
        { step, batch: 0, batchSizes: sizes },
      );
      return;
    }
    // A single running request cannot be split: sequential SD.
    await executor.draft(running, { step, batch: -1, batchSizes: sizes });
    await executor.verify(running, { step, batch: -1, batchSizes: sizes });
  }

  /**
   * Moves requests out of `from` (which must hold no drafts: it is the batch drafted next) while
   * it is more than one request larger than the other batch. Latest admitted move first.
   */
  private rebalance(running: readonly Request[], from: Batch): void {
    const sizes = batchSizes(running);
    const to = other(from);
    for (let i = running.length - 1; i >= 0 && sizes[from] > sizes[to] + 1; i--) {
      const r = running[i]!;
      if (r.batch !== from || r.drafts !== null) continue;
      r.batch = to;
      sizes[from]--;
      sizes[to]++;
    }
  }
}
