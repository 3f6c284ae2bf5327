// The engine's Backend over two native contexts (target and draft), each on its own worker thread.
import type {
  Backend,
  DraftOutput,
  DraftSpec,
  ModelInfo,
  ThreadPlacement,
  VerifyOutput,
  VerifySpec,
} from "../engine/backend.js";
import type { StepSchedule } from "../engine/types.js";
import type { LlamaContext } from "./context.js";
import { CpuLoadMonitor, JobClock } from "./cpu-load.js";
import type { LlamaModel } from "./model.js";
import { draftVocabBridge } from "./vocab-compat.js";

type Plans = { sequential: ThreadPlacement; overlapped: ThreadPlacement | null };

/** Runtime thread switching: the placements, and what decides whether workers may overlap. */
export interface NativeThreadOptions {
  plans: Plans;
  /** CPU cores the two contexts share */
  cores: number;
  /** models on a GPU use their threads only to drive it: they do not count against the cores */
  targetOnGpu?: boolean;
  draftOnGpu?: boolean;
  /** the placements on fewer cores (limitCores); absent: the thread counts never change with the load */
  replan?: (cores: number) => Plans;
  /** a fixed mode's one placement (ar, sd: sequential; psd: overlapped); absent: auto switches between both */
  schedule?: StepSchedule;
}

export class NativeBackend implements Backend {
  readonly info: ModelInfo;
  readonly target: Backend["target"];
  readonly draft: Backend["draft"];
  readonly seqIdsSplitPasses: boolean;
  readonly setThreads: Backend["setThreads"];
  readonly cpuLoad: Backend["cpuLoad"];
  readonly limitCores: Backend["limitCores"];
  private plans: Plans | undefined;
  private closed = false;
  private readonly fixedOverlap: boolean;
  private current: ThreadPlacement;

  constructor(
    readonly targetModel: LlamaModel,
    readonly targetContext: LlamaContext,
    readonly draftModel?: LlamaModel,
    readonly draftContext?: LlamaContext,
    /** models this backend loaded itself and disposes on close */
    private readonly ownedModels: readonly LlamaModel[] = [],
    /** see Backend.workersMayOverlap (ignored when `threads` is given: then it follows the current threads) */
    workersMayOverlap = true,
    /** enables setThreads() between the given placements */
    private readonly threads?: NativeThreadOptions,
  ) {
    this.fixedOverlap = workersMayOverlap;
    this.current = { target: targetContext.info().threads, draft: draftContext?.info().threads ?? 0 };
    const tctx = targetContext.info();
    this.seqIdsSplitPasses = !tctx.kvUnified;
    const m = targetModel;
    // minedraft's synthetic pairs speak ChatML: those made before their GGUF said so (tokenizer.chat_template,
    // written by cpp/synth/ since) get it here, so cached pairs need not be remade
    const synthChatml = !m.info.chatTemplate && m.info.meta["minedraft.synth.version"] !== undefined;
    this.info = {
      nVocab: m.info.nVocab,
      nCtx: tctx.nCtxSeq,
      nSeqMax: tctx.nSeqMax,
      addBos: m.info.addBos,
      bos: m.info.bos,
      // per-token answers never change: cached, so a generated token costs no native call for them
      isEog: memo((t) => m.isEog(t)),
      tokenize: (text, addSpecial) => m.tokenize(text, addSpecial, true),
      tokenizeAsync: (text, addSpecial) => m.tokenizeAsync(text, addSpecial, true),
      tokenBytes: memo((t) => m.tokenBytes(t)),
      detokenize: (tokens) => m.detokenize(tokens),
      chatTemplate: m.info.chatTemplate || (synthChatml ? "chatml" : null),
      applyChatTemplate: (msgs, addAssistant, template) =>
        m.applyChatTemplate(msgs, addAssistant, template ?? (synthChatml ? "chatml" : undefined)),
    };
    // the compute jobs, timed for the load monitor (the others are short)
    const clock = new JobClock();
    this.target = {
      prefill: (seq, pos, tokens) => clock.track(targetContext.prefill(seq, pos, tokens)),
      prefillMany: (specs) => clock.track(targetContext.prefillMany(specs)),
      removeSeq: async (seq) => void (await targetContext.removeSeq(seq)),
      moveSeq: moveFor(targetContext),
      verify: (specs: readonly VerifySpec[]) =>
        clock.track(targetContext.verify(specs, draftContext) as Promise<VerifyOutput[]>),
    };
    if (draftContext && draftModel) {
      // vocabulary sizes may differ within the tolerance of the compatibility rule (vocab-compat.ts)
      const vocab = draftVocabBridge(m.info.nVocab, draftModel.info.nVocab);
      this.draft = {
        prefill: (seq, pos, tokens) => clock.track(draftContext.prefill(seq, pos, vocab.fitTokens(tokens))),
        prefillMany: (specs) =>
          clock.track(draftContext.prefillMany(specs.map((s) => ({ ...s, tokens: vocab.fitTokens(s.tokens) })))),
        removeSeq: async (seq) => void (await draftContext.removeSeq(seq)),
        moveSeq: moveFor(draftContext),
        draft: (specs: readonly DraftSpec[]) =>
          clock.track(draftContext.draft(vocab.fitSpecs(specs), vocab.vocabLimit) as Promise<DraftOutput[]>),
      };
    }
    if (threads) {
      this.plans = copyPlans(threads.plans);
      this.setThreads = (target, draft) => this.switchThreads(target, draft);
      if (threads.replan) {
        const monitor = new CpuLoadMonitor(threads.cores, undefined, clock);
        this.cpuLoad = () => monitor.read();
        this.limitCores = (cores) => this.applyCoreLimit(cores);
      }
    }
  }

