// The engine's Backend over two native contexts (target and draft), each on its own worker thread.
import type { Backend, DraftOutput, DraftSpec, ModelInfo, VerifyOutput, VerifySpec } from "../engine/backend.js";
import type { LlamaContext } from "./context.js";
import type { LlamaModel } from "./model.js";

export class NativeBackend implements Backend {
  readonly info: ModelInfo;
  readonly target: Backend["target"];
  readonly draft: Backend["draft"];
  private closed = false;

  constructor(
    readonly targetModel: LlamaModel,
    readonly targetContext: LlamaContext,
    readonly draftModel?: LlamaModel,
    readonly draftContext?: LlamaContext,
    /** models this backend loaded itself and disposes on close */
    private readonly ownedModels: readonly LlamaModel[] = [],
    /** see Backend.workersMayOverlap */
    readonly workersMayOverlap = true,
  ) {
    const tctx = targetContext.info();
    const m = targetModel;
    this.info = {
      nVocab: m.info.nVocab,
      nCtx: tctx.nCtxSeq,
      nSeqMax: tctx.nSeqMax,
      addBos: m.info.addBos,
      bos: m.info.bos,
      isEog: (t) => m.isEog(t),
      tokenize: (text, addSpecial) => m.tokenize(text, addSpecial, true),
      tokenBytes: (t) => m.tokenBytes(t),
      detokenize: (tokens) => m.detokenize(tokens),
      applyChatTemplate: m.info.chatTemplate ? (msgs, addAssistant) => m.applyChatTemplate(msgs, addAssistant) : undefined,
    };
    this.target = {
      prefill: (seq, pos, tokens) => targetContext.prefill(seq, pos, tokens),
      removeSeq: async (seq) => void (await targetContext.removeSeq(seq)),
      verify: (specs: readonly VerifySpec[]) => targetContext.verify(specs, draftContext) as Promise<VerifyOutput[]>,
    };
    if (draftContext && draftModel) {
      // The draft never proposes a token the target cannot score.
      const vocabLimit = Math.min(draftModel.info.nVocab, m.info.nVocab);
      this.draft = {
        prefill: (seq, pos, tokens) => draftContext.prefill(seq, pos, tokens),
        removeSeq: async (seq) => void (await draftContext.removeSeq(seq)),
        draft: (specs: readonly DraftSpec[]) => draftContext.draft(specs, vocabLimit) as Promise<DraftOutput[]>,
      };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.targetContext.dispose(), this.draftContext?.dispose()]);
    for (const m of this.ownedModels) m.dispose();
  }
}
