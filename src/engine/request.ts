// One generation request: its tokens, its place in the two KV caches, its drafts, its stop rules.
//
// KV bookkeeping (the same sequence id `slot` is used in the target and the draft context):
//  - target cache holds tokens[0 .. targetPos), targetPos = tokens.length - 1; the last token is
//    the one pending token every verification feeds first;
//  - draft cache holds tokens[0 .. draftPos); tokens[draftPos ..] are fed at the next draft call
//    (one token normally, two after a fully accepted step: the draft never saw its own last token).
import type { DraftOutput, DraftSpec, ModelInfo, SamplingParams, VerifyOutput, VerifySpec } from "./backend.js";
import type { FinishReason, GenerateResult } from "./types.js";
import { acceptDrafts } from "./acceptance.js";
import { AbortError } from "./errors.js";
import { NgramIndex } from "./ngram.js";
import { Rng } from "./rng.js";
import { AcceptanceCounters, buildRequestStats, type RequestTiming } from "./stats.js";
import { TextAssembler } from "./text.js";

export interface RequestParams {
  maxTokens: number;
  sampling: SamplingParams;
  draftSampling: SamplingParams;
  seed: number;
  stop: readonly string[];
  onText?: (piece: string) => void;
  /** draft by prompt lookup (EngineOptions.ngram); combined: the draft model drafts where it finds nothing */
  ngram?: { maxN: number; combined: boolean };
}

/** Drafts waiting for verification, with q(token) of each. */
export interface Drafts {
  tokens: ArrayLike<number>;
  probs: ArrayLike<number>;
  /** the draft's probability of each token (TETRIS ranking), when asked for */
  confidence?: ArrayLike<number>;
  /** tokens the draft call produced (>= tokens.length: TETRIS may verify only a prefix); default tokens.length */
  produced?: number;
  /** the draft context's q bank holding their distributions (default 0; see DraftSpec.qBank) */
  qBank?: 0 | 1;
  /** the row of that bank holding tokens[0]'s q (default 0; 1 for drafts drafted ahead, see takeAhead) */
  qRow?: number;
  /** proposed by prompt lookup: q is one-hot at each token (VerifySpec.onehot), no draft context holds it */
  onehot?: boolean;
}

/** The next round, drafted while the current drafts were being verified (post-verify). */
export interface AheadDrafts {
  spec: DraftSpec;
  output: DraftOutput;
  /** drafts the verification checked (the ahead draft assumed all of them accepted) */
  verified: number;
  /** tokens.length when the verification was issued */
  tokensBefore: number;
}

export const NO_DRAFTS: Drafts = { tokens: [], probs: [] };

/** Tokens a pre-verify draft may feed the draft cache before drafting (beyond: the draft call catches up). */
const PRE_VERIFY_MAX_FEED = 16;

export interface RequestHooks {
  /** ms on the engine's clock */
  now(): number;
  /** called once when the request resolves or rejects; `result` is set when it resolved */
  settled(request: Request, result: GenerateResult | undefined): void;
}

export type RequestState = "queued" | "running" | "done";

export class Request {
  state: RequestState = "queued";
  /** sequence id in both contexts, assigned at admission */
  slot = -1;
  /** psd sub-batch */
  batch: 0 | 1 = 0;
  /** drafts made and not yet verified (psd keeps them across a step) */
  drafts: Drafts | null = null;
  draftPos: number;

  readonly tokens: number[];
  readonly promptLength: number;
  readonly counters = new AcceptanceCounters();
  /** prompt lookup over prompt + generated tokens (EngineOptions.ngram) */
  readonly ngram: NgramIndex | undefined;
  finishReason: FinishReason | undefined;
  /** drafts verified and accepted at the latest verification (for the auto cost model) */
  lastVerified = { k: 0, accepted: 0 };

  private readonly rng: Rng;
  private readonly text: TextAssembler;
  private readonly timing: RequestTiming;
  private acceptUniforms: number[] = [];
  /** post-verify: the first guess of each ahead draft samples from its own stream */
  private aheadRng: Rng | undefined;
  /**
   * post-verify: uniforms an ahead draft took for the next round's drafts; the next draft call uses
   * them when the ahead drafts missed (so each uniform samples one token, and the main stream is
   * drawn as in sd: the same seed gives sd's tokens)
   */
  private reserved: number[] = [];

