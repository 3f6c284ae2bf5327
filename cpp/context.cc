#include "context.h"

#include <ggml-backend.h>
#include <ggml-cpu.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common.h"
#include "model.h"

namespace md {

// --- jobs ------------------------------------------------------------------------------------

// A unit of work: Run() on the worker thread (may throw std::exception: the promise rejects with
// its message), Result() back on the JS thread to build the resolved value.
struct Context::Job {
  // The promise is made by Enqueue(), after the arguments were validated: a Job dropped by a validation error
  // must not leave an unsettled napi_deferred (and its persistent handle) behind.
  explicit Job(Napi::Env) {}
  virtual ~Job() = default;
  std::chrono::steady_clock::time_point enqueued;
  virtual void Run(Context& c) = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  std::optional<Napi::Promise::Deferred> deferred;
  std::string error;
  bool ok = false;
};

using Job = Context::Job;

struct InitJob : Job {
  using Job::Job;
  Napi::ObjectReference self;
  void Run(Context& c) override {
    TakeRecentLog();
    c.ctx_ = llama_init_from_model(c.llama_model_.get(), c.params_);
    if (!c.ctx_) {
      std::string why = TakeRecentLog();
      throw std::runtime_error("failed to create the llama.cpp context" + (why.empty() ? std::string() : ": " + why));
    }
    if (c.use_threadpool_) {
      // The threadpool functions live in the dynamically loaded CPU backend.
      ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
      auto tp_new = reg ? (decltype(&ggml_threadpool_new))ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new") : nullptr;
      if (tp_new) {
        // Sized for the most threads setThreads() may ask for: a graph planned for fewer threads
        // kicks off only workers 0..n-1 (ggml_graph_compute_kickoff / thread_ready in ggml-cpu.c);
        // the others see no pending work and go back to sleep on the pool's condition variable.
        ggml_threadpool_params tpp = ggml_threadpool_params_default(std::max(c.threads_max_, std::max(c.params_.n_threads, c.params_.n_threads_batch)));
        // between graphs the pool's threads spin for about poll x 131072 pauses, then sleep: 0 (the
        // default) never spins on cores another context may need; a context alone on its cores
        // (ar) spins briefly, so the next token's graph does not wait for its threads to wake up
        tpp.poll = (uint32_t)c.poll_;
        c.threadpool_ = tp_new(&tpp);
        c.UsePool(c.params_.n_threads > 1 || c.params_.n_threads_batch > 1);
      }
    }
    c.n_ctx_seq_ = (int32_t)llama_n_ctx_seq(c.ctx_);
    c.batch_ = llama_batch_init((int32_t)c.params_.n_batch, 0, 1);
  }
  Napi::Value Result(Napi::Env env) override { return self.Value(); }
};

struct DisposeJob : Job {
  using Job::Job;
  void Run(Context& c) override {
    if (c.ctx_) {
      llama_free(c.ctx_);
      c.ctx_ = nullptr;
    }
    if (c.threadpool_) {
      ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
      auto tp_free = reg ? (decltype(&ggml_threadpool_free))ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free") : nullptr;
      if (tp_free) tp_free(c.threadpool_);
      c.threadpool_ = nullptr;
    }
    if (c.batch_.token) {
      llama_batch_free(c.batch_);
      c.batch_ = llama_batch{};
    }
    // drafts_ stays: a target worker may still read it; the destructor frees it.
  }
};

struct DecodeJob : Job {
  using Job::Job;
  std::vector<int32_t> tokens, pos, seq;
  std::vector<uint8_t> want;
  std::vector<float> out;  // n_out x n_vocab
  size_t n_out = 0;
  void Run(Context& c) override {
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
  Napi::Value Result(Napi::Env env) override {
    // Hand the buffer to JS without copying: the ArrayBuffer owns the vector's storage.
    auto* holder = new std::vector<float>(std::move(out));
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(float),
                                                  [](Napi::Env, void*, std::vector<float>* h) { delete h; }, holder);
    return Napi::Float32Array::New(env, holder->size(), ab, 0);
  }
};

struct PrefillJob : Job {
  using Job::Job;
  int32_t seq = 0, pos = 0;
  std::vector<int32_t> tokens;
  void Run(Context& c) override {
    llama_memory_seq_rm(llama_get_memory(c.ctx_), seq, pos, -1);
    const size_t nb = c.params_.n_batch;
    for (size_t start = 0; start < tokens.size(); start += nb) {
      c.BatchClear();
      const size_t end = std::min(tokens.size(), start + nb);
      for (size_t i = start; i < end; i++) c.BatchAdd(tokens[i], pos + (int32_t)i, seq, false);
      c.DecodeOrThrow("prefill");
    }
  }
};

// With a KV stream per sequence, llama.cpp runs one forward pass per run of consecutive, increasing
// sequence ids in a batch (llama_batch_allocr::split_equal, sequential): rows are added in ascending
// sequence order so that a batch over sequences 0..m-1 is one pass, whatever order the caller used.
template <class Spec>
std::vector<size_t> BySeq(const std::vector<Spec>& specs) {
  std::vector<size_t> order(specs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return specs[a].seq < specs[b].seq; });
  return order;
}

