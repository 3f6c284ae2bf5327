// decode(batch) and prefill(seq, pos, tokens | specs): plain forward passes, logits copied out for decode.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "context.h"
#include "jobs.h"

namespace md {

void DecodeJob::Run(Context& c) {
  for (size_t i = 0; i < tokens.size(); i++)
    if (want[i]) c.ArgmaxOnDevice(seq[i], false);  // these rows' logits are read
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
  for (const PrefillSpec& s : specs) llama_memory_seq_rm(llama_get_memory(c.ctx_), s.seq, s.pos, -1);
  const size_t nb = c.params_.n_batch;
  size_t in_batch = 0;
  c.BatchClear();
  for (const PrefillSpec& s : specs) {
    for (size_t i = 0; i < s.tokens.size(); i++) {
      if (in_batch == nb) {
        c.DecodeOrThrow("prefill");
        c.BatchClear();
        in_batch = 0;
      }
      c.BatchAdd(s.tokens[i], s.pos + (int32_t)i, s.seq, false);
      in_batch++;
    }
  }
  if (in_batch > 0) c.DecodeOrThrow("prefill");
}

}  // namespace md