  constructor(
    readonly id: number,
    prompt: readonly number[],
    readonly params: RequestParams,
    private readonly info: ModelInfo,
    private readonly hooks: RequestHooks,
    private readonly resolve: (result: GenerateResult) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.tokens = [...prompt];
    this.promptLength = prompt.length;
    // the draft cache is empty until admission prefills it or the first draft call catches it up
    this.draftPos = 0;
    this.rng = new Rng(params.seed);
    this.ngram = params.ngram ? new NgramIndex(params.ngram.maxN, prompt) : undefined;
    this.text = new TextAssembler(params.stop, params.onText !== undefined);
    const now = hooks.now();
    this.timing = { submittedAt: now, firstTokenAt: undefined, finishedAt: now };
  }

  get done(): boolean {
    return this.state === "done";
  }

  get targetPos(): number {
    return this.tokens.length - 1;
  }

  get generatedCount(): number {
    return this.tokens.length - this.promptLength;
  }

  /** The prompt minus its last token: what admission prefills into both caches. */
  get prefillTokens(): number[] {
    return this.tokens.slice(0, this.promptLength - 1);
  }

  /** Draft length that keeps the verification inside the context: pos + k + 1 <= nCtx. */
  draftLength(k: number): number {
    return Math.max(0, Math.min(k, this.info.nCtx - this.targetPos - 1));
  }

  draftSpec(k: number, confidence = false): DraftSpec {
    const spec: DraftSpec = {
      seq: this.slot,
      pos: this.draftPos,
      tokens: this.tokens.slice(this.draftPos),
      k,
      sampling: this.params.draftSampling,
      uniforms: this.draftUniforms(k),
    };
    if (confidence) spec.confidence = true;
    return spec;
  }

  /** The next k draft uniforms: those an ahead draft reserved first, then the main stream's. */
  private draftUniforms(k: number): number[] {
    if (this.reserved.length === 0) return this.rng.uniforms(k);
    const taken = this.reserved.splice(0, k);
    return taken.length < k ? [...taken, ...this.rng.uniforms(k - taken.length)] : taken;
  }

  setDrafts(output: DraftOutput, k: number, confidence = false): void {
    if (output.tokens.length !== k || output.probs.length !== k) {
      throw new Error(
        `draft worker returned ${output.tokens.length} tokens / ${output.probs.length} probs, expected ${k}`,
      );
    }
    if (confidence && output.confidence?.length !== k) {
      throw new Error(`draft worker returned ${output.confidence?.length ?? "no"} confidences, expected ${k}`);
    }
    this.drafts = { tokens: output.tokens, probs: output.probs, confidence: output.confidence, produced: k };
  }

  /**
   * Drafts k tokens by prompt lookup; false (and no drafts set) when the last tokens occurred
   * nowhere before. O(maxN + k): the index is kept up to date as tokens are emitted.
   * The draft context never sees these tokens: `produced: 0` keeps draftPos where it is, so the
   * draft cache holds only tokens it was fed, and the next model draft feeds what it lacks (the
   * accepted lookup tokens among them), catching up by a prefill when that is many.
   */
  draftByLookup(k: number): boolean {
    const index = this.ngram;
    if (!index) throw new Error("draftByLookup: the request has no n-gram index");
    index.counts.lookups++;
    const tokens = index.propose(k);
    if (tokens.length === 0) return false;
    index.counts.hits++;
    this.drafts = { tokens, probs: new Array<number>(tokens.length).fill(1), onehot: true, produced: 0 };
    return true;
  }

  /** Keeps only the first n drafts for verification (TETRIS); the draft cache keeps what it holds. */
  truncateDrafts(n: number): void {
    const d = this.drafts;
    if (!d || n >= d.tokens.length) return;
    const cut = Math.max(0, n);
    this.drafts = {
      tokens: Array.prototype.slice.call(d.tokens, 0, cut) as number[],
      probs: Array.prototype.slice.call(d.probs, 0, cut) as number[],
      confidence: d.confidence,
      produced: d.produced ?? d.tokens.length,
      ...(d.onehot ? { onehot: true } : {}),
    };
  }

