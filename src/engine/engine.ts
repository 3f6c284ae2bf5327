// The engine: request queue, admission, and one async loop that runs schedule steps while there
// is work. Only the loop talks to the workers, so their job order is always the loop's order.
import type { Backend } from "./backend.js";
import type { EngineOptions, GenerateOptions, GenerateResult, RunStats, TraceEvent } from "./types.js";
import { AbortError } from "./errors.js";
import { CoreGovernor } from "./core-governor.js";
import { BatchExecutor } from "./executor.js";
import { resolveEngineOptions, resolveRequestOptions, type ResolvedEngineOptions } from "./options.js";
import { Request } from "./request.js";
import { createScheduler, type Scheduler } from "./scheduler.js";
import { compactionMoves, SlotPool } from "./slots.js";
import { StatsCollector } from "./stats.js";
import { describe, OptionTypeError } from "../common/validate.js";

/** Texts longer than this (characters) are tokenized off the JS thread: ~5 ms of tokenizing on the CPU. */
const LONG_TEXT = 16 * 1024;

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatOptions {
  /** a llama.cpp built-in template name (e.g. "chatml", "llama3") or a template text; default: the model's own */
  chatTemplate?: string;
}

/** What the engine holds right now (for admission control and metrics). */
export interface EngineLoad {
  /** requests being decoded */
  running: number;
  /** requests waiting for a free slot */
  queued: number;
  /** requests the engine decodes at once (m for ar/sd, 2m for psd and auto) */
  capacity: number;
}

export class Engine {
  readonly options: Readonly<ResolvedEngineOptions>;

  private readonly scheduler: Scheduler;
  private readonly collector: StatsCollector;
  private readonly executor: BatchExecutor;
  private readonly queue: Request[] = [];
  private running: Request[] = [];
  private readonly slots: SlotPool;
  private nextId = 1;
  private loopActive = false;
  private loopDone: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private readonly governor: CoreGovernor | undefined;

  constructor(
    private readonly backend: Backend,
    options: EngineOptions,
  ) {
    this.options = resolveEngineOptions(options, backend);
    this.collector = new StatsCollector(
      this.options.mode,
      this.options.ngram !== undefined,
      this.options.ngram?.combined === true,
    );
    this.scheduler = createScheduler({
      mode: this.options.mode,
      batchSize: this.options.batchSize,
      draftTokens: this.options.draftTokens,
      tetrisExtra: this.options.tetris?.extra ?? 0,
      ngram: this.options.ngram,
      postVerify: this.options.postVerify,
      preVerify: this.options.preVerify,
      overlapAdmission: this.options.overlapAdmission,
      probeEvery: this.options.auto?.probeEvery,
      probeBudget: this.options.auto?.probeBudget,
      backend,
      collector: this.collector,
    });
    this.executor = new BatchExecutor(
      backend,
      this.collector,
      this.options.draftTokens,
      this.scheduler.usesDraft,
      this.scheduler.lazyDraftCache === true,
      this.options.ngram !== undefined,
    );
    this.slots = new SlotPool(this.scheduler.capacity);
    this.governor = options.adaptThreads === false ? undefined : CoreGovernor.for(backend);
    if (this.governor) this.collector.coreLimit = () => this.governor!.stats;
  }

  /** requests waiting on each caller's AbortSignal (see watchSignal) */
  private readonly signalWaiters = new WeakMap<AbortSignal, Set<() => void>>();

