// The two-sub-batch pipeline of psd and of auto's overlapped schedule (MineDraft PSD): up to 2m
// running requests in two sub-batches; while the target verifies the sub-batch drafted last step,
// the draft worker drafts the other; then roles swap. planStep decides a step (which sub-batch is
// verified, which drafted, rebalancing, filling and draining the pipeline); runStep runs it on the
// workers. The step-level simulator (src/bench/simulator.ts) plans its steps here too.
//
// Invariant between steps: every request holding unverified drafts is in the same sub-batch, and
// all of that sub-batch's requests hold drafts except ones just moved there by rebalancing.
// Drafting always starts from a request's latest verified state, so nothing is drafted past
// unverified tokens.
import type { CallLabel, CallTiming } from "./executor.js";
import type { Request } from "./request.js";

export type Batch = 0 | 1;

const other = (batch: Batch): Batch => (batch === 0 ? 1 : 0);

/** What the pipeline reads of a request (the simulator's requests are not the engine's). */
export interface PipelineMember {
  batch: Batch;
  /** non-null: holds drafts not yet verified */
  readonly drafts: unknown;
  /** sequence slot (KV sequence id) */
  readonly slot: number;
}

export function batchSizes(running: readonly PipelineMember[]): [number, number] {
  const sizes: [number, number] = [0, 0];
  for (const r of running) sizes[r.batch]++;
  return sizes;
}