// The vocabulary-wide work per output row runs after the decode, on the worker, while the graph's
// other threads wait: a sampled row costs 0.3-1.3 ms at 32k tokens (filtered softmax, residual
// sample), so 8 requests x 5 rows take longer than a short step's decode. Sampled rows are spread
// over as many threads as the context decodes with (its share of the cores), or rowThreads (a model
// on a GPU decodes with one CPU thread); greedy rows (an argmax, ~10 us) stay on the worker.
// fn(i, buffers) must touch only row i's outputs.
template <class Fn>
void Context::ForEachRow(size_t rows, bool spread, Fn&& fn) {
  const int32_t want = row_threads_ > 0 ? row_threads_ : threads_now_.load();
  const size_t threads = spread ? std::max<size_t>(1, std::min<size_t>((size_t)std::max(1, want), rows / 2)) : 1;
  if (row_buffers_.size() < threads) row_buffers_.resize(threads);
  if (threads == 1) {
    for (size_t i = 0; i < rows; i++) fn(i, row_buffers_[0]);
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  auto stripe = [&](size_t t) {
    try {
      for (size_t i = t; i < rows; i += threads) fn(i, row_buffers_[t]);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(threads - 1);
  for (size_t t = 1; t < threads; t++) {
    try {
      helpers.emplace_back(stripe, t);
    } catch (...) {
      stripe(t);  // no thread to be had: do that stripe here
    }
  }
  stripe(0);
  for (auto& h : helpers) h.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

struct DraftSpec {
  int32_t seq, pos, k;
  bool confidence = false;  // also return the draft's softmax probability of each drafted token
  std::vector<int32_t> tokens;
  Sampling sampling;
  std::vector<double> uniforms;
};

struct DraftJob : Job {
  using Job::Job;
  std::vector<DraftSpec> specs;
  int32_t vocab_limit = 0;
  std::vector<std::vector<int32_t>> out_tokens;
  std::vector<std::vector<float>> out_probs;
  std::vector<std::vector<float>> out_conf;

  void Run(Context& c) override {
    const size_t n = specs.size();
    out_tokens.assign(n, {});
    out_probs.assign(n, {});
    out_conf.assign(n, {});
    llama_memory_t mem = llama_get_memory(c.ctx_);
    rows.assign(n, 0);
    for (size_t i = 0; i < n; i++) {
      auto& d = c.drafts_[specs[i].seq];
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
            for (size_t t = 0; t < s.tokens.size(); t++) c.BatchAdd(s.tokens[t], s.pos + (int32_t)t, s.seq, t + 1 == s.tokens.size());
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
        std::vector<const float*> logits(members.size());
        size_t sampled = 0;
        for (size_t x = 0; x < members.size(); x++) {
          logits[x] = llama_get_logits_ith(c.ctx_, rows[members[x]]);
          if (!logits[x]) throw std::runtime_error("llama.cpp returned no logits for a draft row");
          if (!specs[members[x]].sampling.greedy()) sampled++;
        }
        c.ForEachRow(members.size(), sampled >= 4, [&](size_t x, Context::RowBuffers& b) { SampleOne(c, members[x], step, logits[x], b); });
      }
    }
  }

  // Runs on any of ForEachRow's threads: writes only sequence s.seq's drafts and row i's outputs.
  void SampleOne(Context& c, size_t i, int32_t step, const float* logits, Context::RowBuffers& b) {
    const DraftSpec& s = specs[i];
    auto& d = c.drafts_[s.seq];
    int32_t tok;
    float prob = 1.0f;
    if (s.sampling.greedy()) {
      tok = Argmax(logits, vocab_limit);
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
  std::vector<int32_t> rows;  // batch row of each spec's output in the current decode

  Napi::Value Result(Napi::Env env) override {
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
};

struct VerifySpec {
  int32_t seq, pos, pending, draft_seq;
  std::vector<int32_t> draft;
  Sampling sampling;
  std::vector<double> uniforms;  // k + 1
};

struct VerifyJob : Job {
  using Job::Job;
  std::vector<VerifySpec> specs;
  Context* draft_ctx = nullptr;
  Napi::ObjectReference draft_ref;  // keeps the draft context (and its stored q) alive
  std::vector<std::vector<float>> out_p;
  std::vector<std::vector<int32_t>> out_alt;
  std::vector<const SeqDrafts*> q_of;  // per spec: the draft's stored distributions (sampled specs)

  void Run(Context& c) override {
    const size_t n = specs.size();
    out_p.assign(n, {});
    out_alt.assign(n, {});
    q_of.assign(n, nullptr);
    llama_memory_t mem = llama_get_memory(c.ctx_);
    for (auto& s : specs) llama_memory_seq_rm(mem, s.seq, s.pos, -1);
    const std::vector<size_t> order = BySeq(specs);
    size_t j = 0;
    while (j < n) {
      c.BatchClear();
      std::vector<std::pair<size_t, int32_t>> members;  // spec, first row
      for (; j < n; j++) {
        const size_t i = order[j];
        const VerifySpec& s = specs[i];
        const size_t need = s.draft.size() + 1;
        if (need > c.params_.n_batch) throw std::runtime_error("verification of one sequence needs more than n_batch tokens");
        if (c.batch_.n_tokens > 0 && (size_t)c.batch_.n_tokens + need > c.params_.n_batch) break;
        members.emplace_back(i, c.batch_.n_tokens);
        c.BatchAdd(s.pending, s.pos, s.seq, true);
        for (size_t t = 0; t < s.draft.size(); t++) c.BatchAdd(s.draft[t], s.pos + 1 + (int32_t)t, s.seq, true);
      }
      c.DecodeOrThrow("verify");
      Evaluate(c, members);
    }
  }

  struct RowTask {
    size_t si;  // spec
    int32_t r;  // row within the spec: 0..k
    const float* logits;
  };

  void Evaluate(Context& c, const std::vector<std::pair<size_t, int32_t>>& members) {
    // row pointers first, here: llama_get_logits_ith synchronises and may reorder the outputs
    std::vector<RowTask> tasks;
    size_t sampled = 0;
    for (auto& [si, row0] : members) {
      const VerifySpec& s = specs[si];
      const int32_t k = (int32_t)s.draft.size();
      out_p[si].resize(k);
      out_alt[si].resize(k + 1);
      if (!s.sampling.greedy() && k > 0) {
        q_of[si] = &draft_ctx->Drafts(s.draft_seq);
        if (q_of[si]->k < k) throw std::runtime_error("verify: the draft context holds fewer drafted tokens for this sequence than were submitted");
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
  void EvaluateRow(Context& c, const RowTask& t, Context::RowBuffers& b) {
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
      const SeqDrafts* q = q_of[t.si];
      p_out[r] = s.draft[r] < c.n_vocab_ ? b.row[s.draft[r]] : 0.0f;
      const float* qrow = q->dense ? q->dists.data() + (size_t)r * q->n_vocab : nullptr;
      alt[r] = SampleResidual(b.row.data(), c.n_vocab_, qrow, q->n_vocab, q->tokens[r], s.uniforms[r]);
    } else {
      alt[r] = SampleRow(b.row.data(), c.n_vocab_, s.uniforms[r]);
    }
    if (alt[r] < 0) throw std::runtime_error("target distribution has no mass (non-finite logits?)");
  }

  Napi::Value Result(Napi::Env env) override {
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
};

struct KvJob : Job {
  using Job::Job;
  enum Op { Remove, Copy, Keep, Clear, PosRange } op = Remove;
  int32_t seq = 0, seq2 = 0, p0 = -1, p1 = -1;
  bool result_bool = true;
  int32_t pos_min = -1, pos_max = -1;
  void Run(Context& c) override {
    llama_memory_t mem = llama_get_memory(c.ctx_);
    switch (op) {
      case Remove: result_bool = llama_memory_seq_rm(mem, seq, p0, p1); break;
      case Copy: llama_memory_seq_cp(mem, seq, seq2, p0, p1); break;
      case Keep: llama_memory_seq_keep(mem, seq); break;
      case Clear: llama_memory_clear(mem, true); break;
      case PosRange:
        pos_min = llama_memory_seq_pos_min(mem, seq);
        pos_max = llama_memory_seq_pos_max(mem, seq);
        break;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    if (op == Remove) return Napi::Boolean::New(env, result_bool);
    if (op == PosRange) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("min", pos_min);
      o.Set("max", pos_max);
      return o;
    }
    return env.Undefined();
  }
};

// Changes the threads of the next graphs. Queued like any job, so it takes effect between jobs:
// the graphs of the jobs queued before it still run with the previous count.
struct SetThreadsJob : Job {
  using Job::Job;
  int32_t n = 1, n_batch = 1;
  void Run(Context& c) override {
    llama_set_n_threads(c.ctx_, n, n_batch);
    c.UsePool(n > 1 || n_batch > 1);
    c.threads_now_ = n;
    c.threads_batch_now_ = n_batch;
  }
};

// A one-thread graph runs on the worker thread alone, without the pool: attached, the pool's idle
// threads would still wake at every graph (and poll for the next, with poll > 0) on cores that other
// work may need; one thread per context is the placement used exactly when cores are contended.
void Context::UsePool(bool use) {
  if (!threadpool_ || use == pool_attached_) return;
  if (use) llama_attach_threadpool(ctx_, threadpool_, threadpool_);
  else llama_detach_threadpool(ctx_);
  pool_attached_ = use;
}

// --- the class -------------------------------------------------------------------------------

void Context::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function fn = DefineClass(env, "Context",
                                  {
                                      InstanceMethod<&Context::Decode>("decode"),
                                      InstanceMethod<&Context::Prefill>("prefill"),
                                      InstanceMethod<&Context::Draft>("draft"),
                                      InstanceMethod<&Context::Verify>("verify"),
                                      InstanceMethod<&Context::KvRemove>("kvRemove"),
                                      InstanceMethod<&Context::KvCopy>("kvCopy"),
                                      InstanceMethod<&Context::KvKeep>("kvKeep"),
                                      InstanceMethod<&Context::KvClear>("kvClear"),
                                      InstanceMethod<&Context::KvPosRange>("kvPosRange"),
                                      InstanceMethod<&Context::SetThreads>("setThreads"),
                                      InstanceMethod<&Context::Dispose>("dispose"),
                                      InstanceMethod<&Context::GetInfo>("info"),
                                  });
  AddonData::Of(env)->context_ctor = Napi::Persistent(fn);
  exports.Set("Context", fn);
  exports.Set("createContext", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                Napi::Env env = info.Env();
                Napi::Object obj = AddonData::Of(env)->context_ctor.New({info[0], info.Length() > 1 ? info[1] : env.Undefined()});
                Context* c = Context::Unwrap(obj);
                auto job = std::make_unique<InitJob>(env);
                job->self = Napi::Persistent(obj);
                return c->Enqueue(env, std::move(job));
              }, "createContext"));
}

// new Context(model, options): prefer createContext(), which also waits for the llama.cpp context.
Context::Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "createContext(model, options): model must be a Model");
  Napi::Object mobj = info[0].As<Napi::Object>();
  if (!mobj.InstanceOf(AddonData::Of(env)->model_ctor.Value())) throw Napi::TypeError::New(env, "createContext(model, options): model must be a Model");
  llama_model_ = Model::Unwrap(mobj)->Shared(env);  // throws if disposed
  n_vocab_ = llama_vocab_n_tokens(llama_model_get_vocab(llama_model_.get()));

  params_ = llama_context_default_params();
  params_.no_perf = true;
  Napi::Object o = info.Length() > 1 && !info[1].IsUndefined() ? ObjectArg(info[1], "options") : Napi::Object::New(env);
  params_.n_ctx = (uint32_t)IntField(o, "nCtx", 16, 1 << 22, 4096);
  params_.n_seq_max = (uint32_t)IntField(o, "nSeqMax", 1, 256, 1);
  params_.n_batch = (uint32_t)IntField(o, "nBatch", 1, 1 << 16, 512);
  params_.n_ubatch = (uint32_t)IntField(o, "nUbatch", 1, params_.n_batch, params_.n_batch);
  params_.n_threads = (int32_t)IntField(o, "threads", 1, 1024, 1);
  params_.n_threads_batch = (int32_t)IntField(o, "threadsBatch", 1, 1024, params_.n_threads);
  params_.kv_unified = BoolField(o, "kvUnified", false);
  Napi::Value fa = o.Get("flashAttention");
  if (!fa.IsUndefined()) {
    std::string s = StringArg(fa, "flashAttention");
    if (s == "auto") params_.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
    else if (s == "on") params_.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    else if (s == "off") params_.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else throw Napi::RangeError::New(env, "flashAttention must be 'auto', 'on' or 'off'");
  }
  use_threadpool_ = BoolField(o, "threadpool", false);
  spin_us_ = IntField(o, "spinMicros", 0, 100000, 0);
  row_threads_ = (int32_t)IntField(o, "rowThreads", 0, 512, 0);
  poll_ = (int32_t)IntField(o, "threadpoolPoll", 0, 100, 0);
  threads_max_ = (int32_t)IntField(o, "threadsMax", 1, 1024, std::max(params_.n_threads, params_.n_threads_batch));
  if (threads_max_ < std::max(params_.n_threads, params_.n_threads_batch)) throw Napi::RangeError::New(env, "threadsMax must be at least threads and threadsBatch");
  threads_now_ = params_.n_threads;
  threads_batch_now_ = params_.n_threads_batch;
  if (params_.n_ctx < params_.n_seq_max) throw Napi::RangeError::New(env, "nCtx must be at least nSeqMax");
  drafts_.resize(params_.n_seq_max);

  // The finalizer tells the destructor that Node already tore the function down (at exit).
  // The flag is shared so the finalizer stays safe even if it runs after this object is gone.
  tsfn_ = Tsfn::New(env, "minedraft.context", 0, 1, this,
                    [](Napi::Env, std::shared_ptr<bool>* gone, Context*) {
                      **gone = true;
                      delete gone;
                    },
                    new std::shared_ptr<bool>(tsfn_gone_));
  tsfn_.Unref(env);  // an idle context must not keep the process alive
  thread_ = std::thread([this] { WorkerLoop(); });
}

Context::~Context() {
  // Finalized without dispose(): pending jobs hold a reference to this object, so the worker is idle.
  StopThread();
  if (ctx_) llama_free(ctx_);
  if (batch_.token) llama_batch_free(batch_);
  if (threadpool_) {
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
    auto tp_free = reg ? (decltype(&ggml_threadpool_free))ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free") : nullptr;
    if (tp_free) tp_free(threadpool_);
  }
  llama_model_.reset();
  if (!*tsfn_gone_) {
    *tsfn_gone_ = true;
    tsfn_.Release();
  }
}

void Context::StopThread() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Waking a sleeping worker costs the JS thread a futex syscall and the job the wake-up latency: in
// a 2-vCPU VM a trivial job's round trip with the worker asleep took 8-35 us when the kernel woke it
// on the JS thread's core and 100-160 us when not (a third of the rounds), 4-37 us with the worker
// spinning (scripts/step-overhead.mjs; docs/performance.md 5.4). When the JS thread answered the previous job
// quickly (plain decoding: the next token's job follows the last one's result within ~100 us), the
// worker spins for the next job, yielding the core on every turn, for at most spin_us_; after a
// longer gap (it waited on the other worker) it sleeps at once, so a schedule that alternates the
// two models never spins beside the one that computes.
void Context::WorkerLoop() {
  using Clock = std::chrono::steady_clock;
  const auto budget = std::chrono::microseconds(spin_us_);
  Clock::time_point done{};
  bool spin = false;
  for (;;) {
    if (spin) {
      const Clock::time_point until = Clock::now() + budget;
      while (!has_work_.load(std::memory_order_acquire) && Clock::now() < until) std::this_thread::yield();
    }
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      has_work_.store(!queue_.empty(), std::memory_order_relaxed);
    }
    // the gap the JS thread took to send this job after the last one finished (0 while jobs queue up)
    spin = spin_us_ > 0 && done != Clock::time_point{} && job->enqueued - done <= budget;
    try {
      job->Run(*this);
      job->ok = true;
    } catch (const std::exception& e) {
      job->error = e.what();
    } catch (...) {
      job->error = "unknown native error";
    }
    // If the environment is shutting down the call fails and the job is dropped without running
    // its JS-side destructors (they may only run on the JS thread); the process is exiting.
    Job* raw = job.release();
    done = Clock::now();
    if (tsfn_.BlockingCall(raw) != napi_ok) (void)raw;
  }
}

void Context::CallJs(Napi::Env env, Napi::Function, Context* self, Job* job) {
  if (env == nullptr) return;  // teardown: see WorkerLoop
  self->Complete(env, job);
}

void Context::Complete(Napi::Env env, Job* raw) {
  std::unique_ptr<Job> job(raw);
  Napi::HandleScope scope(env);
  const bool is_init = dynamic_cast<InitJob*>(job.get()) != nullptr;
  const bool is_dispose = dynamic_cast<DisposeJob*>(job.get()) != nullptr;
  if (is_init) {
    if (job->ok) ready_ = true;
    else closing_ = true;  // nothing will ever run on a context that failed to initialise
  }
  const bool finished = is_dispose || (is_init && !job->ok);
  if (finished) {
    StopThread();
    llama_model_.reset();  // the weights are freed with the last owner (model or context)
  }
  try {
    if (job->ok) job->deferred->Resolve(job->Result(env));
    else job->deferred->Reject(Napi::Error::New(env, job->error).Value());
  } catch (const Napi::Error& e) {
    job->deferred->Reject(e.Value());
  }
  job.reset();
  if (--pending_ == 0) {
    tsfn_.Unref(env);
    Unref();
  }
  if (finished && !*tsfn_gone_) {
    *tsfn_gone_ = true;  // the worker has exited: nothing will call into JS again
    tsfn_.Release();
  }
}

Napi::Promise Context::Enqueue(Napi::Env env, std::unique_ptr<Job> job) {
  // Argument getters run JS, which may have called dispose() after CheckUsable(): only the dispose job itself
  // may be queued behind a dispose.
  if (closing_ && dynamic_cast<DisposeJob*>(job.get()) == nullptr) throw Napi::Error::New(env, "Context is disposed");
  job->deferred.emplace(Napi::Promise::Deferred::New(env));
  Napi::Promise p = job->deferred->Promise();
  if (pending_++ == 0) {
    tsfn_.Ref(env);
    Ref();  // keep this object (and its worker) alive until the job completes
  }
  job->enqueued = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(std::move(job));
    has_work_.store(true, std::memory_order_release);
  }
  cv_.notify_one();  // no syscall while the worker spins (nobody waits on the variable)
  return p;
}

void Context::CheckUsable(Napi::Env env) const {
  if (closing_) throw Napi::Error::New(env, "Context is disposed");
  if (!ready_) throw Napi::Error::New(env, "Context is not ready: create it with createContext()");
}

int32_t Context::SeqArg(const Napi::Value& v, const char* name) const {
  return (int32_t)IntArg(v, name, 0, (int64_t)params_.n_seq_max - 1);
}

void Context::BatchAdd(llama_token t, llama_pos p, llama_seq_id s, bool logits) {
  const int32_t i = batch_.n_tokens++;
  batch_.token[i] = t;
  batch_.pos[i] = p;
  batch_.n_seq_id[i] = 1;
  batch_.seq_id[i][0] = s;
  batch_.logits[i] = logits ? 1 : 0;
}

void Context::DecodeOrThrow(const char* what) {
  if (batch_.n_tokens == 0) return;
  const int32_t rc = llama_decode(ctx_, batch_);
  if (rc == 0) return;
  std::string msg = std::string(what) + ": llama_decode failed (";
  if (rc == 1) msg += "no KV cache slot: the context is full";
  else if (rc == 2) msg += "aborted";
  else msg += "error " + std::to_string(rc);
  std::string why = TakeRecentLog();
  throw std::runtime_error(msg + ")" + (why.empty() ? "" : ": " + why));
}

static std::vector<int32_t> IntVector(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  Napi::Env env = v.Env();
  std::vector<int32_t> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    for (int32_t x : out) {
      if (x < lo || x > hi) throw Napi::RangeError::New(env, std::string(name) + ": value " + std::to_string(x) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  } else if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    if (a.Length() > (1u << 25)) throw Napi::RangeError::New(env, std::string(name) + " is too long");
    out.resize(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) out[i] = (int32_t)IntArg(a.Get(i), name, lo, hi);
  } else {
    throw Napi::TypeError::New(env, std::string(name) + " must be an Int32Array or an array of integers");
  }
  return out;
}

static std::vector<double> UniformVector(const Napi::Value& v, const char* name, size_t need) {
  Napi::Env env = v.Env();
  std::vector<double> out;
  if (v.IsUndefined()) {
    out.assign(need, 0.5);  // only reached for greedy specs, which ignore them
    return out;
  }
  if (!v.IsArray() && !v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array of numbers in [0, 1)");
  Napi::Object a = v.As<Napi::Object>();
  uint32_t len = a.Get("length").As<Napi::Number>().Uint32Value();
  if (len < need) throw Napi::RangeError::New(env, std::string(name) + " needs " + std::to_string(need) + " values, got " + std::to_string(len));
  out.resize(need);
  for (uint32_t i = 0; i < need; i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must hold numbers");
    double d = x.As<Napi::Number>().DoubleValue();
    if (!(d >= 0.0 && d < 1.0)) throw Napi::RangeError::New(env, std::string(name) + " values must be in [0, 1)");
    out[i] = d;
  }
  return out;
}

static Sampling SamplingArg(const Napi::Value& v) {
  Sampling s;
  if (v.IsUndefined()) return s;
  Napi::Object o = ObjectArg(v, "sampling");
  s.temperature = (float)NumberField(o, "temperature", 0.0, 1e6, 0.0);
  s.top_k = (int32_t)IntField(o, "topK", 0, INT32_MAX, 0);
  s.top_p = (float)NumberField(o, "topP", 1e-9, 1.0, 1.0);
  return s;
}

Napi::Value Context::Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  Napi::Object b = ObjectArg(info[0], "batch");
  auto job = std::make_unique<DecodeJob>(env);
  job->tokens = IntVector(b.Get("tokens"), "batch.tokens", 0, n_vocab_ - 1);
  const size_t n = job->tokens.size();
  if (n == 0) throw Napi::RangeError::New(env, "batch.tokens is empty");
  if (n > params_.n_batch) throw Napi::RangeError::New(env, "batch has " + std::to_string(n) + " tokens, more than nBatch (" + std::to_string(params_.n_batch) + ")");
  job->pos = IntVector(b.Get("pos"), "batch.pos", 0, (int64_t)params_.n_ctx - 1);
  job->seq = IntVector(b.Get("seq"), "batch.seq", 0, (int64_t)params_.n_seq_max - 1);
  Napi::Value lv = b.Get("logits");
  if (lv.IsUndefined()) {
    job->want.assign(n, 0);
    job->want[n - 1] = 1;
  } else {
    std::vector<int32_t> w = IntVector(lv, "batch.logits", 0, 1);
    job->want.assign(w.begin(), w.end());
  }
  if (job->pos.size() != n || job->seq.size() != n || job->want.size() != n) throw Napi::RangeError::New(env, "batch.tokens, batch.pos, batch.seq and batch.logits must have the same length");
  for (uint8_t w : job->want) job->n_out += w;
  return Enqueue(env, std::move(job));
}

Napi::Value Context::Prefill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<PrefillJob>(env);
  job->seq = SeqArg(info[0], "seq");
  job->pos = (int32_t)IntArg(info[1], "pos", 0, n_ctx_seq_ > 0 ? n_ctx_seq_ : params_.n_ctx);
  job->tokens = IntVector(info[2], "tokens", 0, n_vocab_ - 1);
  if (n_ctx_seq_ > 0 && job->pos + (int64_t)job->tokens.size() > n_ctx_seq_) {
    throw Napi::RangeError::New(env, "prefill of " + std::to_string(job->tokens.size()) + " tokens at position " + std::to_string(job->pos) + " exceeds the sequence's context (" + std::to_string(n_ctx_seq_) + ")");
  }
  return Enqueue(env, std::move(job));
}

Napi::Value Context::Draft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "draft(specs, vocabLimit?): specs must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  auto job = std::make_unique<DraftJob>(env);
  job->vocab_limit = info.Length() > 1 && !info[1].IsUndefined() ? (int32_t)IntArg(info[1], "vocabLimit", 1, n_vocab_) : n_vocab_;
  std::vector<bool> seen(params_.n_seq_max, false);
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object o = ObjectArg(arr.Get(i), "draft spec");
    DraftSpec s;
    s.seq = SeqArg(o.Get("seq"), "spec.seq");
    if (seen[s.seq]) throw Napi::RangeError::New(env, "draft: sequence " + std::to_string(s.seq) + " appears twice");
    seen[s.seq] = true;
    s.pos = (int32_t)IntArg(o.Get("pos"), "spec.pos", 0, n_ctx_seq_);
    s.tokens = IntVector(o.Get("tokens"), "spec.tokens", 0, n_vocab_ - 1);
    if (s.tokens.empty()) throw Napi::RangeError::New(env, "spec.tokens must hold at least one pending token");
    s.k = (int32_t)IntArg(o.Get("k"), "spec.k", 1, 256);
    if (s.tokens.size() + s.k - 1 > params_.n_batch) throw Napi::RangeError::New(env, "spec needs more tokens than nBatch");
    if ((int64_t)s.pos + (int64_t)s.tokens.size() + s.k - 1 > n_ctx_seq_) throw Napi::RangeError::New(env, "draft would run past the sequence's context (" + std::to_string(n_ctx_seq_) + ")");
    s.sampling = SamplingArg(o.Get("sampling"));
    s.uniforms = UniformVector(s.sampling.greedy() ? Napi::Value(env.Undefined()) : o.Get("uniforms"), "spec.uniforms", s.k);
    Napi::Value cv = o.Get("confidence");
    s.confidence = !cv.IsUndefined() && !cv.IsNull() && cv.ToBoolean().Value();
    job->specs.push_back(std::move(s));
  }
  return Enqueue(env, std::move(job));
}

