// A deterministic fake Backend for engine tests.
//  - 16-token vocabulary; the target's next-token logits are a pure function of the sequence's
//    token prefix (a hash), the draft's are the target's plus prefix-hashed noise (`draftNoise`).
//  - KV semantics are faithful: one token array per sequence; each call discards positions >= pos
//    first and throws on a position gap, on a write past nCtx, on a verify whose drafts are not the
//    ones the draft worker produced for that sequence, or (crossCheck) when the draft context's
//    history disagrees with the target's. Engine bookkeeping bugs surface as errors or as outputs
//    that differ from `ar`.
//  - Each worker is a serial queue with optional setTimeout delays, so PSD overlap shows in time.
import type {
  Backend,
  DraftOutput,
  DraftSpec,
  DraftWorker,
  ModelInfo,
  PrefillSpec,
  SamplingParams,
  TargetWorker,
  ThreadPlacement,
  VerifyOutput,
  VerifySpec,
} from "../../src/engine/backend.js";
import { argmax, filteredDistribution, residualDistribution, sampleFrom } from "./reference-math.js";

export const VOCAB = 16;
export const BOS = 1;
const encoder = new TextEncoder();
/** token -> bytes: 0 and 1 are special (empty), 14 + 15 together are "é" (0xC3 0xA9) */
const PIECES: Uint8Array[] = [
  new Uint8Array(0),
  new Uint8Array(0),
  ...[" ", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"].map((s) => encoder.encode(s)),
  Uint8Array.of(0xc3),
  Uint8Array.of(0xa9),
];

export interface FakeOptions {
  nCtx?: number;
  nSeqMax?: number;
  /** 0: the draft equals the target; larger: less agreement */
  draftNoise?: number;
  /** spread of the target logits */
  logitScale?: number;
  /** token that ends generation (added to its logit: eogBias); null: none */
  eogToken?: number | null;
  eogBias?: number;
  withDraft?: boolean;
  /** ms per autoregressive draft pass (a draft call takes k of them) */
  draftDelayMs?: number;
  verifyDelayMs?: number;
  prefillDelayMs?: number;
  crossCheck?: boolean;
  chatTemplate?: boolean;
  /** offer Worker.prefillMany (several sequences' prefills in one call, all or nothing), as the native backend does */
  packedPrefill?: boolean;
  /**
   * Runtime thread switching (auto): the placements to offer. Then verify / draft take
   * verifyMs(tokens, threads) and draftStepMs(requests, threads) per call / step instead of the
   * fixed delays, and `threadCalls` records every setThreads.
   */
  threadPlans?: { sequential: ThreadPlacement; overlapped: ThreadPlacement | null };
  /** Backend.seqIdsSplitPasses (default true, as on the CPU): the engine compacts slots with moveSeq */
  seqIdsSplitPasses?: boolean;
  verifyMs?: (tokens: number, threads: number) => number;
  draftStepMs?: (requests: number, threads: number) => number;
  /**
   * A machine whose other work the test controls: cpuLoad() reports competing() (each call a fresh
   * reading), limitCores(c) records c in `coreLimits` and, with threadPlans, offers replan(c).
   */
  load?: {
    cores: number;
    competing: () => number;
    replan?: (cores: number) => { sequential: ThreadPlacement; overlapped: ThreadPlacement | null };
  };
}

type OptionalFakeOption = "threadPlans" | "verifyMs" | "draftStepMs" | "seqIdsSplitPasses" | "load";

export type FakeWorkerName = "target" | "draft";
export type FakeCallKind = "prefill" | "draft" | "verify" | "removeSeq" | "moveSeq";

export interface FakeCall {
  worker: FakeWorkerName;
  kind: FakeCallKind;
  seqs: number[];
  start: number;
  end: number;
}

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77);
  return (h ^ (h >>> 13)) >>> 0;
}

const HASH_SEED = 0x2545f491;
const NOISE_SALT = 0x68e31da4;