/** Join the batch that is drafted next, so nobody reaches verification without drafts. */
export function admitToDraftBatch<R extends PipelineMember>(request: R, running: readonly R[]): void {
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
function rebalance(running: readonly PipelineMember[], from: Batch): void {
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
function splitBySlot(running: readonly PipelineMember[]): void {
  const bySlot = [...running].sort((a, b) => a.slot - b.slot);
  const half = Math.ceil(bySlot.length / 2);
  bySlot.forEach((r, i) => (r.batch = i < half ? 0 : 1));
}

/**
 * How a step enters the pipeline when no request holds drafts:
 *  - "draft-alone" (psd): rebalance, then draft sub-batch 0 alone; the target idles for that step;
 *  - "verify-plain" (auto): re-split by slot, then sub-batch 1 decodes one plain token per request
 *    while sub-batch 0 is drafted, so no worker idles (auto enters the schedule from sequential
 *    steps, which leave no drafts behind).
 */
export type FillMode = "draft-alone" | "verify-plain";

/** One step of the pipeline. Requests in `verify` hold drafts except in a "verify-plain" fill. */
export type PipelineStep<R> =
  /** verify one sub-batch while drafting the other (`fill`: nothing held drafts; verify-plain) */
  | {
      kind: "overlap";
      verify: R[];
      verifyBatch: Batch;
      draft: R[];
      draftBatch: Batch;
      sizes: [number, number];
      fill: boolean;
    }
  /** draft sub-batch 0 alone (draft-alone fill) */
  | { kind: "fill"; draft: R[]; sizes: [number, number] }
  /** verify the drafted sub-batch alone: the other one emptied (finishes, aborts) */
  | { kind: "drain"; verify: R[]; sizes: [number, number] }
  /** nothing holds drafts and the requests do not make two sub-batches (one request, or none) */
  | { kind: "single"; sizes: [number, number] };

/** Decides the next step, moving requests between the sub-batches where it must (see FillMode). */
export function planStep<R extends PipelineMember>(running: readonly R[], fill: FillMode): PipelineStep<R> {
  const drafted = running.filter((r) => r.drafts !== null);
  if (drafted.length > 0) {
    const verifyBatch = drafted[0]!.batch;
    const draftBatch = other(verifyBatch);
    rebalance(running, draftBatch);
    const sizes = batchSizes(running);
    const draft = running.filter((r) => r.batch === draftBatch);
    if (draft.length === 0) return { kind: "drain", verify: drafted, sizes };
    return { kind: "overlap", verify: drafted, verifyBatch, draft, draftBatch, sizes, fill: false };
  }
  if (fill === "draft-alone") {
    rebalance(running, 0);
    rebalance(running, 1);
    const sizes = batchSizes(running);
    if (sizes[0] > 0 && sizes[1] > 0) return { kind: "fill", draft: running.filter((r) => r.batch === 0), sizes };
    return { kind: "single", sizes };
  }
  splitBySlot(running);
  const sizes = batchSizes(running);
  const verify = running.filter((r) => r.batch === 1);
  const draft = running.filter((r) => r.batch === 0);
  if (verify.length === 0 || draft.length === 0) return { kind: "single", sizes };
  return { kind: "overlap", verify, verifyBatch: 1, draft, draftBatch: 0, sizes, fill: true };
}

/** The worker calls of a schedule (psd wraps verification in TETRIS; auto passes its k). */
export interface PipelineCalls {
  verify(requests: readonly Request[], label: CallLabel): Promise<CallTiming | undefined>;
  draft(requests: readonly Request[], label: CallLabel): Promise<CallTiming | undefined>;
  /**
   * post-verify (psd): the next round of `requests` drafted while their verification runs (see
   * BatchExecutor.draftAhead). Given, a step with one running request overlaps that way instead of
   * drafting, then verifying.
   */
  draftAhead?(requests: readonly Request[], label: CallLabel): Promise<{ timing?: CallTiming; adopt: () => void }>;
  /**
   * pre-verify (with draftAhead): a one-request step holding no drafts runs a plain target step while the draft
   * guesses its token and drafts the next round after it, instead of drafting before the target may start
   */
  preVerify?: boolean;
  /**
   * One worker's side of the admission prefill of requests admitted into this step (runStep's
   * `admitted`); issues its job synchronously and never rejects (a failure fails its request).
   */
  prefill?(worker: "target" | "draft", requests: readonly Request[], label: CallLabel): Promise<void>;
}

/**
 * Post-verify: verify `requests` while their next round is drafted ahead, then adopt the ahead
 * drafts that hit (those requests hold drafts again, ready for the next step's verification).
 */
async function verifyWithAhead(
  requests: readonly Request[],
  calls: PipelineCalls & Required<Pick<PipelineCalls, "draftAhead">>,
  label: CallLabel,
): Promise<{ verify?: CallTiming; draft?: CallTiming }> {
  // the verify call builds its specs synchronously: the ahead specs are built after them
  const verifying = calls.verify(requests, label);
  const drafting = calls.draftAhead(requests, label);
  const [verify, ahead] = await Promise.all([verifying, drafting]);
  ahead.adopt();
  return { verify, draft: ahead.timing };
}

/** Labels a step's calls for the trace: a sub-batch (-1: one pass over every request). */
function stepLabel(step: number, batch: number, sizes: [number, number], decision?: CallLabel["decision"]): CallLabel {
  return decision ? { step, batch, batchSizes: sizes, decision } : { step, batch, batchSizes: sizes };
}

/**
 * Runs a planned step on the workers: an overlap issues the verification first, then the draft
 * call, both in flight together; a single request is drafted, then verified (sequential SD), or,
 * with calls.draftAhead (post-verify), verified while its next round is drafted ahead: a request
 * whose ahead drafts hit skips the draft call next step (a "drain" of one request). With calls.preVerify
 * too, a single request without drafts is not drafted first: its plain target step runs while the
 * draft drafts ahead of it (pre-verify), and the round after is drafted already when the guess hits.
 * `admitted` (with calls.prefill): requests admitted since the last step, in `running`, whose
 * prefills this step runs (see admitIntoOverlap).
 * Resolves to the timings of the step's calls (auto's cost model reads them).
 */
export async function runStep(
  plan: PipelineStep<Request>,
  running: readonly Request[],
  calls: PipelineCalls,
  step: number,
  decision?: CallLabel["decision"],
  admitted: readonly Request[] = [],
): Promise<{ verify?: CallTiming; draft?: CallTiming }> {
  if (admitted.length > 0 && calls.prefill) {
    const label = stepLabel(step, -1, plan.sizes, decision);
    if (plan.kind === "overlap" && !plan.fill)
      return await admitIntoOverlap(plan, admitted, { ...calls, prefill: calls.prefill }, step, decision);
    // nothing to hide the prefills behind: both first, as an admission between steps would
    await calls.prefill("target", admitted, label);
    await calls.prefill("draft", admitted, label);
  }
  switch (plan.kind) {
    case "overlap": {
      const [verify, draft] = await Promise.all([
        calls.verify(plan.verify, stepLabel(step, plan.verifyBatch, plan.sizes, decision)),
        calls.draft(plan.draft, stepLabel(step, plan.draftBatch, plan.sizes, decision)),
      ]);
      return { verify, draft };
    }
    case "fill":
      return { draft: await calls.draft(plan.draft, stepLabel(step, 0, plan.sizes, decision)) };
    case "drain": {
      const label = stepLabel(step, -1, plan.sizes, decision);
      if (calls.draftAhead && running.length === 1)
        return await verifyWithAhead(plan.verify, { ...calls, draftAhead: calls.draftAhead }, label);
      return { verify: await calls.verify(plan.verify, label) };
    }
    case "single": {
      const label = stepLabel(step, -1, plan.sizes, decision);
      if (calls.draftAhead && calls.preVerify && running.length === 1 && running[0]!.preVerifiable())
        return await verifyWithAhead(running, { ...calls, draftAhead: calls.draftAhead }, label);
      const draft = await calls.draft(running, label);
      if (calls.draftAhead && running.length === 1) {
        const overlapped = await verifyWithAhead(running, { ...calls, draftAhead: calls.draftAhead }, label);
        return { verify: overlapped.verify, draft: overlapped.draft ?? draft };
      }
      return { draft, verify: await calls.verify(running, label) };
    }
  }
}

/**
 * An overlap step that also admits: rather than both workers stopping the running requests for the
 * admission prefill, the draft worker prefills the admitted requests while the target verifies, then
 * drafts its batch (the admitted ones in it too: they are verified next step, as if admitted before
 * this step); the target prefills them after its verification, while the draft worker drafts. Each
 * worker's second job is issued once its first resolves (the trace then times jobs, not queueing;
 * the gap is one turn of the event loop); the calls never reject.
 */
async function admitIntoOverlap(
  plan: Extract<PipelineStep<Request>, { kind: "overlap" }>,
  admitted: readonly Request[],
  calls: PipelineCalls & Required<Pick<PipelineCalls, "prefill">>,
  step: number,
  decision?: CallLabel["decision"],
): Promise<{ verify?: CallTiming; draft?: CallTiming }> {
  const prefillLabel = stepLabel(step, -1, plan.sizes, decision);
  const target = calls
    .verify(plan.verify, stepLabel(step, plan.verifyBatch, plan.sizes, decision))
    .then(async (verify) => {
      await calls.prefill("target", admitted, prefillLabel);
      return verify;
    });
  const draft = calls
    .prefill("draft", admitted, prefillLabel)
    .then(() => calls.draft(plan.draft, stepLabel(step, plan.draftBatch, plan.sizes, decision)));
  const [verify, drafted] = await Promise.all([target, draft]);
  return { verify, draft: drafted };
}