Napi::Value Context::Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "verify(specs, draftContext?): specs must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  auto job = std::make_unique<VerifyJob>(env);
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    Napi::Object d = ObjectArg(info[1], "draftContext");
    if (!d.InstanceOf(AddonData::Of(env)->context_ctor.Value())) throw Napi::TypeError::New(env, "draftContext must be a Context");
    job->draft_ctx = Context::Unwrap(d);
    job->draft_ref = Napi::Persistent(d);
  }
  std::vector<bool> seen(params_.n_seq_max, false);
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object o = ObjectArg(arr.Get(i), "verify spec");
    VerifySpec s;
    s.seq = SeqArg(o.Get("seq"), "spec.seq");
    if (seen[s.seq]) throw Napi::RangeError::New(env, "verify: sequence " + std::to_string(s.seq) + " appears twice");
    seen[s.seq] = true;
    s.pos = (int32_t)IntArg(o.Get("pos"), "spec.pos", 0, n_ctx_seq_ - 1);
    s.pending = (int32_t)IntArg(o.Get("pending"), "spec.pending", 0, n_vocab_ - 1);
    s.draft = IntVector(o.Get("draft"), "spec.draft", 0, INT32_MAX);
    if ((int64_t)s.pos + (int64_t)s.draft.size() >= n_ctx_seq_) throw Napi::RangeError::New(env, "verify would run past the sequence's context (" + std::to_string(n_ctx_seq_) + ")");
    s.sampling = SamplingArg(o.Get("sampling"));
    s.draft_seq = s.draft.empty() ? 0 : (int32_t)IntArg(o.Get("draftSeq").IsUndefined() ? o.Get("seq") : o.Get("draftSeq"), "spec.draftSeq", 0, INT32_MAX);
    if (!s.sampling.greedy() && !s.draft.empty()) {
      if (!job->draft_ctx) throw Napi::TypeError::New(env, "stochastic verification needs the draft context (it holds the draft distributions)");
      if (s.draft_seq >= (int32_t)job->draft_ctx->params_.n_seq_max) throw Napi::RangeError::New(env, "spec.draftSeq is outside the draft context's sequences");
    }
    s.uniforms = UniformVector(s.sampling.greedy() ? Napi::Value(env.Undefined()) : o.Get("uniforms"), "spec.uniforms", s.draft.size() + 1);
    job->specs.push_back(std::move(s));
  }
  return Enqueue(env, std::move(job));
}

