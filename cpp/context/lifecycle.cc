// What a Context owns on the worker side and when: the llama.cpp context and ggml threadpool made by
// the init job, the threads switched by setThreads, and everything freed by dispose or the destructor.
#include <ggml-backend.h>
#include <ggml-cpu.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "../common.h"
#include "context.h"
#include "jobs.h"

namespace md {

namespace {
// The threadpool functions live in the dynamically loaded CPU backend.
template <class F>
F CpuProc(const char* name) {
  ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
  return reg ? (F)ggml_backend_reg_get_proc_address(reg, name) : nullptr;
}

void FreeThreadpool(ggml_threadpool* tp) {
  auto tp_free = CpuProc<decltype(&ggml_threadpool_free)>("ggml_threadpool_free");
  if (tp_free) tp_free(tp);
}
}  // namespace

void InitJob::Run(Context& c) {
  TakeRecentLog();
  c.ctx_ = llama_init_from_model(c.llama_model_.get(), c.params_);
  if (!c.ctx_) {
    std::string why = TakeRecentLog();
    throw std::runtime_error("failed to create the llama.cpp context" + (why.empty() ? std::string() : ": " + why));
  }
  if (c.use_threadpool_) {
    auto tp_new = CpuProc<decltype(&ggml_threadpool_new)>("ggml_threadpool_new");
    if (tp_new) {
      // Sized for the most threads setThreads() may ask for: a graph planned for fewer threads
      // kicks off only workers 0..n-1 (ggml_graph_compute_kickoff / thread_ready in ggml-cpu.c);
      // the others see no pending work and go back to sleep on the pool's condition variable.
      ggml_threadpool_params tpp = ggml_threadpool_params_default(
          std::max(c.threads_max_, std::max(c.params_.n_threads, c.params_.n_threads_batch)));
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

void DisposeJob::Run(Context& c) {
  c.row_pool_.Stop();
  if (c.ctx_) {
    llama_free(c.ctx_);
    c.ctx_ = nullptr;
  }
  c.FreeDeviceArgmax();
  if (c.threadpool_) {
    FreeThreadpool(c.threadpool_);
    c.threadpool_ = nullptr;
  }
  if (c.batch_.token) {
    llama_batch_free(c.batch_);
    c.batch_ = llama_batch{};
  }
  // drafts_ stays: a target worker may still read it; the destructor frees it.
}

void SetThreadsJob::Run(Context& c) {
  llama_set_n_threads(c.ctx_, n, n_batch);
  c.UsePool(n > 1 || n_batch > 1);
  c.threads_now_ = n;
  c.threads_batch_now_ = n_batch;
}

// A one-thread graph runs on the worker thread alone, without the pool: attached, the pool's idle
// threads would still wake at every graph (and poll for the next, with poll > 0) on cores that other
// work may need; one thread per context is the placement used exactly when cores are contended.
void Context::UsePool(bool use) {
  if (!threadpool_ || use == pool_attached_) return;
  if (use)
    llama_attach_threadpool(ctx_, threadpool_, threadpool_);
  else
    llama_detach_threadpool(ctx_);
  pool_attached_ = use;
}

Context::~Context() {
  // Finalized without dispose(): pending jobs hold a reference to this object, so the worker is idle.
  StopThread();
  row_pool_.Stop();
  if (ctx_) llama_free(ctx_);
  FreeDeviceArgmax();
  if (batch_.token) llama_batch_free(batch_);
  if (threadpool_) FreeThreadpool(threadpool_);
  llama_model_.reset();
  if (!*tsfn_gone_) {
    *tsfn_gone_ = true;
    tsfn_.Release();
  }
}

}  // namespace md
