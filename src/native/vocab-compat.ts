// Can this draft model draft for this target? The one home of the vocabulary-compatibility rule and of what it
// lets through: the rule (vocabIncompatibility) runs over facts the native layer reports (RawModel.info(), and
// the vocabulary-wide text scan firstTokenTextDifference, which stays native for speed); the bridge
// (draftVocabBridge) is how a draft with a slightly different vocabulary size then serves the target.
import type { RawModel, RawModelInfo } from "./types.js";

/** The most tokens by which target and draft vocabularies may differ in size (the extra ids are never proposed). */
export const VOCAB_SIZE_TOLERANCE = 128;

/** The vocabulary facts the rule reads (RawModel.info(); LlamaModel.info holds them too). */
export type VocabFacts = Pick<RawModelInfo, "vocabType" | "bos" | "eos" | "eot" | "addBos" | "nVocab">;

/** One side of the check: the native model (for its token texts) and its vocabulary facts. */
export interface VocabSide {
  readonly raw: RawModel;
  readonly info: VocabFacts;
}

/** The native scan the rule needs (NativeAddon.firstTokenTextDifference). */
export interface TokenTextScan {
  firstTokenTextDifference(a: RawModel, b: RawModel): number;
}

/**
 * Why `draft` cannot draft for `target`, or null when it can: the same tokenizer type, special tokens (BOS, EOS,
 * EOT) and add-BOS setting, sizes within VOCAB_SIZE_TOLERANCE, and the same text for every token id both have.
 * Throws "Model is disposed" when either model is.
 */
export function vocabIncompatibility(addon: TokenTextScan, target: VocabSide, draft: VocabSide): string | null {
  if (target.raw.disposed || draft.raw.disposed) throw new Error("Model is disposed");
  const t = target.info;
  const d = draft.info;
  if (t.vocabType !== d.vocabType) return `vocabulary types differ: target ${t.vocabType}, draft ${d.vocabType}`;
  for (const [name, key] of [
    ["BOS", "bos"],
    ["EOS", "eos"],
    ["EOT", "eot"],
  ] as const) {
    if (t[key] !== d[key]) return `special token ${name} differs: target ${t[key]}, draft ${d[key]}`;
  }
  if (t.addBos !== d.addBos) return "add-BOS setting differs between target and draft";
  if (Math.abs(t.nVocab - d.nVocab) > VOCAB_SIZE_TOLERANCE) {
    return `vocabulary sizes differ by more than ${VOCAB_SIZE_TOLERANCE}: target ${t.nVocab}, draft ${d.nVocab}`;
  }
  const id = addon.firstTokenTextDifference(target.raw, draft.raw);
  if (id >= 0) return `token ${id} differs: target '${target.raw.tokenText(id)}', draft '${draft.raw.tokenText(id)}'`;
  return null;
}

/** How a compatible draft serves the target when their vocabulary sizes differ (within the tolerance). */
export interface DraftVocabBridge {
  /** the draft never proposes a token the target cannot score: its rows are cut to the smaller vocabulary */
  readonly vocabLimit: number;
  /**
   * target tokens fed to the draft: ids the draft lacks become token 0 (the draft then drafts worse after them; the
   * output stays exact)
   */
  fitTokens(tokens: readonly number[]): readonly number[];
  /** fitTokens over draft specs' pending tokens */
  fitSpecs<S extends { readonly tokens: readonly number[] }>(specs: readonly S[]): readonly S[];
}

export function draftVocabBridge(targetVocab: number, draftVocab: number): DraftVocabBridge {
  const smallerDraft = draftVocab < targetVocab;
  const fit = (tokens: readonly number[]): readonly number[] =>
    tokens.some((t) => t >= draftVocab) ? tokens.map((t) => (t < draftVocab ? t : 0)) : tokens;
  return {
    vocabLimit: Math.min(draftVocab, targetVocab),
    fitTokens: (tokens) => (smallerDraft ? fit(tokens) : tokens),
    fitSpecs: (specs) => (smallerDraft ? specs.map((s) => ({ ...s, tokens: fit(s.tokens) })) : specs),
  };
}
