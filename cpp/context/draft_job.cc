// draft(specs, vocabLimit): k tokens per sequence from the draft model, one decode per step over all
// sequences (packed into batches of at most nBatch tokens). A sampled row keeps its filtered
// distribution q in the context (SeqDrafts, in the spec's q bank) for the target's stochastic verification.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "context.h"
#include "jobs.h"

namespace md {

void DraftJob::Run(Context& c) {
  const size_t n = specs.size();
  out_tokens.assign(n, {});
  out_probs.assign(n, {});
  out_conf.assign(n, {});
  llama_memory_t mem = llama_get_memory(c.ctx_);
  rows.assign(n, 0);
  on_device.assign(n, 0);
  for (size_t i = 0; i < n; i++) {
    // a greedy row needs only its argmax, unless it also reports its confidence or must skip tokens past the limit
    const DraftSpec& s = specs[i];
    on_device[i] = c.ArgmaxOnDevice(s.seq, s.sampling.greedy() && !s.confidence && vocab_limit == c.n_vocab_);
    auto& d = c.drafts_[(size_t)specs[i].q_bank * c.params_.n_seq_max + specs[i].seq];
    d.k = 0;
    d.n_vocab = vocab_limit;
    d.dense = !specs[i].sampling.greedy();
    d.tokens.clear();
    d.dists.resize(d.dense ? (size_t)specs[i].k * vocab_limit : 0);
    llama_memory_seq_rm(mem, specs[i].seq, specs[i].pos, -1);
  }
  // Step 0 feeds each sequence's pending tokens; steps 1.. feed the previous draft token.
  // Sequences are packed into batches of at most n_batch tokens.
  int32_t max_k = 0;
  for (auto& s : specs) max_k = std::max(max_k, s.k);
  std::vector<int32_t> next_pos(n);
  const std::vector<size_t> order = BySeq(specs);
  for (int32_t step = 0; step < max_k; step++) {
    size_t j = 0;
    while (j < n) {
      c.BatchClear();
      std::vector<size_t> members;
      for (; j < n; j++) {
        const size_t i = order[j];
        const DraftSpec& s = specs[i];
        if (step >= s.k) continue;
        const size_t need = step == 0 ? s.tokens.size() : 1;
        if (c.batch_.n_tokens > 0 && (size_t)c.batch_.n_tokens + need > c.params_.n_batch) break;
        if (step == 0) {
          for (size_t t = 0; t < s.tokens.size(); t++)
            c.BatchAdd(s.tokens[t], s.pos + (int32_t)t, s.seq, t + 1 == s.tokens.size());
          next_pos[i] = s.pos + (int32_t)s.tokens.size();
        } else {
          c.BatchAdd(out_tokens[i].back(), next_pos[i]++, s.seq, true);
        }
        rows[i] = c.batch_.n_tokens - 1;
        members.push_back(i);
      }
      if (members.empty()) break;
      c.DecodeOrThrow("draft");
      // row pointers first, here: llama_get_logits_ith synchronises and may reorder the outputs
      std::vector<const float*> logits(members.size(), nullptr);
      std::vector<int32_t> argmax(members.size(), LLAMA_TOKEN_NULL);
      size_t sampled = 0;
      for (size_t x = 0; x < members.size(); x++) {
        if (on_device[members[x]]) {
          argmax[x] = llama_get_sampled_token_ith(c.ctx_, rows[members[x]]);
          if (argmax[x] == LLAMA_TOKEN_NULL) throw std::runtime_error("llama.cpp returned no token for a draft row");
          continue;
        }
        logits[x] = llama_get_logits_ith(c.ctx_, rows[members[x]]);
        if (!logits[x]) throw std::runtime_error("llama.cpp returned no logits for a draft row");
        if (!specs[members[x]].sampling.greedy()) sampled++;
      }
      c.ForEachRow(members.size(), sampled >= 4,
                   [&](size_t x, Context::RowBuffers& b) { SampleOne(c, members[x], step, logits[x], argmax[x], b); });
    }
  }
}

// Runs on any of ForEachRow's threads: writes only sequence s.seq's drafts and row i's outputs.
// logits: the row's, or null when its argmax came from the device (greedy rows without confidence)
void DraftJob::SampleOne(Context& c, size_t i, int32_t step, const float* logits, int32_t argmax,
                         Context::RowBuffers& b) {
  const DraftSpec& s = specs[i];
  auto& d = c.drafts_[(size_t)s.q_bank * c.params_.n_seq_max + s.seq];
  int32_t tok;
  float prob = 1.0f;
  if (s.sampling.greedy()) {
    tok = logits ? Argmax(logits, vocab_limit) : argmax;
    if (s.confidence) {
      // softmax (temperature 1) probability of the argmax: 1 / sum_j exp(l_j - l_max)
      const float lmax = logits[tok];
      double sum = 0.0;
      for (int32_t j = 0; j < vocab_limit; j++) sum += std::exp((double)(logits[j] - lmax));
      out_conf[i].push_back(sum > 0.0 && std::isfinite(sum) ? (float)(1.0 / sum) : 0.0f);
    }
  } else {
    float* q = d.dists.data() + (size_t)step * vocab_limit;
    FilteredDist(logits, vocab_limit, s.sampling, b.row, b.scratch);
    std::memcpy(q, b.row.data(), sizeof(float) * vocab_limit);
    tok = SampleRow(q, vocab_limit, s.uniforms[step]);
    if (tok < 0) throw std::runtime_error("draft distribution has no mass (non-finite logits?)");
    prob = q[tok];
    if (s.confidence) out_conf[i].push_back(prob);
  }
  d.tokens.push_back(tok);
  d.k = (int32_t)d.tokens.size();
  out_tokens[i].push_back(tok);
  out_probs[i].push_back(prob);
}

Napi::Value DraftJob::Result(Napi::Env env) {
  Napi::Array arr = Napi::Array::New(env, specs.size());
  for (size_t i = 0; i < specs.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Int32Array t = Napi::Int32Array::New(env, out_tokens[i].size());
    Napi::Float32Array p = Napi::Float32Array::New(env, out_probs[i].size());
    if (!out_tokens[i].empty()) {
      std::memcpy(t.Data(), out_tokens[i].data(), out_tokens[i].size() * sizeof(int32_t));
      std::memcpy(p.Data(), out_probs[i].data(), out_probs[i].size() * sizeof(float));
    }
    o.Set("tokens", t);
    o.Set("probs", p);
    if (specs[i].confidence) {
      Napi::Float32Array cf = Napi::Float32Array::New(env, out_conf[i].size());
      if (!out_conf[i].empty()) std::memcpy(cf.Data(), out_conf[i].data(), out_conf[i].size() * sizeof(float));
      o.Set("confidence", cf);
    }
    arr.Set((uint32_t)i, o);
  }
  return arr;
}

}  // namespace md
