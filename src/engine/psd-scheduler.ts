// Parallel speculative decoding (MineDraft PSD): 2m running requests in two sub-batches. While the
// target verifies the batch drafted last step, the draft worker drafts the other; then roles swap.
//
// Invariant between steps: every request holding unverified drafts is in the same sub-batch, and
// all of that sub-batch's requests hold drafts except ones just moved there by rebalancing.
// Drafting always starts from a request's latest verified state, so nothing is drafted past
// unverified tokens.
//
// TETRIS (optional): every request drafts k + e tokens (the extra drafting hides behind the other
// batch's verification); before a batch is verified only its k x m likeliest prefixes are kept.
import type { BatchExecutor, DraftCallOptions } from "./executor.js";
import type { Request } from "./request.js";
import type { Scheduler } from "./scheduler.js";
import type { StatsCollector } from "./stats.js";
import { applyTetris } from "./tetris.js";

export type Batch = 0 | 1;

export const other = (batch: Batch): Batch => (batch === 0 ? 1 : 0);

export interface PsdOptions {
  /** draft length k */
  k: number;
  /** TETRIS: extra tokens drafted per request */
  tetrisExtra?: number;
  /** where TETRIS counts go */
  collector?: StatsCollector;
}

export function batchSizes(running: readonly Request[]): [number, number] {
  const sizes: [number, number] = [0, 0];
  for (const r of running) sizes[r.batch]++;
  return sizes;
}

/** Join the batch that is drafted next, so nobody reaches verification without drafts. */
export function admitToDraftBatch(request: Request, running: readonly Request[]): void {
  const holder = running.find((r) => r !== request && r.drafts !== null);
  if (holder) {
    request.batch = other(holder.batch);
    return;
  }
  const sizes = batchSizes(running.filter((r) => r !== request));
  request.batch = sizes[0] <= sizes[1] ? 0 : 1; // start-up: alternate
}

/**
 * Moves requests out of `from` (which must hold no drafts: it is the batch drafted next) while
 * it is more than one request larger than the other batch. Latest admitted move first.
 */
export function rebalance(running: readonly Request[], from: Batch): void {
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

/**
 * Re-forms the two sub-batches from slot order (lower half of the slots: batch 0), when no request
 * holds drafts. Each sub-batch is then one run of sequence ids whenever all of them are, which
 * keeps a verification of either one a single forward pass with per-sequence KV streams.
 */
export function splitBySlot(running: readonly Request[]): void {
  const bySlot = [...running].sort((a, b) => a.slot - b.slot);
  const half = Math.ceil(bySlot.length / 2);
  bySlot.forEach((r, i) => (r.batch = i < half ? 0 : 1));
}

export class PsdScheduler implements Scheduler {
  readonly usesDraft = true;
  readonly capacity: number;
  private readonly k: number;
  private readonly extra: number;
  private readonly collector: StatsCollector | undefined;

  constructor(batchSize: number, opts: PsdOptions = { k: 4 }) {
    this.capacity = 2 * batchSize;
    this.k = opts.k;
    this.extra = opts.tetrisExtra ?? 0;
    this.collector = opts.collector;
  }

  admit(request: Request, running: readonly Request[]): void {
    admitToDraftBatch(request, running);
  }

  private get draftOptions(): DraftCallOptions {
    return this.extra > 0 ? { k: this.k + this.extra, confidence: true } : { k: this.k };
  }

  /** TETRIS: keep the batch's k x m likeliest prefixes, verify, count. */
  private async verifyBatch(batch: readonly Request[], executor: BatchExecutor, label: Parameters<BatchExecutor["verify"]>[1]): Promise<void> {
    if (this.extra === 0) {
      await executor.verify(batch, label);
      return;
    }
    const selected = applyTetris(batch, this.k);
    const timing = await executor.verify(batch, label);
    let accepted = 0;
    for (const o of timing?.outcomes ?? []) accepted += o.accepted;
    this.collector?.recordTetris(this.extra, selected.drafted, selected.verified, accepted, timing?.outcomes?.length ?? 0);
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
      await this.verifyBatch(drafted, executor, { step, batch: -1, batchSizes: batchSizesNow });
      return;
    }
    await Promise.all([
      this.verifyBatch(drafted, executor, { step, batch: verifyBatch, batchSizes: batchSizesNow }),
      executor.draft(toDraft, { step, batch: draftBatch, batchSizes: batchSizesNow }, this.draftOptions),
    ]);
  }

  /** Nothing awaits verification: start-up, or the pipeline drained. */
  private async stepWithoutDrafts(running: readonly Request[], executor: BatchExecutor, step: number): Promise<void> {
    rebalance(running, 0);
    rebalance(running, 1);
    const sizes = batchSizes(running);
    if (sizes[0] > 0 && sizes[1] > 0) {
      // Fill the pipeline: draft one batch alone; next step verifies it while drafting the other.
      await executor.draft(
        running.filter((r) => r.batch === 0),
        { step, batch: 0, batchSizes: sizes },
        this.draftOptions,
      );
      return;
    }
    // A single running request cannot be split: sequential SD.
    await executor.draft(running, { step, batch: -1, batchSizes: sizes }, this.draftOptions);
    await this.verifyBatch(running, executor, { step, batch: -1, batchSizes: sizes });
  }

  private rebalance(running: readonly Request[], from: Batch): void {
    rebalance(running, from);
  }
}