/** Hash of a whole prefix, extendable one token at a time. */
function extendHash(h: number, token: number): number {
  return mix(h, token + 1);
}

function hashOf(tokens: readonly number[]): number {
  let h = HASH_SEED;
  for (const t of tokens) h = extendHash(h, t);
  return h;
}

function noise(h: number, j: number): number {
  return mix(h, j + 0x51ed27) / 0x1_0000_0000 - 0.5; // [-0.5, 0.5)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

interface SeqState {
  tokens: number[];
  /** hashes[i] = hash of tokens[0..i] */
  hashes: number[];
}

interface StoredDrafts {
  firstPos: number;
  tokens: number[];
  dists: Float64Array[];
  /** the draft cache's tokens before firstPos when drafted (checked against the target at verification) */
  history: number[];
}

/** Key of a sequence's q bank (DraftSpec.qBank / VerifySpec.qBank). */
const bankKey = (seq: number, bank: number | undefined) => seq + 100_000 * (bank ?? 0);

interface Failure {
  worker: FakeWorkerName;
  kind: FakeCallKind;
  /** fail the n-th call of that kind on that worker (1-based, counted from injection) */
  remaining: number;
  error: Error;
}

export class FakeModel {
  constructor(
    readonly logitScale: number,
    readonly eogToken: number | null,
    readonly eogBias: number,
    readonly draftNoise: number,
  ) {}

  targetLogitsAt(h: number): Float64Array {
    const logits = new Float64Array(VOCAB);
    for (let j = 0; j < VOCAB; j++) logits[j] = (mix(h, j) / 0x1_0000_0000 - 0.5) * 2 * this.logitScale;
    if (this.eogToken !== null) logits[this.eogToken] += this.eogBias;
    return logits;
  }

  draftLogitsAt(h: number): Float64Array {
    const logits = this.targetLogitsAt(h);
    const nh = mix(h, NOISE_SALT);
    for (let j = 0; j < VOCAB; j++) logits[j] += 2 * this.draftNoise * noise(nh, j);
    return logits;
  }
}

export class FakeBackend implements Backend {
  readonly info: ModelInfo;
  readonly target: TargetWorker;
  readonly draft?: DraftWorker;
  readonly model: FakeModel;
  readonly calls: FakeCall[] = [];
  closed = false;
  threadPlans?: { sequential: ThreadPlacement; overlapped: ThreadPlacement | null };
  readonly setThreads?: (target: number, draft: number) => Promise<void>;
  readonly cores?: number;
  readonly cpuLoad?: Backend["cpuLoad"];
  readonly limitCores?: Backend["limitCores"];
  /** every limitCores call */
  readonly coreLimits: number[] = [];
  /** threads now, and every change */
  threads: ThreadPlacement = { target: 1, draft: 1 };
  readonly seqIdsSplitPasses: boolean;
  readonly threadCalls: ThreadPlacement[] = [];

  private readonly opts: Required<Omit<FakeOptions, OptionalFakeOption>> & Pick<FakeOptions, OptionalFakeOption>;
  private readonly seqs = { target: new Map<number, SeqState>(), draft: new Map<number, SeqState>() };
  private readonly storedDrafts = new Map<number, StoredDrafts>();
  private readonly queues = { target: new SerialQueue(), draft: new SerialQueue() };
  private readonly failures: Failure[] = [];
  private readonly origin = performance.now();

  constructor(options: FakeOptions = {}) {
    this.opts = {
      nCtx: 512,
      nSeqMax: 64,
      draftNoise: 1.5,
      logitScale: 3,
      eogToken: null,
      eogBias: 0,
      withDraft: true,
      draftDelayMs: 0,
      verifyDelayMs: 0,
      prefillDelayMs: 0,
      crossCheck: true,
      chatTemplate: true,
      packedPrefill: false,
      ...options,
    };
    const o = this.opts;
    this.seqIdsSplitPasses = o.seqIdsSplitPasses ?? true;
    this.model = new FakeModel(o.logitScale, o.eogToken, o.eogBias, o.draftNoise);
    const eog = o.eogToken;
    this.info = {
      nVocab: VOCAB,
      nCtx: o.nCtx,
      nSeqMax: o.nSeqMax,
      addBos: true,
      bos: BOS,
      isEog: (t) => eog !== null && t === eog,
      tokenize: (text, addSpecial) => {
        const tokens = addSpecial ? [BOS] : [];
        for (const ch of text) {
          const at = PIECES.findIndex((p) => p.length > 0 && new TextDecoder().decode(p) === ch);
          tokens.push(at >= 0 ? at : 2);
        }
        return tokens;
      },
      tokenBytes: (t) => PIECES[t] ?? new Uint8Array(0),
      detokenize: (tokens) => new TextDecoder().decode(concatBytes(tokens.map((t) => PIECES[t]!))),
      chatTemplate: o.chatTemplate ? "fake" : null,
      // another template (by name) marks its output with that name, so tests can tell which one ran
      applyChatTemplate: (messages, addAssistant, template) =>
        (template && template !== "fake" ? `${template} ` : "") +
        messages.map((m) => `${m.role[0]} ${m.content}`).join(" ") +
        (addAssistant ? " a" : ""),
    };
    this.target = {
      prefill: (seq, pos, tokens) =>
        this.job("target", "prefill", [seq], o.prefillDelayMs, () => void this.feed("target", seq, pos, tokens)),
      ...(o.packedPrefill ? { prefillMany: (specs: readonly PrefillSpec[]) => this.prefillMany("target", specs) } : {}),
      removeSeq: (seq) => this.job("target", "removeSeq", [seq], 0, () => void this.seqs.target.delete(seq)),
      moveSeq: (src, dst) => this.job("target", "moveSeq", [src, dst], 0, () => this.move("target", src, dst)),
      verify: (specs) =>
        this.job(
          "target",
          "verify",
          specs.map((s) => s.seq),
          () =>
            o.verifyMs
              ? o.verifyMs(
                  specs.reduce((n, s) => n + s.draft.length + 1, 0),
                  this.threads.target,
                )
              : o.verifyDelayMs,
          () => specs.map((s) => this.verifyOne(s)),
        ),
    };
    if (o.threadPlans) {
      this.threadPlans = o.threadPlans;
      this.threads = { ...o.threadPlans.sequential };
      this.setThreads = async (target, draft) => {
        for (const v of [target, draft])
          if (!Number.isInteger(v) || v < 1 || v > 64) throw new RangeError(`fake: bad threads ${v}`);
        // like the native workers: the change applies to the jobs queued after it
        await Promise.all([
          this.queues.target.run(async () => void (this.threads = { ...this.threads, target })),
          this.queues.draft.run(async () => void (this.threads = { ...this.threads, draft })),
        ]);
        this.threadCalls.push({ target, draft });
      };
    }
    if (o.load) {
      const load = o.load;
      let sample = 0;
      this.cores = load.cores;
      this.cpuLoad = () => ({ competing: load.competing(), sample: ++sample });
      this.limitCores = async (cores) => {
        if (!Number.isInteger(cores) || cores < 1 || cores > load.cores)
          throw new RangeError(`fake: bad core limit ${cores}`);
        this.coreLimits.push(cores);
        if (!load.replan || !this.threadPlans) return false;
        this.threadPlans = load.replan(cores);
        return true;
      };
    }
    if (o.withDraft) {
      this.draft = {
        prefill: (seq, pos, tokens) =>
          this.job("draft", "prefill", [seq], o.prefillDelayMs, () => void this.feed("draft", seq, pos, tokens)),
        ...(o.packedPrefill
          ? { prefillMany: (specs: readonly PrefillSpec[]) => this.prefillMany("draft", specs) }
          : {}),
        removeSeq: (seq) =>
          this.job("draft", "removeSeq", [seq], 0, () => {
            this.seqs.draft.delete(seq);
            this.storedDrafts.delete(bankKey(seq, 0));
            this.storedDrafts.delete(bankKey(seq, 1));
          }),
        moveSeq: (src, dst) => this.job("draft", "moveSeq", [src, dst], 0, () => this.move("draft", src, dst)),
        draft: (specs) =>
          this.job(
            "draft",
            "draft",
            specs.map((s) => s.seq),
            () =>
              (o.draftStepMs ? o.draftStepMs(specs.length, this.threads.draft) : o.draftDelayMs) *
              Math.max(0, ...specs.map((s) => s.k)),
            () => specs.map((s) => this.draftOne(s)),
          ),
      };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** One call for several sequences' prefills (a "prefill" call in `calls`), all or nothing like the native job. */
  private prefillMany(worker: FakeWorkerName, specs: readonly PrefillSpec[]): Promise<void> {
    const seqs = specs.map((s) => s.seq);
    if (new Set(seqs).size !== seqs.length) return Promise.reject(new RangeError("fake: a sequence named twice"));
    return this.job(worker, "prefill", seqs, this.opts.prefillDelayMs, () => {
      for (const s of specs) this.feed(worker, s.seq, s.pos, s.tokens);
    });
  }

  /** Makes the n-th next call of `kind` on `worker` throw `error`. */
  failOn(worker: FakeWorkerName, kind: FakeCallKind, nth: number, error: Error): void {
    this.failures.push({ worker, kind, remaining: nth, error });
  }

  /**
   * moveSeq: the destination must be empty; drafts stored for the source are dropped (the engine moves only requests
   * holding none).
   */
  private move(worker: FakeWorkerName, src: number, dst: number): void {
    const seqs = this.seqs[worker];
    if ((seqs.get(dst)?.tokens.length ?? 0) > 0)
      throw new Error(`fake ${worker}: moveSeq into sequence ${dst}, which holds KV`);
    const state = seqs.get(src);
    seqs.delete(src);
    if (state) seqs.set(dst, state);
    if (worker === "draft") for (const bank of [0, 1]) this.storedDrafts.delete(bankKey(src, bank));
  }

  /** Sequences that still hold KV on a worker. */
  liveSeqs(worker: FakeWorkerName): number[] {
    return [...this.seqs[worker].keys()].filter((s) => this.seqs[worker].get(s)!.tokens.length > 0);
  }

  /** The target's filtered next-token distribution after `prefix`. */
  targetDistribution(prefix: readonly number[], sampling: SamplingParams): Float64Array {
    return filteredDistribution(this.model.targetLogitsAt(hashOf(prefix)), sampling);
  }

  /** The draft's filtered next-token distribution after `prefix`. */
  draftDistribution(prefix: readonly number[], sampling: SamplingParams): Float64Array {
    return filteredDistribution(this.model.draftLogitsAt(hashOf(prefix)), sampling);
  }

  /** Greedy continuation under the target alone, the ground truth for lossless tests. */
  greedyContinuation(prompt: readonly number[], maxTokens: number): number[] {
    const seq = [...prompt];
    const out: number[] = [];
    while (out.length < maxTokens) {
      const t = argmax(this.model.targetLogitsAt(hashOf(seq)));
      if (this.info.isEog(t)) break;
      seq.push(t);
      out.push(t);
    }
    return out;
  }

  private job<T>(
    worker: FakeWorkerName,
    kind: FakeCallKind,
    seqs: number[],
    delay: number | (() => number),
    work: () => T,
  ): Promise<T> {
    const failure = this.takeFailure(worker, kind);
    return this.queues[worker].run(async () => {
      if (this.closed) throw new Error(`fake ${worker}: call after close`);
      const start = performance.now() - this.origin;
      const delayMs = typeof delay === "function" ? delay() : delay;
      if (delayMs > 0) await sleep(delayMs);
      try {
        if (failure) throw failure;
        return work();
      } finally {
        this.calls.push({ worker, kind, seqs, start, end: performance.now() - this.origin });
      }
    });
  }

  private takeFailure(worker: FakeWorkerName, kind: FakeCallKind): Error | undefined {
    const at = this.failures.findIndex((f) => f.worker === worker && f.kind === kind && --f.remaining === 0);
    if (at < 0) return undefined;
    return this.failures.splice(at, 1)[0]!.error;
  }

  private state(worker: FakeWorkerName, seq: number): SeqState {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.opts.nSeqMax)
      throw new Error(`fake ${worker}: bad seq ${seq}`);
    let s = this.seqs[worker].get(seq);
    if (!s) this.seqs[worker].set(seq, (s = { tokens: [], hashes: [] }));
    return s;
  }

  /** Discards positions >= pos, then appends tokens at pos.. (the KV semantics of every call). */
  private feed(worker: FakeWorkerName, seq: number, pos: number, tokens: readonly number[]): SeqState {
    const s = this.state(worker, seq);
    if (!Number.isInteger(pos) || pos < 0 || pos > s.tokens.length) {
      throw new Error(
        `fake ${worker}: position gap on seq ${seq}: pos ${pos} but the cache holds ${s.tokens.length} tokens`,
      );
    }
    if (pos + tokens.length > this.opts.nCtx) {
      throw new Error(
        `fake ${worker}: seq ${seq} would hold ${pos + tokens.length} tokens, past nCtx ${this.opts.nCtx}`,
      );
    }
    s.tokens.length = pos;
    s.hashes.length = pos;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= VOCAB) throw new Error(`fake ${worker}: bad token ${t}`);
      s.hashes.push(extendHash(s.hashes.length > 0 ? s.hashes[s.hashes.length - 1]! : HASH_SEED, t));
      s.tokens.push(t);
    }
    return s;
  }

  private lastHash(s: SeqState): number {
    return s.hashes.length > 0 ? s.hashes[s.hashes.length - 1]! : HASH_SEED;
  }

  private draftOne(spec: DraftSpec): DraftOutput {
    const { seq, pos, tokens, k, sampling, uniforms } = spec;
    if (tokens.length === 0) throw new Error(`fake draft: no pending tokens for seq ${seq}`);
    if (!(k >= 1)) throw new Error(`fake draft: k = ${k}`);
    if (sampling.temperature > 0 && uniforms.length !== k)
      throw new Error(`fake draft: ${uniforms.length} uniforms for k = ${k}`);
    const s = this.feed("draft", seq, pos, tokens);
    if (this.opts.crossCheck && spec.qBank === undefined) this.checkHistory(seq, s);
    const out: DraftOutput = { tokens: new Int32Array(k), probs: new Float32Array(k) };
    if (spec.confidence) out.confidence = new Float32Array(k);
    if (spec.qBank !== undefined && spec.qBank !== 0 && spec.qBank !== 1)
      throw new Error(`fake draft: bad qBank ${spec.qBank}`);
    const stored: StoredDrafts = { firstPos: s.tokens.length, tokens: [], dists: [], history: [...s.tokens] };
    for (let j = 0; j < k; j++) {
      const logits = this.model.draftLogitsAt(this.lastHash(s));
      const q = filteredDistribution(logits, sampling);
      const token = sampling.temperature === 0 ? argmax(q) : sampleFrom(q, uniforms[j]!);
      out.tokens[j] = token;
      out.probs[j] = q[token]!;
      if (out.confidence) {
        // like the native draft: q(token) when sampled, the temperature-1 softmax of the argmax when greedy
        out.confidence[j] =
          sampling.temperature === 0
            ? filteredDistribution(logits, { temperature: 1, topK: 0, topP: 1 })[token]!
            : q[token]!;
      }
      stored.tokens.push(token);
      stored.dists.push(q);
      // the k-th drafted token is not fed
      if (j < k - 1) this.feed("draft", seq, s.tokens.length, [token]);
    }
    this.storedDrafts.set(bankKey(seq, spec.qBank), stored);
    return out;
  }

  /**
   * The draft context's history (all but its last token) must be what the target holds. A draft of
   * the next round made during a verification (DraftSpec.qBank given) follows unverified drafts: it
   * is checked at the verification that uses its drafts (verifyOne compares the stored history). So is
   * the first draft of a request admitted into a step (psd's overlapped admission): the target prefills
   * it while it is drafted, so the target may hold nothing of it yet.
   */
  private checkHistory(seq: number, draft: SeqState): void {
    const target = this.seqs.target.get(seq)?.tokens ?? [];
    const n = draft.tokens.length - 1;
    if (target.length === 0) return;
    if (target.length < n) {
      throw new Error(`fake draft: seq ${seq} drafts after ${n} tokens, the target holds ${target.length}`);
    }
    for (let i = 0; i < n; i++) {
      if (draft.tokens[i] !== target[i])
        throw new Error(`fake draft: seq ${seq} differs from the target at position ${i}`);
    }
  }

  private verifyOne(spec: VerifySpec): VerifyOutput {
    const { seq, pos, pending, draft, draftSeq, sampling, uniforms } = spec;
    const k = draft.length;
    if (sampling.temperature > 0 && uniforms.length !== k + 1) {
      throw new Error(`fake verify: ${uniforms.length} uniforms for k = ${k}`);
    }
    let stored: StoredDrafts | undefined;
    const row = spec.qRow ?? 0;
    if (k > 0 && !spec.onehot) {
      stored = this.storedDrafts.get(bankKey(draftSeq, spec.qBank));
      if (
        !stored ||
        stored.firstPos + row !== pos + 1 ||
        stored.tokens.length < row + k ||
        draft.some((t, i) => t !== stored!.tokens[row + i])
      ) {
        throw new Error(`fake verify: seq ${seq} verifies drafts the draft worker did not produce at pos ${pos + 1}`);
      }
    }
    const s = this.feed("target", seq, pos, [pending, ...draft]);
    if (stored && this.opts.crossCheck) {
      // the drafts were drafted after exactly what the target holds before them
      const before = [...stored.history, ...stored.tokens.slice(0, row)];
      if (before.length !== pos + 1 || before.some((t, i) => t !== s.tokens[i]))
        throw new Error(`fake verify: seq ${seq}'s drafts were drafted after another history`);
    }
    const out: VerifyOutput = { p: new Float32Array(k), alt: new Int32Array(k + 1) };
    for (let i = 0; i <= k; i++) {
      const h = s.hashes[pos + i]!; // prefix through pending and draft[0..i)
      const logits = this.model.targetLogitsAt(h);
      if (sampling.temperature === 0) {
        const best = argmax(logits);
        out.alt[i] = best;
        if (i < k) out.p[i] = draft[i] === best ? 1 : 0;
        continue;
      }
      const p = filteredDistribution(logits, sampling);
      if (i < k) {
        out.p[i] = p[draft[i]!]!;
        const q = spec.onehot ? oneHot(p.length, draft[i]!) : stored!.dists[row + i]!;
        out.alt[i] = sampleFrom(residualDistribution(p, q), uniforms[i]!);
      } else {
        out.alt[i] = sampleFrom(p, uniforms[i]!);
      }
    }
    return out;
  }
}

function oneHot(n: number, at: number): Float64Array {
  const q = new Float64Array(n);
  if (at < n) q[at] = 1;
  return q;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic pseudo-random prompt of ordinary tokens (2..13). */
export function makePrompt(seed: number, length: number): number[] {
  const prompt = [BOS];
  let h = mix(0x1234567, seed);
  while (prompt.length < length) {
    h = mix(h, prompt.length);
    prompt.push(2 + (h % 12));
  }
  return prompt;
}
