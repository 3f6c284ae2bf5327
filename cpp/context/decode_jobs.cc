// decode(batch) and prefill(seq, pos, tokens): plain forward passes, logits copied out for decode.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "context.h"
#include "jobs.h"

namespace md {

void DecodeJob::Run(Context& c) {
  c.BatchClear();
  for (size_t i = 0; i < tokens.size(); i++) c.BatchAdd(tokens[i], pos[i], seq[i], want[i] != 0);
  c.DecodeOrThrow("decode");
  out.resize(n_out * (size_t)c.n_vocab_);
  size_t r = 0;
  for (size_t i = 0; i < tokens.size(); i++) {
    if (!want[i]) continue;
    const float* row = llama_get_logits_ith(c.ctx_, (int32_t)i);
    if (!row) throw std::runtime_error("llama.cpp returned no logits for an output row");
    std::memcpy(out.data() + r * c.n_vocab_, row, sizeof(float) * c.n_vocab_);
    r++;
  }
}

Napi::Value DecodeJob::Result(Napi::Env env) {
  // Hand the buffer to JS without copying: the ArrayBuffer owns the vector's storage.
  auto* holder = new std::vector<float>(std::move(out));
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, holder->data(), holder->size() * sizeof(float), [](Napi::Env, void*, std::vector<float>* h) { delete h; },
      holder);
  return Napi::Float32Array::New(env, holder->size(), ab, 0);
}

void PrefillJob::Run(Context& c) {
  llama_memory_seq_rm(llama_get_memory(c.ctx_), seq, pos, -1);
  const size_t nb = c.params_.n_batch;
  for (size_t start = 0; start < tokens.size(); start += nb) {
    c.BatchClear();
    const size_t end = std::min(tokens.size(), start + nb);
    for (size_t i = start; i < end; i++) c.BatchAdd(tokens[i], pos + (int32_t)i, seq, false);
    c.DecodeOrThrow("prefill");
  }
}

}  // namespace md