  verifySpec(): VerifySpec {
    const drafts = this.drafts ?? NO_DRAFTS;
    const k = drafts.tokens.length;
    const uniforms = this.rng.uniforms(k + 1);
    this.acceptUniforms = this.rng.uniforms(k);
    const spec: VerifySpec = {
      seq: this.slot,
      pos: this.targetPos,
      pending: this.tokens[this.targetPos]!,
      draft: Array.from(drafts.tokens),
      draftSeq: this.slot,
      sampling: this.params.sampling,
      uniforms,
    };
    if (drafts.onehot && k > 0) spec.onehot = true;
    if (drafts.qBank) spec.qBank = drafts.qBank;
    if (drafts.qRow) spec.qRow = drafts.qRow;
    return spec;
  }

  /**
   * Post-verify: the draft spec of the next round assuming every current draft d1..dn is accepted:
   * feed dn (the draft cache holds the pending token and d1..dn-1) and draft k + 1 tokens, the first
   * being the draft's guess of the target's bonus token. Pre-verify is the case n = 0: the request
   * holds no drafts, its verification is a plain target step (one token), and the draft guesses that
   * token and drafts the k after it meanwhile, instead of drafting before the target may start. Its q
   * goes to the bank the current drafts' q is not in, so the verification reading theirs can run at
   * the same time. Undefined when there is nothing to draft ahead: lookup drafts, no drafts where
   * preVerifiable() says no, or a request that ends (maxTokens, context) within the round.
   * Call it after verifySpec() (it draws its uniforms from the request's stream after them).
   */
  aheadSpec(k: number): DraftSpec | undefined {
    const d = this.drafts;
    const n = d?.tokens.length ?? 0;
    // lookup drafts are not in the draft cache, which the ahead draft would extend
    if (d?.onehot) return undefined;
    if (n === 0 && !this.preVerifiable()) return undefined;
    if (this.generatedCount + n + 1 >= this.params.maxTokens) return undefined;
    const bonusPos = this.targetPos + n + 1;
    const next = Math.min(k, this.info.nCtx - bonusPos - 1);
    if (next < 1) return undefined;
    // the guess of the bonus token: its own stream; the next round's drafts: the main stream's next
    // draft uniforms (sd would sample the same drafts with them), reserved in case of a miss
    this.aheadRng ??= new Rng(this.params.seed + 0x9e3779b9);
    this.reserved = this.rng.uniforms(next);
    return {
      seq: this.slot,
      // with drafts the draft cache holds the pending token and d1..dn-1: feed dn; without (pre-verify) feed
      // what it lacks, through the pending token
      pos: n > 0 ? this.targetPos + n : this.draftPos,
      tokens: n > 0 ? [d!.tokens[n - 1]!] : this.tokens.slice(this.draftPos),
      k: next + 1,
      sampling: this.params.draftSampling,
      uniforms: [...this.aheadRng.uniforms(1), ...this.reserved],
      qBank: d?.qBank === 1 ? 0 : 1,
    };
  }

  /**
   * Whether a step without drafts may pre-verify (aheadSpec with n = 0): not with prompt lookup (its next
   * draft may cost nothing), not when the round ends with the target's token, and not while the draft cache
   * lags far behind (the draft call catches it up by a prefill first, which an ahead draft cannot wait for).
   */
  preVerifiable(): boolean {
    return (
      this.drafts === null &&
      !this.params.ngram &&
      this.generatedCount + 1 < this.params.maxTokens &&
      this.info.nCtx - this.targetPos - 3 >= 0 &&
      this.targetPos - this.draftPos <= PRE_VERIFY_MAX_FEED
    );
  }

