// RowPool: a context's persistent helper threads for the vocabulary-wide work of its sampled output
// rows (Context::ForEachRow). Helpers are started when a job first needs them, at most as many as the
// context's row threads less one (the worker thread itself takes stripe 0), sleep on a condition
// variable between jobs, and are joined by Stop() (dispose) or the destructor. Mechanism only: how
// many stripes a job uses is the caller's choice. Plain C++ (no llama.cpp, no N-API).
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace md {

class RowPool {
 public:
  RowPool() = default;
  RowPool(const RowPool&) = delete;
  RowPool& operator=(const RowPool&) = delete;
  ~RowPool() { Stop(); }

  // Grows the pool to `helpers` threads (never shrinks). A thread the system refuses is left out: its
  // stripes then run on the calling thread. Returns the helpers running.
  size_t Reserve(size_t helpers);

  // stripe(t) for t in 0..stripes-1, stripe 0 and any stripe without a helper on the calling thread,
  // stripe t on helper t-1 otherwise; returns when all are done. If stripes throw, the exception of
  // the lowest such stripe is rethrown (after every stripe finished). Not reentrant: one thread (the
  // context's worker) calls Run, Reserve and Stop.
  template <class Stripe>
  void Run(size_t stripes, Stripe&& stripe);

  // Joins the helpers (idempotent). Never while a Run is in progress.
  void Stop();

  size_t size() const { return threads_.size(); }

 private:
  using Fn = void (*)(void* arg, size_t stripe);
  void RunErased(size_t stripes, Fn fn, void* arg);
  void Loop(size_t index, uint64_t seen);

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // a new run (generation_) or stop_
  std::condition_variable done_cv_;  // remaining_ reached 0
  uint64_t generation_ = 0;          // bumped by every run that hands stripes to helpers
  size_t active_ = 0;                // helpers 0..active_-1 take part in the current run
  size_t remaining_ = 0;             // helpers of the current run still busy
  Fn fn_ = nullptr;
  void* arg_ = nullptr;
  bool stop_ = false;
};

template <class Stripe>
void RowPool::Run(size_t stripes, Stripe&& stripe) {
  std::vector<std::exception_ptr> errors(stripes);
  struct Call {
    Stripe& stripe;
    std::vector<std::exception_ptr>& errors;
  } call{stripe, errors};
  RunErased(
      stripes,
      [](void* arg, size_t t) {
        Call& c = *static_cast<Call*>(arg);
        try {
          c.stripe(t);
        } catch (...) {
          c.errors[t] = std::current_exception();
        }
      },
      &call);
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace md