Napi::Value Context::KvRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<KvJob>(env);
  job->op = KvJob::Remove;
  job->seq = (int32_t)IntArg(info[0], "seq", -1, (int64_t)params_.n_seq_max - 1);
  job->p0 = info.Length() > 1 && !info[1].IsUndefined() ? (int32_t)IntArg(info[1], "p0", -1, INT32_MAX) : -1;
  job->p1 = info.Length() > 2 && !info[2].IsUndefined() ? (int32_t)IntArg(info[2], "p1", -1, INT32_MAX) : -1;
  return Enqueue(env, std::move(job));
}

Napi::Value Context::KvCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<KvJob>(env);
  job->op = KvJob::Copy;
  job->seq = SeqArg(info[0], "src");
  job->seq2 = SeqArg(info[1], "dst");
  job->p0 = info.Length() > 2 && !info[2].IsUndefined() ? (int32_t)IntArg(info[2], "p0", -1, INT32_MAX) : -1;
  job->p1 = info.Length() > 3 && !info[3].IsUndefined() ? (int32_t)IntArg(info[3], "p1", -1, INT32_MAX) : -1;
  // llama.cpp copies between the KV streams of two sequences only as a whole (GGML_ASSERT in seq_cp)
  if (!params_.kv_unified && job->seq != job->seq2 && (job->p0 > 0 || job->p1 > 0)) {
    throw Napi::RangeError::New(env, "kvCopy: with one KV stream per sequence, only whole sequences can be copied (p0 = p1 = -1)");
  }
  return Enqueue(env, std::move(job));
}