  /**
   * After the verification that `ahead` was drafted alongside: when every draft was accepted and the
   * target's bonus token is the ahead draft's first token, the rest become this request's drafts
   * (their q is rows 1.. of the ahead call's bank) and true is returned. Otherwise they are dropped:
   * the next draft call discards the draft cache from its start position, which is at most where
   * the ahead draft began. Greedy: the same tokens a fresh draft would make. Stochastic: the ahead
   * tokens were sampled from q with uniforms independent of the target's and of the first guess's,
   * so given that the first one equals the bonus token the rest are distributed as fresh drafts
   * (they are the very tokens a fresh draft would sample: it would use the same uniforms).
   */
  takeAhead(ahead: AheadDrafts): boolean {
    if (this.done || this.drafts !== null) return false;
    const n = ahead.verified;
    if (this.lastVerified.k !== n || this.lastVerified.accepted !== n) return false;
    if (this.tokens.length !== ahead.tokensBefore + n + 1) return false;
    const { tokens, probs } = ahead.output;
    const k = ahead.spec.k;
    if (tokens.length !== k || probs.length !== k) {
      throw new Error(`draft worker returned ${tokens.length} tokens / ${probs.length} probs, expected ${k}`);
    }
    if (tokens[0] !== this.tokens[this.targetPos]) return false;
    this.drafts = {
      tokens: tokens.slice(1),
      probs: probs.slice(1),
      produced: k - 1,
      qBank: ahead.spec.qBank ?? 0,
      qRow: 1,
    };
    this.reserved = []; // they sampled these drafts
    // the draft cache holds everything through the bonus token (fed as the ahead draft's first draft)
    this.draftPos = this.targetPos + 1;
    return true;
  }

  /** Acceptance, cache bookkeeping and emission for the verification of the current drafts. */
  applyVerification(output: VerifyOutput): void {
    const drafts = this.drafts ?? NO_DRAFTS;
    this.drafts = null;
    const k = drafts.tokens.length;
    if (output.alt.length !== k + 1 || output.p.length < k) {
      throw new Error(
        `target worker returned ${output.alt.length} alt / ${output.p.length} p, expected ${k + 1} / ${k}`,
      );
    }
    const greedy = this.params.sampling.temperature === 0;
    const { accepted, emitted } = acceptDrafts(
      greedy,
      drafts.tokens,
      drafts.probs,
      output.p,
      output.alt,
      this.acceptUniforms,
    );
    this.counters.record(k, accepted);
    if (drafts.onehot && this.ngram) {
      this.ngram.counts.draftedTokens += k;
      this.ngram.counts.acceptedTokens += accepted;
    }
    this.lastVerified = { k, accepted };
    const produced = drafts.produced ?? k;
    if (produced > 0) {
      // The draft cache holds the pending token at targetPos and drafts 0..produced-2 after it:
      // valid through the accepted ones (the next token, correction or bonus, is new to it).
      this.draftPos = this.targetPos + 1 + Math.min(accepted, produced - 1);
    }
    for (const token of emitted) {
      if (!this.emit(token)) return;
    }
  }

  /** Appends one token; returns false once the request has finished. */
  private emit(token: number): boolean {
    if (this.info.isEog(token)) return this.finish("eog");
    this.tokens.push(token);
    this.ngram?.push(token);
    this.timing.firstTokenAt ??= this.hooks.now();
    const { piece, stopped } = this.text.push(this.info.tokenBytes(token));
    if (piece && !this.deliver(piece)) return false;
    if (stopped) return this.finish("stop");
    if (this.generatedCount >= this.params.maxTokens) return this.finish("maxTokens");
    // the next verification would feed the pending token at position nCtx
    if (this.tokens.length > this.info.nCtx) return this.finish("contextFull");
    return true;
  }

  /** Hands a piece to onText; a throwing callback fails the request. */
  private deliver(piece: string): boolean {
    try {
      this.params.onText?.(piece);
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  /** Resolves the request; always returns false (so emit() can `return this.finish(...)`). */
  finish(reason: FinishReason): false {
    if (this.done) return false;
    const tail = this.text.finish();
    if (tail && !this.deliver(tail)) return false;
    this.state = "done";
    this.finishReason = reason;
    this.timing.finishedAt = this.hooks.now();
    const stats = buildRequestStats(
      this.promptLength,
      this.generatedCount,
      this.counters,
      this.timing,
      reason,
      this.ngram?.counts,
      this.params.ngram?.combined,
    );
    const result: GenerateResult = {
      id: this.id,
      text: this.text.value,
      tokens: this.tokens.slice(this.promptLength),
      stats,
    };
    this.hooks.settled(this, result);
    this.resolve(result);
    return false;
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.state = "done";
    this.timing.finishedAt = this.hooks.now();
    this.hooks.settled(this, undefined);
    this.reject(error);
  }

  abort(reason?: unknown, message?: string): void {
    this.fail(new AbortError(message, reason === undefined ? undefined : { cause: reason }));
  }

  get timings(): Readonly<RequestTiming> {
    return this.timing;
  }
}
