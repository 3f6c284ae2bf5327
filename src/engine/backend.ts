// The engine's view of the models: two workers (target, draft), each running its jobs in order
// on its own native thread. The engine is pure policy over this interface; the native addon
// implements it (src/native/backend.ts) and unit tests drive the engine with a fake.

/** Sampling filter applied identically to target (p) and draft (q) rows. temperature 0 = greedy. */
export interface SamplingParams {
  temperature: number;
  /** 0 = no top-k filter */
  topK: number;
  /** 1 = no top-p filter */
  topP: number;
}

/**
 * Draft k tokens for one sequence of the draft context.
 * The worker first discards the sequence's KV cache at positions >= pos, then feeds `tokens`
 * at positions pos, pos+1, ... and runs k autoregressive steps (the k-th drafted token is not fed).
 */
export interface DraftSpec {
  seq: number;
  pos: number;
  /** pending tokens not yet in the draft KV cache (usually 1; 2 after a fully accepted step) */
  tokens: readonly number[];
  k: number;
  sampling: SamplingParams;
  /** k uniforms in [0,1) used to sample drafted tokens (ignored when greedy) */
  uniforms: readonly number[];
  /** also return DraftOutput.confidence (TETRIS ranks drafted tokens by it) */
  confidence?: boolean;
  /**
   * which of the sequence's two q banks keeps this call's draft distributions (default 0): a draft
   * of the next round can then run while the target verifies drafts whose q is in the other bank
   */
  qBank?: 0 | 1;
}

export interface DraftOutput {
  /** drafted tokens (length k) */
  tokens: Int32Array;
  /** q(token) under the draft's filtered distribution (1 when greedy) */
  probs: Float32Array;
  /**
   * When DraftSpec.confidence was set: the draft's probability of each drafted token, q(token)
   * when sampled and the temperature-1 softmax probability of the argmax when greedy (where
   * `probs` is 1). Computed natively: JS never sees a vocabulary-sized row.
   */
  confidence?: Float32Array;
}

/**
 * Verify one sequence on the target: discard KV at positions >= pos, decode
 * [pending, ...draft] at pos.., then for every row i in 0..k:
 *  - i < k: p_i(draft[i]) under `sampling`, and `alt[i]`, the token to emit if draft[i] is the first
 *    rejection: greedy -> argmax of row i; stochastic -> a sample from normalize(max(0, p_i - q_i))
 *    where q_i is the draft distribution kept natively for (draftSeq, i);
 *  - i = k: `alt[k]`, the bonus token: greedy -> argmax; stochastic -> a sample from p_k.
 * With draft = [] this is one plain decode step (alt[0] is the next token).
 */
export interface VerifySpec {
  seq: number;
  pos: number;
  /** the one pending token (last emitted token, not yet in the target KV cache) */
  pending: number;
  draft: readonly number[];
  /** draft-context sequence whose drafted distributions q_i belong to `draft` */
  draftSeq: number;
  sampling: SamplingParams;
  /** k+1 uniforms in [0,1): residual samples for rows 0..k-1, bonus sample for row k */
  uniforms: readonly number[];
  /** the q bank of draftSeq holding the drafts' distributions (default 0, see DraftSpec.qBank) */
  qBank?: 0 | 1;
  /** draft[i]'s q is row qRow + i of that bank (default 0): a draft call may have produced one token before them */
  qRow?: number;
  /**
   * the drafts come from no draft context (prompt lookup): q_i is one-hot at draft[i], so the residual of
   * row i is p_i with draft[i] removed, renormalized (draftSeq, qBank and qRow are then ignored)
   */
  onehot?: boolean;
}

export interface VerifyOutput {
  /** p_i(draft[i]) for i < k (greedy: 1 if draft[i] is the argmax, else 0) */
  p: Float32Array;
  /** length k+1, see VerifySpec */
  alt: Int32Array;
}

export interface PrefillSpec {
  seq: number;
  pos: number;
  tokens: readonly number[];
}

