#include "row_pool.h"

#include <algorithm>
#include <system_error>

namespace md {

size_t RowPool::Reserve(size_t helpers) {
  while (threads_.size() < helpers) {
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) break;
      seen = generation_;  // a new helper waits for the next run, not the last one
    }
    const size_t index = threads_.size();
    try {
      threads_.emplace_back([this, index, seen] { Loop(index, seen); });
    } catch (const std::system_error&) {
      break;  // no thread to be had: Run does the missing stripes on the calling thread
    }
  }
  return threads_.size();
}

void RowPool::RunErased(size_t stripes, Fn fn, void* arg) {
  const size_t helpers = std::min(stripes > 0 ? stripes - 1 : 0, threads_.size());
  if (helpers > 0) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = fn;
      arg_ = arg;
      active_ = helpers;
      remaining_ = helpers;
      generation_++;
    }
    work_cv_.notify_all();
  }
  fn(arg, 0);
  for (size_t t = helpers + 1; t < stripes; t++) fn(arg, t);  // stripes no helper runs
  if (helpers > 0) {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return remaining_ == 0; });
    fn_ = nullptr;
    arg_ = nullptr;
  }
}

void RowPool::Loop(size_t index, uint64_t seen) {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;  // Stop() never overlaps a run: nothing is left undone
    seen = generation_;
    if (index >= active_) continue;  // this run needs fewer helpers
    const Fn fn = fn_;
    void* const arg = arg_;
    lk.unlock();
    fn(arg, index + 1);  // does not throw (Run's wrapper keeps the exception)
    lk.lock();
    if (--remaining_ == 0) done_cv_.notify_one();
  }
}

void RowPool::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace md
