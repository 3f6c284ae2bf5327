// Batched calls to the two workers, timed into the trace. A failing call rejects exactly the
// requests it served; these methods never throw, so schedules can run them concurrently.
import type { Backend, Worker as BackendWorker, DraftSpec } from "./backend.js";
import type { TraceEvent } from "./types.js";
import { NO_DRAFTS, type AheadDrafts, type Request } from "./request.js";
import type { StatsCollector } from "./stats.js";

/** Where a call sits in the schedule, for the trace. */
export interface CallLabel {
  step: number;
  /** psd sub-batch, -1 when sequential */
  batch: number;
  batchSizes?: [number, number];
  /** auto: the step's choice */
  decision?: TraceEvent["decision"];
}

/** What a draft or verify call cost, for cost models. */
export interface CallTiming {
  ms: number;
  /** requests served */
  requests: number;
  /** draft: the longest chain drafted (autoregressive steps); verify: tokens in the pass (sum of k_i + 1) */
  tokens: number;
  /** draft: autoregressive steps; verify: the largest k */
  k: number;
  /** verify: drafts verified and accepted per request whose verification applied */
  outcomes?: { k: number; accepted: number }[];
  /** draft: time the draft worker spent first catching draft caches up (a prefill; not in ms) */
  catchUpMs?: number;
}

export interface DraftCallOptions {
  /** draft length for this call (default: the configured k) */
  k?: number;
  /** ask for DraftOutput.confidence (TETRIS) */
  confidence?: boolean;
}

type Worker = TraceEvent["worker"];

/** Pending draft-side tokens beyond which a draft call first catches the draft cache up. */
const CATCH_UP_TOKENS = 16;
type Kind = TraceEvent["kind"];

export class BatchExecutor {
  constructor(
    private readonly backend: Backend,
    private readonly collector: StatsCollector,
    /** configured draft length k */
    private readonly k: number,
    /** whether the schedule uses the draft context (not in ar) */
    private readonly useDraft: boolean,
    /** whether the draft cache is filled by a request's first draft call rather than at admission */
    private readonly lazyDraftCache = false,
    /**
     * drafts come first from each request's prompt lookup (EngineOptions.ngram); the draft worker,
     * where there is one, drafts for the requests whose lookup found nothing
     */
    private readonly ngram = false,
  ) {}

  /**
   * Prefills the prompt (minus its last token) into the target and, for speculative modes, the
   * draft (unless the draft cache is filled lazily: then its first draft call catches it up).
   */
  async prefill(requests: readonly Request[], label: CallLabel): Promise<void> {
    const target = () => this.prefillTarget(requests, label);
    const drafts = () => this.prefillDraft(requests, label);
    if (this.backend.workersMayOverlap === false) {
      await target();
      await drafts();
    } else {
      await Promise.all([target(), drafts()]);
    }
  }

  /** The target's side of prefill(); submitted synchronously, so it queues behind the calls issued before it. */
  prefillTarget(requests: readonly Request[], label: CallLabel): Promise<void> {
    return this.prefillOn("target", this.backend.target, requests, label);
  }

  /** The draft's side of prefill() (nothing where the schedule fills the draft cache lazily or has no draft). */
  prefillDraft(requests: readonly Request[], label: CallLabel): Promise<void> {
    const draft = this.backend.draft;
    if (!this.useDraft || this.lazyDraftCache || !draft) return Promise.resolve();
    return this.prefillOn("draft", draft, requests, label, (r) => void (r.draftPos = r.promptLength - 1));
  }

  private async prefillOn(
    worker: Worker,
    w: BackendWorker,
    requests: readonly Request[],
    label: CallLabel,
    after: (r: Request) => void = () => {},
  ): Promise<void> {
    const needed = requests.filter((r) => !r.done && r.promptLength > 1);
    if (needed.length === 0) return;
    // several admissions share one call where the worker packs them (one forward pass per batch, not per
    // request); if that call fails, each request is prefilled alone so only the one at fault fails
    await this.timed(worker, "prefill", needed, label, async () => {
      if (w.prefillMany && needed.length > 1) {
        const packed = await invoke(() =>
          w.prefillMany!(needed.map((r) => ({ seq: r.slot, pos: 0, tokens: r.prefillTokens }))),
        ).then(
          () => true,
          () => false,
        );
        if (packed) return void needed.forEach(after);
      }
      await Promise.all(
        needed.map((r) =>
          invoke(() => w.prefill(r.slot, 0, r.prefillTokens)).then(
            () => after(r),
            (error: unknown) => r.fail(error),
          ),
        ),
      );
    });
  }

