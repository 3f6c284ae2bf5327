// The jobs a Context runs on its worker thread. Each is made and filled (arguments checked) on the JS
// thread by bindings.cc, queued by worker.cc, Run() on the worker, and turned into the promise's value
// by Result() back on the JS thread. Where each job's Run/Result live: see context.h.
#pragma once
#include <llama.h>
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../sampling.h"
#include "context.h"

namespace md {

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

// --- lifecycle.cc ------------------------------------------------------------------------------

// Creates the llama.cpp context (and the ggml threadpool) on the worker: the first job of every Context.
struct InitJob : Job {
  using Job::Job;
  Napi::ObjectReference self;
  void Run(Context& c) override;
  Napi::Value Result(Napi::Env env) override { return self.Value(); }
};

// Frees what InitJob made; the last job of a Context.
struct DisposeJob : Job {
  using Job::Job;
  void Run(Context& c) override;
};

// Changes the threads of the next graphs. Queued like any job, so it takes effect between jobs:
// the graphs of the jobs queued before it still run with the previous count.
struct SetThreadsJob : Job {
  using Job::Job;
  int32_t n = 1, n_batch = 1;
  void Run(Context& c) override;
};

// --- decode_jobs.cc ----------------------------------------------------------------------------

struct DecodeJob : Job {
  using Job::Job;
  std::vector<int32_t> tokens, pos, seq;
  std::vector<uint8_t> want;
  std::vector<float> out;  // n_out x n_vocab
  size_t n_out = 0;
  void Run(Context& c) override;
  Napi::Value Result(Napi::Env env) override;
};

struct PrefillSpec {
  int32_t seq = 0, pos = 0;
  std::vector<int32_t> tokens;
};

// One or more sequences' prompts: their tokens packed into batches of up to n_batch, so several
// admitted requests cost one forward pass per batch instead of one per request.
struct PrefillJob : Job {
  using Job::Job;
  std::vector<PrefillSpec> specs;
  void Run(Context& c) override;
};

// --- kv_job.cc ---------------------------------------------------------------------------------

struct KvJob : Job {
  using Job::Job;
  enum Op { Remove, Copy, Keep, Clear, PosRange } op = Remove;
  int32_t seq = 0, seq2 = 0, p0 = -1, p1 = -1;
  bool result_bool = true;
  int32_t pos_min = -1, pos_max = -1;
  void Run(Context& c) override;
  Napi::Value Result(Napi::Env env) override;
};

// --- batch packing (draft_job.cc, verify_job.cc) -----------------------------------------------

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

// --- draft_job.cc ------------------------------------------------------------------------------

struct DraftSpec {
  int32_t seq, pos, k;
  bool confidence = false;  // also return the draft's softmax probability of each drafted token
  int32_t q_bank = 0;       // which of the sequence's two q banks stores this call's rows (Context::Drafts)
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
  std::vector<int32_t> rows;       // batch row of each spec's output in the current decode
  std::vector<uint8_t> on_device;  // per spec: its argmax comes from the device (Context::ArgmaxOnDevice)

  void Run(Context& c) override;
  // Runs on any of ForEachRow's threads: writes only sequence s.seq's drafts and row i's outputs.
  void SampleOne(Context& c, size_t i, int32_t step, const float* logits, int32_t argmax, Context::RowBuffers& b);
  Napi::Value Result(Napi::Env env) override;
};

// --- verify_job.cc -----------------------------------------------------------------------------

struct VerifySpec {
  int32_t seq, pos, pending, draft_seq;
  std::vector<int32_t> draft;
  Sampling sampling;
  std::vector<double> uniforms;  // k + 1
  int32_t q_bank = 0;            // the draft context's q bank holding draft's distributions
  int32_t q_row = 0;             // draft[i]'s q is that bank's row q_row + i
  bool onehot = false;           // q is one-hot at each draft token (no draft context: prompt lookup)
};

struct VerifyJob : Job {
  using Job::Job;
  std::vector<VerifySpec> specs;
  Context* draft_ctx = nullptr;
  Napi::ObjectReference draft_ref;  // keeps the draft context (and its stored q) alive
  std::vector<std::vector<float>> out_p;
  std::vector<std::vector<int32_t>> out_alt;
  std::vector<const SeqDrafts*> q_of;  // per spec: the draft's stored distributions (sampled specs)
  std::vector<uint8_t> on_device;      // per spec: its rows' argmax comes from the device (greedy)

  struct RowTask {
    size_t si;  // spec
    int32_t r;  // row within the spec: 0..k
    const float* logits;
  };

  void Run(Context& c) override;
  void Evaluate(Context& c, const std::vector<std::pair<size_t, int32_t>>& members);
  // Runs on any of ForEachRow's threads: writes only its row's entries of out_p / out_alt.
  void EvaluateRow(Context& c, const RowTask& t, Context::RowBuffers& b);
  Napi::Value Result(Napi::Env env) override;
};

}  // namespace md
