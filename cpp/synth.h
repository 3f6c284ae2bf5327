// Synthetic GGUF model pairs (target + draft) for tests and benchmarks.
//
// synthesize_pair() writes <outDir>/target.gguf and <outDir>/draft.gguf: two llama-architecture models that share
// a tokenizer (copied from a llama.cpp vocab GGUF) and random, seeded weights. The draft is bit-identical to the
// target's first nDraftLayer layers (plus the same token_embd / output_norm / output tensors); the target's deeper
// layers have attn_output and ffn_down scaled by eps, so its next-token distribution stays close to the draft's and
// greedy agreement is tunable through eps.
//
// The core is plain C++17 (ggml/gguf only). Compile with -DMINEDRAFT_SYNTH_STANDALONE to leave out the N-API part.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

struct SynthParams {
    std::string outDir;     // created if missing
    std::string vocabPath;  // a llama.cpp vocab GGUF (tokenizer.* keys are copied from it)
    int nEmbd = 256;
    int nLayer = 4;         // target layers
    int nDraftLayer = 1;    // draft layers (1 <= nDraftLayer <= nLayer)
    int nHead = 4;
    int nHeadKv = 4;
    int nFf = 512;
    int nCtxTrain = 4096;
    std::string dtype = "f32";  // "f32" | "f16" | "q8_0": type of the 2-D weight matrices (norms are always f32)
    float eps = 0.02f;          // scale of attn_output / ffn_down in target layers >= nDraftLayer
    uint64_t seed = 0;
    int nThreads = 0;           // worker threads for weight generation; 0 = hardware concurrency (output never depends on it)
};

// "" when p is valid, else a message naming the offending field (no I/O: the vocab file is checked by synthesize_pair).
std::string synth_validate_params(const SynthParams& p);

// Writes <outDir>/target.gguf and <outDir>/draft.gguf (each written to a temporary name, fsynced, then renamed).
// progress(fraction, stage) is called from the calling thread with strictly increasing fractions in [0, 1], the last
// one exactly 1 (stage "done"); if it throws, generation stops, temporary files are removed and the exception
// propagates. Throws std::runtime_error (or std::invalid_argument for bad params) on failure.
void synthesize_pair(const SynthParams& p, const std::function<void(double fraction, const char* stage)>& progress);

#ifndef MINEDRAFT_SYNTH_STANDALONE
#include <napi.h>
// exports.synthesize(opts, onProgress?) => Promise<void>; runs synthesize_pair on a worker thread.
//   opts: { outDir: string, vocabPath: string, nEmbd: int, nLayer: int, nHead: int, nFf: int,
//           nDraftLayer?: int = 1, nHeadKv?: int = nHead, nCtxTrain?: int = 4096, dtype?: "f32"|"f16"|"q8_0" = "f32",
//           eps?: number = 0.02, seed?: number (safe integer >= 0) | bigint = 0, nThreads?: int = 0 (all cores) }
//   onProgress?: (fraction: number, stage: string) => void, called on the JS thread with strictly increasing
//   fractions, the last (1, "done") before the promise resolves; if it throws, synthesis stops, no file is left
//   and the promise rejects with what it threw.
//   Bad arguments throw synchronously: TypeError (wrong type / missing) or RangeError (bad value or combination);
//   I/O failures reject the promise with an Error.
void InitSynth(Napi::Env env, Napi::Object exports);
#endif
