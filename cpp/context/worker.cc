// The job queue of a Context: JS-thread calls enqueue jobs, the context's own worker thread runs them in
// order, and a thread-safe function brings each finished job back to the JS thread, which settles its
// promise. Also the reference counting that keeps a Context alive while it has jobs.
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "context.h"
#include "jobs.h"

namespace md {

// Called last by the constructor.
void Context::StartWorker(Napi::Env env) {
  // The finalizer tells the destructor that Node already tore the function down (at exit).
  // The flag is shared so the finalizer stays safe even if it runs after this object is gone.
  tsfn_ = Tsfn::New(
      env, "minedraft.context", 0, 1, this,
      [](Napi::Env, std::shared_ptr<bool>* gone, Context*) {
        **gone = true;
        delete gone;
      },
      new std::shared_ptr<bool>(tsfn_gone_));
  tsfn_.Unref(env);  // an idle context must not keep the process alive
  thread_ = std::thread([this] { WorkerLoop(); });
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
// spinning (scripts/step-overhead.mjs; docs/performance.md "Orchestration overhead and short steps").
// When the JS thread answered the previous job
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
    } catch (const std::system_error& e) {
      // a backend whose connection was lost (an RPC server, scripts/patches/ggml-rpc-lost-server.patch): the
      // context's state is unknown after it, so every later decode fails with this reason
      if (e.code() == std::errc::connection_reset) unusable_ = e.what();
      job->error = e.what();
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
    if (job->ok)
      ready_ = true;
    else
      closing_ = true;  // nothing will ever run on a context that failed to initialise
  }
  const bool finished = is_dispose || (is_init && !job->ok);
  if (finished) {
    StopThread();
    llama_model_.reset();  // the weights are freed with the last owner (model or context)
  }
  try {
    if (job->ok)
      job->deferred->Resolve(job->Result(env));
    else
      job->deferred->Reject(Napi::Error::New(env, job->error).Value());
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

}  // namespace md
