// Batched calls to the two workers, timed into the trace. A failing call rejects exactly the
// requests it served; these methods never throw, so schedules can run them concurrently.
import type { Backend, DraftSpec } from "./backend.js";
import type { TraceEvent } from "./types.js";
import { NO_DRAFTS, type Request } from "./request.js";
import type { StatsCollector } from "./stats.js";

/** Where a call sits in the schedule, for the trace. */
export interface CallLabel {
  step: number;
  /** psd sub-batch, -1 when sequential */
  batch: number;
  batchSizes?: [number, number];
}

type Worker = TraceEvent["worker"];
type Kind = TraceEvent["kind"];

export class BatchExecutor {
  constructor(
    private readonly backend: Backend,
    private readonly collector: StatsCollector,
    /** configured draft length k */
    private readonly k: number,
    /** whether the schedule uses the draft context (not in ar) */
    private readonly useDraft: boolean,
  ) {}

  /** Prefills the prompt (minus its last token) into the target and, for speculative modes, the draft. */
  async prefill(requests: readonly Request[], label: CallLabel): Promise<void> {
    const needed = requests.filter((r) => r.promptLength > 1);
    if (needed.length === 0) return;
    const onWorker = (worker: Worker, call: (r: Request) => Promise<void>) =>
      this.timed(worker, "prefill", needed, label, () =>
        Promise.all(needed.map((r) => invoke(() => call(r)).catch((error: unknown) => r.fail(error)))),
      );
    const target = () => onWorker("target", (r) => this.backend.target.prefill(r.slot, 0, r.prefillTokens));
    const draft = this.backend.draft;
    if (!this.useDraft || !draft) return void (await target());
    const drafts = () => onWorker("draft", (r) => draft.prefill(r.slot, 0, r.prefillTokens));
    if (this.backend.workersMayOverlap === false) {
      await target();
      await drafts();
    } else {
      await Promise.all([target(), drafts()]);
    }
  }

  /** Drafts for every live request; requests at the context limit get an empty chain. */
  async draft(requests: readonly Request[], label: CallLabel): Promise<void> {
    const drafting: Request[] = [];
    const specs: DraftSpec[] = [];
    for (const r of requests) {
      if (r.done) continue;
      const k = r.draftLength(this.k);
      if (k === 0) r.drafts = NO_DRAFTS;
      else {
        drafting.push(r);
        specs.push(r.draftSpec(k));
      }
    }
    if (specs.length === 0) return;
    const worker = this.backend.draft;
    try {
      if (!worker) throw new Error("no draft worker");
      const outputs = await this.timed("draft", "draft", drafting, label, () => worker.draft(specs));
      checkCount("draft", outputs, specs.length);
      drafting.forEach((r, i) => {
        if (r.done) return;
        try {
          r.setDrafts(outputs[i]!, specs[i]!.k);
        } catch (error) {
          r.fail(error);
        }
      });
    } catch (error) {
      for (const r of drafting) r.fail(error);
    }
  }

  /** Verifies each live request's drafts (none in ar) and applies acceptance. */
  async verify(requests: readonly Request[], label: CallLabel): Promise<void> {
    const verifying = requests.filter((r) => !r.done);
    if (verifying.length === 0) return;
    const specs = verifying.map((r) => r.verifySpec());
    try {
      const outputs = await this.timed("target", "verify", verifying, label, () => this.backend.target.verify(specs));
      checkCount("target", outputs, specs.length);
      verifying.forEach((r, i) => {
        if (r.done) return; // aborted while the call was in flight
        try {
          r.applyVerification(outputs[i]!);
        } catch (error) {
          r.fail(error);
        }
      });
    } catch (error) {
      for (const r of verifying) r.fail(error);
    }
  }

  /** Frees finished requests' sequences on both workers; errors are ignored (admission re-prefills from 0). */
  async release(requests: readonly Request[]): Promise<void> {
    const jobs: Promise<unknown>[] = [];
    for (const r of requests) {
      if (r.slot < 0) continue;
      jobs.push(invoke(() => this.backend.target.removeSeq(r.slot)).catch(ignore));
      const draft = this.backend.draft;
      if (this.useDraft && draft) jobs.push(invoke(() => draft.removeSeq(r.slot)).catch(ignore));
    }
    await Promise.all(jobs);
  }

  private async timed<T>(
    worker: Worker,
    kind: Kind,
    requests: readonly Request[],
    label: CallLabel,
    run: () => Promise<T>,
  ): Promise<T> {
    const start = this.collector.now();
    try {
      return await run();
    } finally {
      const event: TraceEvent = {
        worker,
        kind,
        start,
        end: this.collector.now(),
        step: label.step,
        requests: requests.map((r) => r.id),
        batch: label.batch,
      };
      if (label.batchSizes) event.batchSizes = [label.batchSizes[0], label.batchSizes[1]];
      this.collector.recordBusy(event);
    }
  }
}

/** Runs a backend call so that a synchronous throw becomes a rejection. */
function invoke<T>(call: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

function ignore(): void {}

function checkCount(worker: Worker, outputs: readonly unknown[], expected: number): void {
  if (!Array.isArray(outputs) || outputs.length !== expected) {
    const got = Array.isArray(outputs) ? outputs.length : typeof outputs;
    throw new Error(`${worker} worker returned ${got} outputs for ${expected} sequences`);
  }
}