export interface Worker {
  /** Prefill: decode `tokens` into `seq` starting at `pos` with no outputs (after discarding >= pos). */
  prefill(seq: number, pos: number, tokens: readonly number[]): Promise<void>;
  /**
   * Optional capability: several sequences' prefills in one call (their tokens packed into shared batches:
   * one forward pass per batch instead of one per request). All or nothing: a failure fails the call.
   */
  prefillMany?(specs: readonly PrefillSpec[]): Promise<void>;
  /** Free a sequence's KV cache. */
  removeSeq(seq: number): Promise<void>;
  /** Optional capability: move a sequence's KV cache to a free sequence id (`src` is empty after). */
  moveSeq?(src: number, dst: number): Promise<void>;
}

export interface TargetWorker extends Worker {
  verify(specs: readonly VerifySpec[]): Promise<VerifyOutput[]>;
}

export interface DraftWorker extends Worker {
  draft(specs: readonly DraftSpec[]): Promise<DraftOutput[]>;
}

export interface ModelInfo {
  nVocab: number;
  /** context budget of one sequence: the engine never writes a position >= nCtx */
  nCtx: number;
  /** max sequences the context holds */
  nSeqMax: number;
  addBos: boolean;
  bos: number;
  isEog(token: number): boolean;
  tokenize(text: string, addSpecial: boolean): number[];
  /** tokenize() off the JS thread (for long texts); absent: the engine tokenizes synchronously */
  tokenizeAsync?(text: string, addSpecial: boolean): Promise<number[]>;
  /** text of one token, for incremental streaming (bytes may be partial UTF-8) */
  tokenBytes(token: number): Uint8Array;
  detokenize(tokens: readonly number[]): string;
  /** the model's own chat template (GGUF tokenizer.chat_template); null when it has none */
  chatTemplate: string | null;
  /**
   * Formats messages with `template` (a llama.cpp built-in template name such as "chatml", or a
   * template text), or with the model's own when `template` is undefined. Absent: no chat support.
   */
  applyChatTemplate?(
    messages: readonly { role: string; content: string }[],
    addAssistant: boolean,
    template?: string,
  ): string;
}

export interface CpuLoad {
  /** cores' worth of CPU time other work used over the latest interval */
  competing: number;
  /** increments with every new measurement */
  sample: number;
}

/** CPU threads of the two workers. */
export interface ThreadPlacement {
  target: number;
  draft: number;
}

export interface Backend {
  target: TargetWorker;
  /**
   * false when running both workers at once would oversubscribe the hardware (e.g. each uses all
   * CPU cores because the schedule is sequential): the engine then never overlaps their jobs,
   * not even admission prefills. Default true.
   */
  readonly workersMayOverlap?: boolean;
  /** undefined in `ar`-only setups */
  draft?: DraftWorker;
  /**
   * true when the sequence ids in a batch decide how many forward passes it takes (one KV stream
   * per sequence: one pass per run of consecutive ids). With moveSeq on the workers, the engine then
   * closes the holes finished requests leave before passes over every running request.
   */
  readonly seqIdsSplitPasses?: boolean;
  /** tokenizer/metadata of the target (the draft's is checked compatible at creation) */
  info: ModelInfo;
  /**
   * Optional capability (used by `auto`): the placements the backend can switch between at run
   * time with setThreads. `sequential`: the phases take turns, so each may use all cores;
   * `overlapped`: both workers run at once, so the cores are split (null: the workers must never
   * run at once, e.g. pinned thread counts that together exceed the cores).
   */
  readonly threadPlans?: { sequential: ThreadPlacement; overlapped: ThreadPlacement | null };
  /**
   * Optional capability: threads of each worker for the jobs queued after this call (jobs already
   * queued keep the previous count). Rejects counts outside what the backend was created for.
   * Call it only while no job runs, so that the two workers never together exceed the cores.
   */
  setThreads?(target: number, draft: number): Promise<void>;
  /** CPU cores the workers' threads are placed on (see limitCores) */
  readonly cores?: number;
  /**
   * Optional capability: how many cores' worth of CPU time other work used lately (other processes,
   * this process's JS thread). Cheap to call every step: it is re-measured at most every few hundred ms.
   */
  cpuLoad?(): CpuLoad;
  /**
   * Optional capability: re-place the workers' threads on `cores` of the cores (1..cores), e.g. one
   * thread per context while other work holds a core; `threadPlans` follow. A fixed mode's workers move
   * at once, auto's at its next setThreads. Call it only while no job runs. Resolves to whether any
   * placement changed (pinned thread counts do not move).
   */
  limitCores?(cores: number): Promise<boolean>;
  close(): Promise<void>;
}
