// Parallel speculative decoding (MineDraft PSD): 2m running requests in two sub-batches, run by the
// pipeline (pipeline.ts): while the target verifies the batch drafted last step, the draft worker
// drafts the other; then roles swap. The pipeline fills by drafting one sub-batch alone.
//
// Post-verify (on by default): with one running request (a single request, the tail, after aborts)
// there is no second sub-batch to draft, so the request's next round is drafted while its current
// drafts are verified, assuming all are accepted (pipeline.ts, Request.aheadSpec / takeAhead).
// Pre-verify (optional, with it): such a request holding no drafts runs a plain target step while
// the draft guesses that token and drafts the round after it.
//
// Overlapped admission (on by default): requests admitted while others hold drafts are prefilled
// inside the next step, beside its verification and drafting (pipeline.ts, admitIntoOverlap).
//
// TETRIS (optional): every request drafts k + e tokens (the extra drafting hides behind the other
// batch's verification); before a batch is verified only its k x m likeliest prefixes are kept.
import type { BatchExecutor, CallLabel, CallTiming, DraftCallOptions } from "./executor.js";
import { admitToDraftBatch, planStep, runStep, type PipelineCalls } from "./pipeline.js";
import type { Request } from "./request.js";
import type { StatsCollector } from "./stats.js";
import { applyTetris } from "./tetris.js";

export interface PsdOptions {
  /** draft length k */
  k: number;
  /** TETRIS: extra tokens drafted per request */
  tetrisExtra?: number;
  /** where TETRIS counts go */
  collector?: StatsCollector;
  /** post-verify with one running request (EngineOptions.postVerify; default true) */
  postVerify?: boolean;
  /** pre-verify too, in a one-request step without drafts (EngineOptions.preVerify; default false) */
  preVerify?: boolean;
  /** admission prefills overlapped with the step (EngineOptions.overlapAdmission; default true) */
  overlapAdmission?: boolean;
}

/** psd's schedule (a Scheduler: createScheduler returns it as one). */
export class PsdScheduler {
  readonly usesDraft = true;
  readonly capacity: number;
  private readonly k: number;
  private readonly extra: number;
  private readonly collector: StatsCollector | undefined;
  private readonly postVerify: boolean;
  private readonly preVerify: boolean;
  private readonly overlapAdmission: boolean;

  constructor(batchSize: number, opts: PsdOptions = { k: 4 }) {
    this.capacity = 2 * batchSize;
    this.k = opts.k;
    this.extra = opts.tetrisExtra ?? 0;
    this.collector = opts.collector;
    this.postVerify = opts.postVerify ?? true;
    this.preVerify = this.postVerify && opts.preVerify === true;
    this.overlapAdmission = opts.overlapAdmission ?? true;
  }

  admit(request: Request, running: readonly Request[]): void {
    admitToDraftBatch(request, running);
  }

  /**
   * Overlapped admission: while some request holds drafts the next step verifies them, and the new
   * requests join the batch it drafts; their prefills then run inside that step (pipeline.ts,
   * admitIntoOverlap) rather than stopping both workers first. Without drafts held (start-up, after
   * a tail) there is no verification to hide them behind: the engine prefills them first.
   */
  prefillsInStep(running: readonly Request[]): boolean {
    return this.overlapAdmission && running.some((r) => r.drafts !== null);
  }

  private get draftOptions(): DraftCallOptions {
    return this.extra > 0 ? { k: this.k + this.extra, confidence: true } : { k: this.k };
  }

  /** TETRIS: keep the batch's k x m likeliest prefixes, verify, count. */
  private async verifyBatch(
    batch: readonly Request[],
    executor: BatchExecutor,
    label: CallLabel,
  ): Promise<CallTiming | undefined> {
    if (this.extra === 0) return await executor.verify(batch, label);
    const selected = applyTetris(batch, this.k);
    const timing = await executor.verify(batch, label);
    let accepted = 0;
    for (const o of timing?.outcomes ?? []) accepted += o.accepted;
    this.collector?.recordTetris(
      this.extra,
      selected.drafted,
      selected.verified,
      accepted,
      timing?.outcomes?.length ?? 0,
    );
    return timing;
  }

  async step(
    running: readonly Request[],
    executor: BatchExecutor,
    step: number,
    admitted: readonly Request[] = [],
  ): Promise<void> {
    const calls: PipelineCalls = {
      verify: (batch, label) => this.verifyBatch(batch, executor, label),
      draft: (batch, label) => executor.draft(batch, label, this.draftOptions),
      prefill: (worker, batch, label) =>
        worker === "target" ? executor.prefillTarget(batch, label) : executor.prefillDraft(batch, label),
      ...(this.postVerify ? { draftAhead: (batch, label) => executor.draftAhead(batch, label, this.k) } : {}),
      preVerify: this.preVerify,
    };
    await runStep(planStep(running, "draft-alone"), running, calls, step, undefined, admitted);
  }
}
