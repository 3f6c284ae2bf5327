// verify(specs, draftContext?): the target scores each sequence's pending token and draft in one pass
// (sequences packed into batches of at most nBatch tokens); per row the acceptance probability p of
// the drafted token and the token to emit instead (argmax, or a sample of the residual max(0, p - q)).
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "context.h"
#include "jobs.h"

namespace md {

void VerifyJob::Run(Context& c) {
  const size_t n = specs.size();
  out_p.assign(n, {});
  out_alt.assign(n, {});
  q_of.assign(n, nullptr);
  llama_memory_t mem = llama_get_memory(c.ctx_);
  on_device.assign(n, 0);
  for (size_t i = 0; i < n; i++) {
    llama_memory_seq_rm(mem, specs[i].seq, specs[i].pos, -1);
    on_device[i] = c.ArgmaxOnDevice(specs[i].seq, specs[i].sampling.greedy());  // greedy rows need only the argmax
  }
  const std::vector<size_t> order = BySeq(specs);
  size_t j = 0;
  while (j < n) {
    c.BatchClear();
    std::vector<std::pair<size_t, int32_t>> members;  // spec, first row
    for (; j < n; j++) {
      const size_t i = order[j];
      const VerifySpec& s = specs[i];
      const size_t need = s.draft.size() + 1;
      if (need > c.params_.n_batch)
        throw std::runtime_error("verification of one sequence needs more than n_batch tokens");
      if (c.batch_.n_tokens > 0 && (size_t)c.batch_.n_tokens + need > c.params_.n_batch) break;
      members.emplace_back(i, c.batch_.n_tokens);
      c.BatchAdd(s.pending, s.pos, s.seq, true);
      for (size_t t = 0; t < s.draft.size(); t++) c.BatchAdd(s.draft[t], s.pos + 1 + (int32_t)t, s.seq, true);
    }
    c.DecodeOrThrow("verify");
    Evaluate(c, members);
  }
}

void VerifyJob::Evaluate(Context& c, const std::vector<std::pair<size_t, int32_t>>& members) {
  // row pointers first, here: llama_get_logits_ith synchronises and may reorder the outputs
  std::vector<RowTask> tasks;
  size_t sampled = 0;
  for (auto& [si, row0] : members) {
    const VerifySpec& s = specs[si];
    const int32_t k = (int32_t)s.draft.size();
    out_p[si].resize(k);
    out_alt[si].resize(k + 1);
    if (!s.sampling.greedy() && k > 0 && !s.onehot) {
      q_of[si] = &draft_ctx->Drafts(s.draft_seq, s.q_bank);
      if (q_of[si]->k < s.q_row + k)
        throw std::runtime_error(
            "verify: the draft context holds fewer drafted tokens for this sequence than were submitted");
    }
    if (on_device[si]) {
      for (int32_t r = 0; r <= k; r++) {
        out_alt[si][r] = llama_get_sampled_token_ith(c.ctx_, row0 + r);
        if (out_alt[si][r] == LLAMA_TOKEN_NULL)
          throw std::runtime_error("llama.cpp returned no token for a verification row");
        if (r < k) out_p[si][r] = out_alt[si][r] == s.draft[r] ? 1.0f : 0.0f;
      }
      continue;
    }
    for (int32_t r = 0; r <= k; r++) {
      const float* logits = llama_get_logits_ith(c.ctx_, row0 + r);
      if (!logits) throw std::runtime_error("llama.cpp returned no logits for a verification row");
      tasks.push_back({si, r, logits});
    }
    if (!s.sampling.greedy()) sampled += (size_t)k + 1;
  }
  c.ForEachRow(tasks.size(), sampled >= 4, [&](size_t i, Context::RowBuffers& b) { EvaluateRow(c, tasks[i], b); });
}

// Runs on any of ForEachRow's threads: writes only its row's entries of out_p / out_alt.
void VerifyJob::EvaluateRow(Context& c, const RowTask& t, Context::RowBuffers& b) {
  const VerifySpec& s = specs[t.si];
  const int32_t k = (int32_t)s.draft.size();
  const int32_t r = t.r;
  auto& p_out = out_p[t.si];
  auto& alt = out_alt[t.si];
  if (s.sampling.greedy()) {
    alt[r] = Argmax(t.logits, c.n_vocab_);
    if (r < k) p_out[r] = alt[r] == s.draft[r] ? 1.0f : 0.0f;
    return;
  }
  FilteredDist(t.logits, c.n_vocab_, s.sampling, b.row, b.scratch);
  if (r < k) {
    p_out[r] = s.draft[r] < c.n_vocab_ ? b.row[s.draft[r]] : 0.0f;
    if (s.onehot) {
      // q(draft[r]) = 1: the residual is p without draft[r], renormalized
      alt[r] = SampleResidual(b.row.data(), c.n_vocab_, nullptr, 0, s.draft[r], s.uniforms[r]);
    } else {
      const SeqDrafts* q = q_of[t.si];
      const int32_t qr = s.q_row + r;
      const float* qrow = q->dense ? q->dists.data() + (size_t)qr * q->n_vocab : nullptr;
      alt[r] = SampleResidual(b.row.data(), c.n_vocab_, qrow, q->n_vocab, q->tokens[qr], s.uniforms[r]);
    }
  } else {
    alt[r] = SampleRow(b.row.data(), c.n_vocab_, s.uniforms[r]);
  }
  if (alt[r] < 0) throw std::runtime_error("target distribution has no mass (non-finite logits?)");
}

Napi::Value VerifyJob::Result(Napi::Env env) {
  Napi::Array arr = Napi::Array::New(env, specs.size());
  for (size_t i = 0; i < specs.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Float32Array p = Napi::Float32Array::New(env, out_p[i].size());
    Napi::Int32Array a = Napi::Int32Array::New(env, out_alt[i].size());
    if (!out_p[i].empty()) std::memcpy(p.Data(), out_p[i].data(), out_p[i].size() * sizeof(float));
    std::memcpy(a.Data(), out_alt[i].data(), out_alt[i].size() * sizeof(int32_t));
    o.Set("p", p);
    o.Set("alt", a);
    arr.Set((uint32_t)i, o);
  }
  return arr;
}

}  // namespace md