  /** Generates a completion. Rejects with an AbortError when `opts.signal` fires or the engine closes. */
  async generate(prompt: string | number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
    this.checkOpen();
    const params = resolveRequestOptions(this.options, opts);
    const raw = opts.rawPrompt === true;
    // a long text is tokenized off the JS thread (a MiB holds it ~0.3 s); a short one at once, so that
    // requests submitted together are queued together
    const tokens = this.checkedPrompt(
      typeof prompt === "string" && prompt.length > LONG_TEXT
        ? await this.tokenizeAsync(prompt, !raw)
        : this.promptTokens(prompt, raw),
    );
    this.checkOpen();
    const signal = opts.signal;
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });

    return new Promise<GenerateResult>((resolve, reject) => {
      const hooks = {
        now: () => this.collector.now(),
        settled: (r: Request, result: GenerateResult | undefined) => this.onSettled(r, result, signal, onAbort),
      };
      const request = new Request(
        this.nextId++,
        tokens,
        { ...params, onText: opts.onText },
        this.backend.info,
        hooks,
        resolve,
        reject,
      );
      const onAbort = () => request.abort(signal?.reason);
      if (signal) this.watchSignal(signal, onAbort);
      this.queue.push(request);
      this.wake();
    });
  }

  /**
   * One listener per signal, however many requests share it (one AbortSignal for a whole batch of
   * requests is common, and a listener per request trips Node's MaxListeners warning at 11).
   */
  private watchSignal(signal: AbortSignal, onAbort: () => void): void {
    let waiting = this.signalWaiters.get(signal);
    if (!waiting) {
      const set = new Set<() => void>();
      waiting = set;
      this.signalWaiters.set(signal, set);
      signal.addEventListener(
        "abort",
        () => {
          for (const f of [...set]) f();
          set.clear();
        },
        { once: true },
      );
    }
    waiting.add(onAbort);
  }

  private onSettled(
    r: Request,
    result: GenerateResult | undefined,
    signal: AbortSignal | undefined,
    onAbort: () => void,
  ): void {
    if (signal) this.signalWaiters.get(signal)?.delete(onAbort);
    if (result) this.collector.recordRequest(result.stats, r.counters, r.timings);
    // a queued request leaves at once; a running one is released by the loop between steps
    if (r.slot >= 0) return;
    const at = this.queue.indexOf(r);
    if (at >= 0) this.queue.splice(at, 1);
  }

  /**
   * Streams text pieces as tokens are accepted; breaking out of the loop aborts the request. The
   * generator's return value (the `value` of its final `next()`) is the request's GenerateResult.
   */
  async *stream(
    prompt: string | number[],
    opts: GenerateOptions = {},
  ): AsyncGenerator<string, GenerateResult, undefined> {
    const controller = new AbortController();
    const outer = opts.signal;
    const forward = () => controller.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener("abort", forward, { once: true });

    const pieces: string[] = [];
    let wakeReader: (() => void) | undefined;
    const notify = () => {
      wakeReader?.();
      wakeReader = undefined;
    };
    let finished = false;
    let failure: { error: unknown } | undefined;
    let result: GenerateResult | undefined;
    this.generate(prompt, {
      ...opts,
      signal: controller.signal,
      onText: (piece) => {
        opts.onText?.(piece);
        pieces.push(piece);
        notify();
      },
    }).then(
      (r) => {
        result = r;
        finished = true;
        notify();
      },
      (error: unknown) => {
        finished = true;
        failure = { error };
        notify();
      },
    );
    try {
      for (;;) {
        if (pieces.length > 0) yield pieces.shift()!;
        else if (finished) {
          if (failure) throw failure.error;
          return result!;
        } else await new Promise<void>((resolve) => (wakeReader = resolve));
      }
    } finally {
      outer?.removeEventListener("abort", forward);
      if (!finished) controller.abort();
    }
  }

  /** Applies the chat template (with the assistant prefix) and generates. */
  async chat(messages: readonly ChatMessage[], opts: GenerateOptions & ChatOptions = {}): Promise<GenerateResult> {
    return this.generate(await this.chatPromptAsync(messages, opts), opts);
  }

  /**
   * The prompt tokens chat() generates from: the messages through the chat template (`chatTemplate`,
   * else the model's own), with the assistant prefix. Throws when there is no template to apply.
   */
  chatPrompt(messages: readonly ChatMessage[], opts: ChatOptions = {}): number[] {
    return this.withoutDoubleBos(this.backend.info.tokenize(this.chatText(messages, opts), true));
  }

  private chatText(messages: readonly ChatMessage[], opts: ChatOptions): string {
    this.checkOpen();
    const info = this.backend.info;
    const template = opts.chatTemplate;
    if (template !== undefined && (typeof template !== "string" || template === ""))
      throw new OptionTypeError("chatTemplate", `chatTemplate must be a non-empty string, got ${describe(template)}`);
    if (!info.applyChatTemplate || (template === undefined && !info.chatTemplate)) {
      throw new Error(
        "the model has no chat template (its GGUF has no tokenizer.chat_template): pass one (a llama.cpp " +
          'built-in name such as "chatml", or a template) with the chatTemplate option (CLI: --chat-template), ' +
          "or format the prompt yourself and use generate()",
      );
    }
    return info.applyChatTemplate(messages, true, template);
  }

  /** A template that writes BOS itself would otherwise get a second one from tokenize. */
  private withoutDoubleBos(tokens: number[]): number[] {
    const info = this.backend.info;
    return info.addBos && tokens.length > 1 && tokens[0] === info.bos && tokens[1] === info.bos
      ? tokens.slice(1)
      : tokens;
  }

  /** The target model's own chat template (GGUF tokenizer.chat_template), or null when it has none. */
  get chatTemplate(): string | null {
    return this.backend.info.chatTemplate;
  }

  /** Token ids run from 0 to vocabularySize - 1 (the target's vocabulary). */
  get vocabularySize(): number {
    return this.backend.info.nVocab;
  }

  /** Tokens per request (prompt + generation): a request ends with "contextFull" when it reaches this. */
  get contextSize(): number {
    return this.backend.info.nCtx;
  }

  /** Token ids of `text` in the target's vocabulary; `addSpecial` adds BOS etc. as generate() does (default true). */
  tokenize(text: string, addSpecial = true): number[] {
    this.checkOpen();
    if (typeof text !== "string") throw new TypeError("tokenize: text must be a string");
    return this.backend.info.tokenize(text, addSpecial);
  }

  /** tokenize() for any length: a long text is tokenized off the JS thread, so the event loop never waits on it. */
  async tokenizeAsync(text: string, addSpecial = true): Promise<number[]> {
    this.checkOpen();
    if (typeof text !== "string") throw new TypeError("tokenize: text must be a string");
    const info = this.backend.info;
    return text.length > LONG_TEXT && info.tokenizeAsync
      ? info.tokenizeAsync(text, addSpecial)
      : info.tokenize(text, addSpecial);
  }

  /** chatPrompt() for any length of messages: their text is tokenized as tokenizeAsync() does. */
  async chatPromptAsync(messages: readonly ChatMessage[], opts: ChatOptions = {}): Promise<number[]> {
    return this.withoutDoubleBos(await this.tokenizeAsync(this.chatText(messages, opts), true));
  }

  /** The text of token ids (each must be in the vocabulary). */
  detokenize(tokens: readonly number[]): string {
    this.checkOpen();
    this.checkTokens(tokens, "token");
    return this.backend.info.detokenize(tokens);
  }

  /** Requests running and waiting now, and how many the engine runs at once. */
  load(): EngineLoad {
    return { running: this.running.length, queued: this.queue.length, capacity: this.scheduler.capacity };
  }

  stats(): RunStats {
    return this.collector.snapshot();
  }

  trace(): TraceEvent[] {
    return this.collector.trace();
  }

  resetStats(): void {
    this.collector.reset();
  }

  /** Rejects queued and running requests with an AbortError, waits for the loop, closes the backend. */
  close(): Promise<void> {
    if (!this.closing) {
      for (const r of [...this.queue, ...this.running]) r.abort(undefined, "the engine was closed");
      this.closing = this.loopDone.then(() => this.backend.close());
    }
    return this.closing;
  }

  private promptTokens(prompt: string | number[], raw: boolean): number[] {
    const info = this.backend.info;
    if (typeof prompt === "string") return info.tokenize(prompt, !raw);
    if (Array.isArray(prompt)) {
      this.checkTokens(prompt, "prompt token");
      return [...prompt];
    }
    throw new TypeError("prompt must be a string or an array of token ids");
  }

  private checkedPrompt(tokens: number[]): number[] {
    const info = this.backend.info;
    if (tokens.length === 0) throw new RangeError("prompt is empty");
    if (tokens.length > info.nCtx) {
      throw new Error(
        `prompt has ${tokens.length} tokens, longer than the context of ${info.nCtx} tokens per sequence`,
      );
    }
    return tokens;
  }

  private checkOpen(): void {
    if (this.closing) throw new Error("the engine is closed");
  }

  private checkTokens(tokens: readonly number[], what: string): void {
    if (!Array.isArray(tokens)) throw new TypeError(`${what}s must be an array of token ids`);
    const n = this.backend.info.nVocab;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= n)
        throw new RangeError(`${what} ${String(t)} is not in the vocabulary (0..${n - 1})`);
    }
  }

  private wake(): void {
    if (this.loopActive) return;
    this.loopActive = true;
    this.loopDone = this.runLoop();
  }

  private async runLoop(): Promise<void> {
    // let requests submitted in the same tick join the first batch
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      // Each phase is awaited only when it has work: a step of plain decoding is a few hundred
      // microseconds on a GPU, and every await of an idle async phase is a turn of the microtask queue.
      for (;;) {
        if (this.anyFinished()) await this.releaseFinished();
        if (this.closing) break;
        let admitted: Request[] = [];
        if (this.queue.length > 0 && this.running.length < this.scheduler.capacity) {
          admitted = await this.admit();
          if (this.anyFinished()) await this.releaseFinished();
        }
        if (this.closing) break;
        if (this.running.length === 0) {
          if (this.queue.length === 0) break;
          continue;
        }
        if (this.governor && (await this.governor.update())) this.scheduler.placementChanged?.();
        if (this.backend.seqIdsSplitPasses && this.scheduler.compactsSlots?.()) await this.compactSlots();
        await this.scheduler.step(this.running, this.executor, this.collector.nextStep(), admitted);
      }
    } catch (error) {
      // a bug in the engine itself: fail everything rather than leave promises hanging
      for (const r of [...this.queue, ...this.running]) r.fail(error);
      for (const r of this.running) this.slots.release(r.slot);
      this.running = [];
      this.collector.setRunning(0);
    } finally {
      // synchronous with the last emptiness check, so a concurrent submit always restarts the loop
      this.loopActive = false;
    }
  }

  /** Resolves to the admitted requests the next step prefills (Scheduler.prefillsInStep), else to none. */
  private async admit(): Promise<Request[]> {
    const inStep = this.scheduler.prefillsInStep?.(this.running) === true;
    const admitted: Request[] = [];
    while (this.queue.length > 0 && this.running.length < this.scheduler.capacity) {
      const r = this.queue.shift()!;
      r.state = "running";
      this.running.push(r);
      this.scheduler.admit(r, this.running);
      r.slot = this.slots.take(this.scheduler.slotFromTop?.(r) ?? r.batch === 1);
      admitted.push(r);
    }
    if (admitted.length === 0) return [];
    this.collector.setRunning(this.running.length);
    if (inStep) return admitted;
    await this.executor.prefill(admitted, { step: this.collector.upcomingStep(), batch: -1 });
    return [];
  }

  /**
   * Before a pass over every running request, where sequence ids decide the passes: move requests
   * into the holes finished ones left, so the pass is one run of ids (a KV copy costs far less than
   * a second forward pass over the weights). Call only where ids split passes and the schedule
   * compacts (seqIdsSplitPasses, compactsSlots()).
   */
  private async compactSlots(): Promise<void> {
    if (this.running.some((r) => r.drafts !== null)) return;
    for (const { from, to } of compactionMoves(
      this.running.map((r) => r.slot),
      this.scheduler.capacity,
    )) {
      const r = this.running.find((q) => q.slot === from)!;
      if (!(await this.executor.move(r, to))) continue;
      this.slots.claim(to);
      this.slots.release(from);
      r.slot = to;
    }
  }

  private anyFinished(): boolean {
    for (const r of this.running) if (r.done) return true;
    return false;
  }

  /** Call when anyFinished(). */
  private async releaseFinished(): Promise<void> {
    const finished = this.running.filter((r) => r.done);
    this.running = this.running.filter((r) => !r.done);
    this.collector.setRunning(this.running.length);
    await this.executor.release(finished);
    for (const r of finished) this.slots.release(r.slot);
  }
}