  /**
   * Drafts for every live request; requests at the context limit get a shorter or empty chain.
   * With prompt lookup, a request whose lookup finds a match takes its tokens and the draft worker
   * drafts only for the others (per request, per step). Resolves to the call's timing: the draft
   * worker's call, plus with prompt lookup the lookups' own (tiny) time spread over every request
   * drafted for, so `auto` prices drafting at what it costs on the workload; undefined when nothing
   * was drafted or the call failed.
   */
  async draft(
    requests: readonly Request[],
    label: CallLabel,
    opts: DraftCallOptions = {},
  ): Promise<CallTiming | undefined> {
    const wanted = opts.k ?? this.k;
    const confidence = opts.confidence === true;
    const chains: { r: Request; k: number }[] = [];
    for (const r of requests) {
      if (r.done) continue;
      const k = r.draftLength(wanted);
      if (k === 0) r.drafts = NO_DRAFTS;
      else chains.push({ r, k });
    }
    if (chains.length === 0) return undefined;
    const worker = this.backend.draft;
    let misses = chains;
    let lookupMs = 0;
    if (this.ngram) {
      // O(maxN + k) per request in TypeScript
      const start = this.collector.now();
      misses = [];
      for (const chain of chains) {
        try {
          if (!chain.r.draftByLookup(chain.k)) {
            if (worker) misses.push(chain);
            else chain.r.drafts = NO_DRAFTS;
          }
        } catch (error) {
          chain.r.fail(error);
        }
      }
      lookupMs = this.collector.now() - start;
      // drafting for these requests cost the lookups (and, below, the model's call for the misses): auto
      // prices what drafting costs on this workload, and a step where every lookup hit costs next to nothing
      if (!worker || misses.length === 0) return { ms: lookupMs, requests: chains.length, tokens: wanted, k: wanted };
    }
    if (!worker) {
      const error = new Error("no draft worker");
      for (const { r } of chains) r.fail(error);
      return undefined;
    }
    const catchUpStart = this.collector.now();
    await this.catchUp(
      misses.map((c) => c.r),
      label,
    );
    const catchUpMs = this.collector.now() - catchUpStart;
    const drafting: Request[] = [];
    const specs: DraftSpec[] = [];
    let longest = 0;
    for (const { r, k } of misses) {
      if (r.done) continue;
      drafting.push(r);
      specs.push(r.draftSpec(k, confidence));
      longest = Math.max(longest, k);
    }
    if (specs.length === 0) return undefined;
    try {
      const start = this.collector.now();
      const outputs = await this.timed("draft", "draft", drafting, { ...label, k: longest }, () => worker.draft(specs));
      const ms = this.collector.now() - start;
      checkCount("draft", outputs, specs.length);
      drafting.forEach((r, i) => {
        if (r.done) return;
        try {
          r.setDrafts(outputs[i]!, specs[i]!.k, confidence);
        } catch (error) {
          r.fail(error);
        }
      });
      // with lookups, the cost is spread over every request drafted for (see above)
      const requests = this.ngram ? chains.length : specs.length;
      return { ms: ms + lookupMs, requests, tokens: longest, k: longest, catchUpMs };
    } catch (error) {
      for (const r of drafting) r.fail(error);
      return undefined;
    }
  }

  /**
   * Post-verify: drafts the next round of each request assuming all its current drafts are accepted
   * (Request.aheadSpec), to run while those drafts are verified. Issue it right after the verify
   * call (whose specs are built synchronously): its specs are built synchronously too, so both draw
   * their uniforms in that order. Resolves, once drafted, to a function that hands each request its
   * ahead drafts where they hit (Request.takeAhead): call it after the verification applied.
   */
  async draftAhead(
    requests: readonly Request[],
    label: CallLabel,
    k: number,
  ): Promise<{ timing?: CallTiming; adopt: () => void }> {
    const drafting: Request[] = [];
    const specs: DraftSpec[] = [];
    const pending: Omit<AheadDrafts, "output">[] = [];
    for (const r of requests) {
      if (r.done) continue;
      const spec = r.aheadSpec(k);
      if (!spec) continue;
      drafting.push(r);
      specs.push(spec);
      pending.push({ spec, verified: r.drafts?.tokens.length ?? 0, tokensBefore: r.tokens.length });
    }
    const none = { adopt: () => {} };
    const worker = this.backend.draft;
    if (specs.length === 0 || !worker) return none;
    const longest = Math.max(...specs.map((s) => s.k));
    try {
      const start = this.collector.now();
      const outputs = await this.timed("draft", "draft", drafting, { ...label, k: longest }, () => worker.draft(specs));
      const ms = this.collector.now() - start;
      checkCount("draft", outputs, specs.length);
      const adopt = () => {
        // [post-verify, pre-verify] rounds and hits
        const rounds = [0, 0];
        const hits = [0, 0];
        drafting.forEach((r, i) => {
          if (r.done) return;
          const pre = pending[i]!.verified === 0 ? 1 : 0;
          rounds[pre]!++;
          try {
            if (r.takeAhead({ ...pending[i]!, output: outputs[i]! })) hits[pre]!++;
          } catch (error) {
            r.fail(error);
          }
        });
        if (rounds[0]! > 0) this.collector.recordPostVerify(rounds[0]!, hits[0]!);
        if (rounds[1]! > 0) this.collector.recordPostVerify(rounds[1]!, hits[1]!, true);
      };
      return { timing: { ms, requests: specs.length, tokens: longest, k: longest }, adopt };
    } catch (error) {
      for (const r of drafting) r.fail(error);
      return none;
    }
  }

