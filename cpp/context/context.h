// Context: one llama_context driven by its own native worker thread. Every JS call enqueues a job
// and returns a Promise; jobs run in order on the worker, so two contexts (draft and target) run
// truly concurrently and the JS event loop never waits on model work.
//
// The class is spread over this folder, one concern per file:
//   bindings.cc     the JS class: constructor options, methods, argument checks (JS thread)
//   worker.cc       the job queue, the worker thread and the thread-safe function back to JS
//   jobs.h          the jobs (what runs on the worker); their Run/Result in:
//   lifecycle.cc      init, dispose, setThreads: the llama.cpp context and ggml threadpool it owns
//   decode_jobs.cc    decode and prefill (plain forward passes)
//   kv_job.cc         KV-cache operations
//   draft_job.cc      drafting: batch packing, draft rows sampled (and their q kept for verify)
//   verify_job.cc     verification: batch packing, target rows evaluated against the drafts
//   batch.cc        the llama_batch helpers the jobs share
//   device_argmax.cc greedy rows' argmax where the logits are (llama.cpp backend sampling)
//   row_pool.{h,cc} the persistent helper threads that evaluate sampled rows (ForEachRow, below)
#pragma once
#include <llama.h>
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../sampling.h"
#include "row_pool.h"

namespace md {

class Model;

// What a draft pass leaves behind for stochastic verification: per sequence, the k drafted
// tokens and (when the draft sampled) the dense filtered distributions q_0..q_{k-1}.
// Written only by the draft worker for the sequences it drafts, read by the target worker for
// other sequences; the engine never drafts and verifies one sequence at once, and the JS thread
// orders the two (promise resolution), so no lock is needed.
struct SeqDrafts {
  int32_t k = 0;
  int32_t n_vocab = 0;  // row length of dists
  bool dense = false;   // false: q is one-hot at tokens[i] (greedy draft)
  std::vector<int32_t> tokens;
  std::vector<float> dists;  // k x n_vocab when dense
};

class Context : public Napi::ObjectWrap<Context> {
 public:
  struct Job;
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Context(const Napi::CallbackInfo& info);
  ~Context() override;

  // Two q banks per sequence (bank * n_seq_max + seq): a draft job may store the next round's q in one
  // while the target's verify job reads the current round's from the other (single-sequence overlap).
  const SeqDrafts& Drafts(int32_t seq, int32_t bank) const { return drafts_[(size_t)bank * params_.n_seq_max + seq]; }

