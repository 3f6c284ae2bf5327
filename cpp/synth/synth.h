// Synthetic GGUF model pairs (target + draft) for tests and benchmarks.
//
// synthesize_pair() writes <outDir>/target.gguf and <outDir>/draft.gguf: two llama-architecture models that share
// a tokenizer (copied from a llama.cpp vocab GGUF) and random, seeded weights. The draft is bit-identical to the
// target's first nDraftLayer layers (plus the same token_embd / output_norm / output tensors); the target's deeper
// layers have attn_output and ffn_down scaled by eps, so its next-token distribution stays close to the draft's and
// greedy agreement is tunable through eps. attnScale scales attn_output in every layer of both files (1 = unchanged).
//
// A test-fixture maker, not part of the inference addon: built as its own module (binding.gyp target minedraft_synth:
// this file and synth.cc are plain C++17 over ggml/gguf, addon.cc is the N-API face), loaded only by src/synth.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

struct SynthParams {
  std::string outDir;     // created if missing
  std::string vocabPath;  // a llama.cpp vocab GGUF (tokenizer.* keys are copied from it)
  int nEmbd = 256;
  int nLayer = 4;       // target layers
  int nDraftLayer = 1;  // draft layers (1 <= nDraftLayer <= nLayer)
  int nHead = 4;
  int nHeadKv = 4;
  int nFf = 512;
  int nCtxTrain = 4096;
  std::string dtype = "f32";  // "f32" | "f16" | "q8_0": type of the 2-D weight matrices (norms are always f32)
  float eps = 0.02f;          // scale of attn_output / ffn_down in target layers >= nDraftLayer
  // scale of attn_output in every layer of both models (on top of eps): 1 = the usual weights (byte-identical files),
  // 0 = attention adds nothing, so each position's logits depend on its own token only (a "bigram" model whose greedy
  // output repeats whenever a token recurs; attention still runs, so the compute per token is unchanged)
  float attnScale = 1.0f;
  uint64_t seed = 0;
  int nThreads = 0;  // worker threads for weight generation; 0 = hardware concurrency (output never depends on it)
};

// "" when p is valid, else a message naming the offending field (no I/O: the vocab file is checked by synthesize_pair).
std::string synth_validate_params(const SynthParams& p);

// Writes <outDir>/target.gguf and <outDir>/draft.gguf (each written to a temporary name, fsynced, then renamed).
// progress(fraction, stage) is called from the calling thread with strictly increasing fractions in [0, 1], the last
// one exactly 1 (stage "done"); if it throws, generation stops, temporary files are removed and the exception
// propagates. Throws std::runtime_error (or std::invalid_argument for bad params) on failure.
void synthesize_pair(const SynthParams& p, const std::function<void(double fraction, const char* stage)>& progress);