  /** auto's two placements now (they follow limitCores); undefined for fixed modes */
  get threadPlans(): Backend["threadPlans"] {
    return this.threads && !this.threads.schedule && this.plans ? copyPlans(this.plans) : undefined;
  }

  get cores(): number | undefined {
    return this.threads?.cores;
  }

  /** Re-places the threads for `cores` cores: a fixed mode moves at once, auto at its next placement. */
  private async applyCoreLimit(cores: number): Promise<boolean> {
    const t = this.threads!;
    if (!Number.isInteger(cores) || cores < 1 || cores > t.cores)
      throw new RangeError(`limitCores: cores must be an integer in 1..${t.cores}, got ${cores}`);
    const plans = t.replan!(cores);
    if (JSON.stringify(plans) === JSON.stringify(this.plans)) return false;
    this.plans = copyPlans(plans);
    if (t.schedule) {
      const p = t.schedule === "overlapped" ? (this.plans.overlapped ?? this.plans.sequential) : this.plans.sequential;
      await this.switchThreads(p.target, this.draftContext ? p.draft : 0);
    }
    return true;
  }

  /** Threads the workers use now. */
  get currentThreads(): ThreadPlacement {
    return { ...this.current };
  }

  /** With runtime thread switching: whether the current threads of both fit the cores together. */
  get workersMayOverlap(): boolean {
    const t = this.threads;
    if (!t) return this.fixedOverlap;
    // psd overlaps whatever its threads; one thread each overlaps without barriers to stall
    if (t.schedule === "overlapped" || (this.current.target === 1 && this.current.draft <= 1)) return true;
    return (t.targetOnGpu ? 0 : this.current.target) + (t.draftOnGpu ? 0 : this.current.draft) <= t.cores;
  }

  private async switchThreads(target: number, draft: number): Promise<void> {
    const contexts = [
      ["target", target, this.targetContext],
      ...(this.draftContext ? [["draft", draft, this.draftContext] as const] : []),
    ] as const;
    for (const [name, v, context] of contexts) {
      const max = context.info().threadsMax;
      if (!Number.isInteger(v) || v < 1 || v > max)
        throw new RangeError(`setThreads: ${name} threads must be an integer in 1..${max}, got ${v}`);
    }
    if (target === this.current.target && draft === this.current.draft) return;
    const jobs: Promise<void>[] = [];
    if (target !== this.current.target) jobs.push(this.targetContext.setThreads(target));
    if (this.draftContext && draft !== this.current.draft) jobs.push(this.draftContext.setThreads(draft));
    // the workers run jobs in order: later jobs see the new counts even before these resolve
    this.current = { target, draft };
    await Promise.all(jobs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.targetContext.dispose(), this.draftContext?.dispose()]);
    for (const m of this.ownedModels) m.dispose();
  }
}

function copyPlans(p: Plans): Plans {
  return { sequential: { ...p.sequential }, overlapped: p.overlapped ? { ...p.overlapped } : null };
}

/**
 * moveSeq: copy, then free the source. In a unified KV buffer the copy only relabels cells; between
 * the KV streams of two sequences llama.cpp copies the buffer at the start of the next decode,
 * before anything can write to the freed source.
 */
function moveFor(context: LlamaContext): (src: number, dst: number) => Promise<void> {
  return async (src, dst) => {
    await context.copySeq(src, dst);
    await context.removeSeq(src);
  };
}

/** A per-token cache of a pure function of the token (values are shared: callers must not mutate them). */
function memo<T>(fn: (token: number) => T): (token: number) => T {
  const cache = new Map<number, T>();
  return (token) => {
    let v = cache.get(token);
    if (v === undefined) {
      v = fn(token);
      cache.set(token, v);
    }
    return v;
  };
}
