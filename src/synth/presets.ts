// Architectures of the synthetic target/draft pairs (see cpp/synth/synth.cc for how the weights are made).
//
// Greedy draft/target agreement (fraction of the target's greedy tokens that the draft's argmax predicts, measured
// with llama.cpp on CPU over a few prompts, llama-spm vocab) depends on eps and on how many target layers are
// scaled by it (nLayer - nDraftLayer); each preset's default eps aims at ~0.75-0.85 agreement:
//
//   preset      eps: 0.01  0.02  0.03  0.04  0.05  0.07  0.1   0.2     default eps
//   tiny             -     0.95  -     -     0.89  -     0.79  0.61    0.1  (~0.79)
//   small            -     0.93  -     -     0.84  0.76  0.68  0.45    0.06 (~0.80)
//   medium           -     0.92  -     0.87  0.82  -     0.62  -       0.05 (~0.82)
//   tinyllama        0.94  0.87  0.82  -     0.68  -     -     -       0.03 (~0.82)
//
// (tiny/small: 8 prompts x 64 greedy tokens; medium 8 x 48; tinyllama 8 x 32. Agreement is a property of the
// weights, so it is the same for every dtype up to quantization noise.)
//
// Logits have a standard deviation of 5 (top-1 probability ~0.4 on a 32k vocab): peaked but not one-hot.

export type SynthDtype = "f32" | "f16" | "q8_0";

export interface SynthArch {
  /** model width */
  nEmbd: number;
  /** target layers */
  nLayer: number;
  /** draft layers: the draft is the target's first nDraftLayer layers */
  nDraftLayer: number;
  nHead: number;
  nHeadKv: number;
  /** feed-forward width */
  nFf: number;
  /** llama.context_length written to the files */
  nCtxTrain: number;
  /** type of the weight matrices (norms stay f32) */
  dtype: SynthDtype;
  /** scale of attn_output / ffn_down in the target's layers >= nDraftLayer (0 = target behaves like the draft) */
  eps: number;
  /**
   * scale of attn_output in every layer of both models, on top of eps (default 1: the usual weights). 0 = attention
   * adds nothing: each position's logits depend on its own token only (a "bigram" model), so greedy output repeats
   * what followed the same token earlier, and prompt-lookup drafts find something. Attention still runs: the
   * compute per token does not change.
   */
  attnScale?: number;
}

export interface SynthPreset extends SynthArch {
  description: string;
}

export const SYNTH_PRESETS = {
  tiny: {
    description: "tests: 4 layers x 256, draft 1 layer, f32 (~76 MB + ~69 MB with a 32k vocab; made in about a second)",
    nEmbd: 256,
    nLayer: 4,
    nDraftLayer: 1,
    nHead: 4,
    nHeadKv: 2,
    nFf: 512,
    nCtxTrain: 4096,
    dtype: "f32",
    eps: 0.1,
  },
  small: {
    description: "8 layers x 512, draft 1 layer, f16",
    nEmbd: 512,
    nLayer: 8,
    nDraftLayer: 1,
    nHead: 8,
    nHeadKv: 4,
    nFf: 1408,
    nCtxTrain: 4096,
    dtype: "f16",
    eps: 0.06,
  },
  medium: {
    description: "16 layers x 1024, draft 2 layers, q8_0",
    nEmbd: 1024,
    nLayer: 16,
    nDraftLayer: 2,
    nHead: 16,
    nHeadKv: 4,
    nFf: 2816,
    nCtxTrain: 4096,
    dtype: "q8_0",
    eps: 0.05,
  },
  tinyllama: {
    description:
      "benchmark: TinyLlama-1.1B shape (22 layers x 2048, 32 query / 4 KV heads, ff 5632), q8_0 (~1.1 GB); " +
      "draft = 1 layer + the shared embeddings/head (~0.1 of the target's cost)",
    nEmbd: 2048,
    nLayer: 22,
    nDraftLayer: 1,
    nHead: 32,
    nHeadKv: 4,
    nFf: 5632,
    nCtxTrain: 2048,
    dtype: "q8_0",
    eps: 0.03,
  },
} as const satisfies Record<string, SynthPreset>;

export type SynthPresetName = keyof typeof SYNTH_PRESETS;

export const SYNTH_PRESET_NAMES = Object.keys(SYNTH_PRESETS) as SynthPresetName[];

export function isSynthPresetName(name: unknown): name is SynthPresetName {
  return typeof name === "string" && Object.hasOwn(SYNTH_PRESETS, name);
}

/** The preset's architecture (a fresh, mutable copy). Throws RangeError for an unknown name. */
export function synthPreset(name: string): SynthPreset {
  if (!isSynthPresetName(name)) {
    throw new RangeError(
      `unknown synthetic model preset ${JSON.stringify(name)} (expected one of ${SYNTH_PRESET_NAMES.join(", ")})`,
    );
  }
  return { ...SYNTH_PRESETS[name] };
}