  /**
   * Verifies each live request's drafts (none in ar) and applies acceptance. Resolves to the
   * call's timing (undefined when nothing was verified or the call failed).
   */
  async verify(requests: readonly Request[], label: CallLabel): Promise<CallTiming | undefined> {
    const verifying = requests.filter((r) => !r.done);
    if (verifying.length === 0) return undefined;
    const specs = verifying.map((r) => r.verifySpec());
    let tokens = 0;
    let longest = 0;
    for (const s of specs) {
      tokens += s.draft.length + 1;
      longest = Math.max(longest, s.draft.length);
    }
    try {
      const start = this.collector.now();
      const outputs = await this.timed("target", "verify", verifying, { ...label, k: longest, tokens }, () =>
        this.backend.target.verify(specs),
      );
      const ms = this.collector.now() - start;
      checkCount("target", outputs, specs.length);
      const outcomes: { k: number; accepted: number }[] = [];
      verifying.forEach((r, i) => {
        if (r.done) return; // aborted while the call was in flight
        try {
          r.applyVerification(outputs[i]!);
          outcomes.push(r.lastVerified);
        } catch (error) {
          r.fail(error);
        }
      });
      return { ms, requests: specs.length, tokens, k: longest, outcomes };
    } catch (error) {
      for (const r of verifying) r.fail(error);
      return undefined;
    }
  }

  /**
   * A request that decoded without drafts for a while (auto's plain-decoding steps) has many
   * tokens the draft cache lacks: feed all but the last with one draft-side prefill (chunked
   * natively), so the draft call itself stays small.
   */
  private async catchUp(requests: readonly Request[], label: CallLabel): Promise<void> {
    const behind = requests.filter((r) => r.targetPos - r.draftPos > CATCH_UP_TOKENS);
    const draft = this.backend.draft;
    if (behind.length === 0 || !draft) return;
    await this.timed("draft", "prefill", behind, label, () =>
      Promise.all(
        behind.map((r) =>
          invoke(() => draft.prefill(r.slot, r.draftPos, r.tokens.slice(r.draftPos, r.targetPos))).then(
            () => void (r.draftPos = r.targetPos),
            (error: unknown) => r.fail(error),
          ),
        ),
      ),
    );
  }

  /**
   * Moves a request that holds no drafts to another (free) slot on both workers. A failure fails
   * the request (its KV may be half moved) and resolves to false.
   */
  async move(r: Request, to: number): Promise<boolean> {
    const target = this.backend.target.moveSeq;
    const draft = this.useDraft ? this.backend.draft?.moveSeq : undefined;
    if (!target || (this.useDraft && this.backend.draft && !draft)) return false;
    try {
      await Promise.all([
        invoke(() => target.call(this.backend.target, r.slot, to)),
        draft ? invoke(() => draft.call(this.backend.draft, r.slot, to)) : undefined,
      ]);
      return true;
    } catch (error) {
      r.fail(error);
      return false;
    }
  }

  /** Sets both workers' threads (auto); a no-op when the backend cannot switch. */
  async setThreads(target: number, draft: number): Promise<void> {
    await this.backend.setThreads?.(target, draft);
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
    label: CallLabel & { k?: number; tokens?: number },
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
      if (label.k !== undefined) event.k = label.k;
      if (label.tokens !== undefined) event.tokens = label.tokens;
      if (label.decision) event.decision = { ...label.decision, threads: { ...label.decision.threads } };
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