Napi::Value Context::KvKeep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<KvJob>(env);
  job->op = KvJob::Keep;
  job->seq = SeqArg(info[0], "seq");
  return Enqueue(env, std::move(job));
}

Napi::Value Context::KvClear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<KvJob>(env);
  job->op = KvJob::Clear;
  return Enqueue(env, std::move(job));
}

Napi::Value Context::KvPosRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<KvJob>(env);
  job->op = KvJob::PosRange;
  job->seq = SeqArg(info[0], "seq");
  return Enqueue(env, std::move(job));
}

// setThreads(n, nBatch = n): threads of the graphs of the jobs queued after this one, 1..threadsMax.
Napi::Value Context::SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<SetThreadsJob>(env);
  job->n = (int32_t)IntArg(info[0], "threads", 1, threads_max_);
  job->n_batch = info.Length() > 1 && !info[1].IsUndefined() ? (int32_t)IntArg(info[1], "threadsBatch", 1, threads_max_) : job->n;
  return Enqueue(env, std::move(job));
}

Napi::Value Context::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closing_) {
    // double dispose: resolves once the first one is done (or at once)
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  closing_ = true;
  return Enqueue(env, std::make_unique<DisposeJob>(env));
}

Napi::Value Context::GetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("nCtx", params_.n_ctx);
  o.Set("nCtxSeq", n_ctx_seq_);
  o.Set("nSeqMax", params_.n_seq_max);
  o.Set("nBatch", params_.n_batch);
  o.Set("threads", threads_now_.load());
  o.Set("threadsBatch", threads_batch_now_.load());
  o.Set("threadsMax", threads_max_);
  o.Set("rowThreads", row_threads_);
  o.Set("kvUnified", params_.kv_unified);
  o.Set("nVocab", n_vocab_);
  o.Set("threadpool", use_threadpool_);
  o.Set("disposed", closing_);
  return o;
}

}  // namespace md