 private:
  static void CallJs(Napi::Env env, Napi::Function, Context* self, Job* job);
  using Tsfn = Napi::TypedThreadSafeFunction<Context, Job, &Context::CallJs>;

  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value Prefill(const Napi::CallbackInfo& info);
  Napi::Value Draft(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value KvRemove(const Napi::CallbackInfo& info);
  Napi::Value KvCopy(const Napi::CallbackInfo& info);
  Napi::Value KvKeep(const Napi::CallbackInfo& info);
  Napi::Value KvClear(const Napi::CallbackInfo& info);
  Napi::Value KvPosRange(const Napi::CallbackInfo& info);
  Napi::Value SetThreads(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);

  // worker.cc
  Napi::Promise Enqueue(Napi::Env env, std::unique_ptr<Job> job);
  void StartWorker(Napi::Env env);
  void WorkerLoop();
  void Complete(Napi::Env env, Job* job);
  void StopThread();

  // bindings.cc
  void CheckUsable(Napi::Env env) const;
  int32_t SeqArg(const Napi::Value& v, const char* name) const;

  // device_argmax.cc (worker thread): whether sequence seq's output rows now bring back only their argmax token,
  // computed where the logits are, instead of n_vocab floats; want = false detaches it (a job that needs logits)
  bool ArgmaxOnDevice(llama_seq_id seq, bool want);
  void FreeDeviceArgmax();

  // worker-thread helpers (batch.cc)
  void DecodeOrThrow(const char* what);
  void BatchClear() { batch_.n_tokens = 0; }
  void BatchAdd(llama_token t, llama_pos p, llama_seq_id s, bool logits);

  // creation parameters (immutable after the constructor)
  llama_context_params params_{};
  bool use_threadpool_ = false;
  // ggml's polling level of the threadpool (ggml_threadpool_params.poll)
  int32_t poll_ = 0;
  // set when llama.cpp threw out of a decode (an RPC server lost mid-run): its state is unknown after that,
  // so every later decode fails with this reason instead of running on it (worker thread only)
  std::string unusable_;
  // the most threads setThreads() may ask for; the threadpool is created with this many
  int32_t threads_max_ = 1;
  int32_t n_ctx_seq_ = 0;
  int32_t n_vocab_ = 0;

  // deviceArgmax option: greedy rows use llama.cpp's backend sampling (a greedy chain per sequence), which skips the
  // logits copy when every output row of a pass has one; for a model on an RPC device that copy is most of a pass's
  // traffic (n_vocab floats per row)
  bool device_argmax_ = false;
  std::vector<llama_sampler*> seq_argmax_;  // per sequence: its attached chain, or null (worker thread)

  // owned by the worker thread once the init job ran
  llama_context* ctx_ = nullptr;
  struct ggml_threadpool* threadpool_ = nullptr;
  // whether threadpool_ is attached to ctx_: a one-thread placement runs without it (SetThreadsJob)
  bool pool_attached_ = false;
  llama_batch batch_{};
  std::vector<SeqDrafts> drafts_;
  // per-row sampling buffers, one set per thread that evaluates rows (ForEachRow)
  struct RowBuffers {
    std::vector<float> row;
    std::vector<int32_t> scratch;
  };
  std::vector<RowBuffers> row_buffers_;
  // helper threads for sampled rows: started by the first job that spreads its rows, stopped by
  // dispose (DisposeJob) or the destructor
  RowPool row_pool_;
  // fn(i, buffers) for rows 0..rows-1, spread over this context's row threads when `spread` (below)
  template <class Fn>
  void ForEachRow(size_t rows, bool spread, Fn&& fn);
  // attaches or detaches threadpool_ (worker thread only; lifecycle.cc)
  void UsePool(bool use);
  // threads the next graphs use (set by the worker, read by info() on the JS thread)
  std::atomic<int32_t> threads_now_{1};
  std::atomic<int32_t> threads_batch_now_{1};

  // shared with the Model: weights live while any context uses them
  std::shared_ptr<llama_model> llama_model_;

  // JS-thread state
  Tsfn tsfn_;
  std::shared_ptr<bool> tsfn_gone_ = std::make_shared<bool>(false);  // released by us, or finalized by Node at exit
  int pending_ = 0;
  bool closing_ = false;  // dispose() called or init failed: no new jobs
  bool ready_ = false;    // init job succeeded

  // queue
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stop_ = false;
  // Spinning for the next job (WorkerLoop): the budget in microseconds (0 = always sleep), and a
  // lock-free hint that the queue is not empty.
  int64_t spin_us_ = 0;
  // threads for a job's sampled rows: 0 = as many as the context decodes with (threads_now_)
  int32_t row_threads_ = 0;
  std::atomic<bool> has_work_{false};

  friend struct InitJob;
  friend struct DisposeJob;
  friend struct DecodeJob;
  friend struct PrefillJob;
  friend struct DraftJob;
  friend struct VerifyJob;
  friend struct KvJob;
  friend struct SetThreadsJob;
};

// The vocabulary-wide work per output row runs after the decode, on the worker, while the graph's
// other threads wait: a sampled row costs 0.3-1.3 ms at 32k tokens (filtered softmax, residual
// sample), so 8 requests x 5 rows take longer than a short step's decode. Sampled rows are spread
// over as many threads as the context decodes with (its share of the cores), or rowThreads (a model
// on a GPU decodes with one CPU thread); greedy rows (an argmax, ~10 us) stay on the worker.
// fn(i, buffers) must touch only row i's outputs. Worker thread only.
template <class Fn>
void Context::ForEachRow(size_t rows, bool spread, Fn&& fn) {
  const int32_t want = row_threads_ > 0 ? row_threads_ : threads_now_.load();
  const size_t threads = spread ? std::max<size_t>(1, std::min<size_t>((size_t)std::max(1, want), rows / 2)) : 1;
  if (row_buffers_.size() < threads) row_buffers_.resize(threads);
  if (threads == 1) {
    for (size_t i = 0; i < rows; i++) fn(i, row_buffers_[0]);
    return;
  }
  row_pool_.Reserve(threads - 1);
  row_pool_.Run(threads, [&](size_t t) {
    for (size_t i = t; i < rows; i += threads) fn(i, row_buffers_[t]);
  });
}

}  // namespace md
