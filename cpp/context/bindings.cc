// The JS face of a Context (JS thread): the class and createContext(), the constructor's options, and
// one method per job, each checking its arguments (TypeError / RangeError naming the argument) before
// the job is queued. Nothing here touches the llama.cpp context: that is the worker's (worker.cc).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../common.h"
#include "../model.h"
#include "context.h"
#include "jobs.h"

namespace md {

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
  exports.Set("createContext", Napi::Function::New(
                                   env,
                                   [](const Napi::CallbackInfo& info) -> Napi::Value {
                                     Napi::Env env = info.Env();
                                     Napi::Object obj = AddonData::Of(env)->context_ctor.New(
                                         {info[0], info.Length() > 1 ? info[1] : env.Undefined()});
                                     Context* c = Context::Unwrap(obj);
                                     auto job = std::make_unique<InitJob>(env);
                                     job->self = Napi::Persistent(obj);
                                     return c->Enqueue(env, std::move(job));
                                   },
                                   "createContext"));
}

// new Context(model, options): prefer createContext(), which also waits for the llama.cpp context.
Context::Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "createContext(model, options): model must be a Model");
  Napi::Object mobj = info[0].As<Napi::Object>();
  if (!mobj.InstanceOf(AddonData::Of(env)->model_ctor.Value()))
    throw Napi::TypeError::New(env, "createContext(model, options): model must be a Model");
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
    if (s == "auto")
      params_.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
    else if (s == "on")
      params_.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    else if (s == "off")
      params_.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else
      throw Napi::RangeError::New(env, "flashAttention must be 'auto', 'on' or 'off'");
  }
  use_threadpool_ = BoolField(o, "threadpool", false);
  spin_us_ = IntField(o, "spinMicros", 0, 100000, 0);
  row_threads_ = (int32_t)IntField(o, "rowThreads", 0, 512, 0);
  poll_ = (int32_t)IntField(o, "threadpoolPoll", 0, 100, 0);
  device_argmax_ = BoolField(o, "deviceArgmax", false);
  // a verification has k + 1 output rows per sequence (llama.cpp's default allows backend sampling one)
  if (device_argmax_) params_.n_outputs_max_per_seq = params_.n_batch;
  threads_max_ = (int32_t)IntField(o, "threadsMax", 1, 1024, std::max(params_.n_threads, params_.n_threads_batch));
  if (threads_max_ < std::max(params_.n_threads, params_.n_threads_batch))
    throw Napi::RangeError::New(env, "threadsMax must be at least threads and threadsBatch");
  threads_now_ = params_.n_threads;
  threads_batch_now_ = params_.n_threads_batch;
  if (params_.n_ctx < params_.n_seq_max) throw Napi::RangeError::New(env, "nCtx must be at least nSeqMax");
  drafts_.resize(2 * (size_t)params_.n_seq_max);  // two q banks per sequence
  StartWorker(env);
}

void Context::CheckUsable(Napi::Env env) const {
  if (closing_) throw Napi::Error::New(env, "Context is disposed");
  if (!ready_) throw Napi::Error::New(env, "Context is not ready: create it with createContext()");
}

int32_t Context::SeqArg(const Napi::Value& v, const char* name) const {
  return (int32_t)IntArg(v, name, 0, (int64_t)params_.n_seq_max - 1);
}

static std::vector<int32_t> IntVector(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  Napi::Env env = v.Env();
  std::vector<int32_t> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    for (int32_t x : out) {
      if (x < lo || x > hi)
        throw Napi::RangeError::New(env, std::string(name) + ": value " + std::to_string(x) + " is outside [" +
                                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
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
  if (!v.IsArray() && !v.IsTypedArray())
    throw Napi::TypeError::New(env, std::string(name) + " must be an array of numbers in [0, 1)");
  Napi::Object a = v.As<Napi::Object>();
  uint32_t len = a.Get("length").As<Napi::Number>().Uint32Value();
  if (len < need)
    throw Napi::RangeError::New(
        env, std::string(name) + " needs " + std::to_string(need) + " values, got " + std::to_string(len));
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
  if (n > params_.n_batch)
    throw Napi::RangeError::New(
        env, "batch has " + std::to_string(n) + " tokens, more than nBatch (" + std::to_string(params_.n_batch) + ")");
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
  if (job->pos.size() != n || job->seq.size() != n || job->want.size() != n)
    throw Napi::RangeError::New(env, "batch.tokens, batch.pos, batch.seq and batch.logits must have the same length");
  for (uint8_t w : job->want) job->n_out += w;
  return Enqueue(env, std::move(job));
}

Napi::Value Context::Prefill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  auto job = std::make_unique<PrefillJob>(env);
  const int64_t limit = n_ctx_seq_ > 0 ? n_ctx_seq_ : params_.n_ctx;
  auto check = [&](const PrefillSpec& s) {
    if (n_ctx_seq_ > 0 && s.pos + (int64_t)s.tokens.size() > n_ctx_seq_) {
      throw Napi::RangeError::New(env, "prefill of " + std::to_string(s.tokens.size()) + " tokens at position " +
                                           std::to_string(s.pos) + " exceeds the sequence's context (" +
                                           std::to_string(n_ctx_seq_) + ")");
    }
  };
  if (info[0].IsArray()) {
    // prefill(specs): several sequences in one job, each { seq, pos, tokens }, each sequence once
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<bool> seen(params_.n_seq_max, false);
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Object o = ObjectArg(arr.Get(i), "prefill spec");
      PrefillSpec s;
      s.seq = SeqArg(o.Get("seq"), "spec.seq");
      if (seen[s.seq])
        throw Napi::RangeError::New(env, "prefill specs name sequence " + std::to_string(s.seq) + " twice");
      seen[s.seq] = true;
      s.pos = (int32_t)IntArg(o.Get("pos"), "spec.pos", 0, limit);
      s.tokens = IntVector(o.Get("tokens"), "spec.tokens", 0, n_vocab_ - 1);
      check(s);
      job->specs.push_back(std::move(s));
    }
  } else {
    PrefillSpec s;
    s.seq = SeqArg(info[0], "seq");
    s.pos = (int32_t)IntArg(info[1], "pos", 0, limit);
    s.tokens = IntVector(info[2], "tokens", 0, n_vocab_ - 1);
    check(s);
    job->specs.push_back(std::move(s));
  }
  return Enqueue(env, std::move(job));
}

Napi::Value Context::Draft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckUsable(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "draft(specs, vocabLimit?): specs must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  auto job = std::make_unique<DraftJob>(env);
  job->vocab_limit =
      info.Length() > 1 && !info[1].IsUndefined() ? (int32_t)IntArg(info[1], "vocabLimit", 1, n_vocab_) : n_vocab_;
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
    if (s.tokens.size() + s.k - 1 > params_.n_batch)
      throw Napi::RangeError::New(env, "spec needs more tokens than nBatch");
    if ((int64_t)s.pos + (int64_t)s.tokens.size() + s.k - 1 > n_ctx_seq_)
      throw Napi::RangeError::New(env,
                                  "draft would run past the sequence's context (" + std::to_string(n_ctx_seq_) + ")");
    s.sampling = SamplingArg(o.Get("sampling"));
    s.uniforms =
        UniformVector(s.sampling.greedy() ? Napi::Value(env.Undefined()) : o.Get("uniforms"), "spec.uniforms", s.k);
    Napi::Value cv = o.Get("confidence");
    s.confidence = !cv.IsUndefined() && !cv.IsNull() && cv.ToBoolean().Value();
    Napi::Value bv = o.Get("qBank");
    s.q_bank = bv.IsUndefined() ? 0 : (int32_t)IntArg(bv, "spec.qBank", 0, 1);
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
    if (!d.InstanceOf(AddonData::Of(env)->context_ctor.Value()))
      throw Napi::TypeError::New(env, "draftContext must be a Context");
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
    if ((int64_t)s.pos + (int64_t)s.draft.size() >= n_ctx_seq_)
      throw Napi::RangeError::New(env,
                                  "verify would run past the sequence's context (" + std::to_string(n_ctx_seq_) + ")");
    s.sampling = SamplingArg(o.Get("sampling"));
    s.draft_seq = s.draft.empty() ? 0
                                  : (int32_t)IntArg(o.Get("draftSeq").IsUndefined() ? o.Get("seq") : o.Get("draftSeq"),
                                                    "spec.draftSeq", 0, INT32_MAX);
    Napi::Value ov = o.Get("onehot");
    s.onehot = !ov.IsUndefined() && !ov.IsNull() && ov.ToBoolean().Value();
    if (!s.sampling.greedy() && !s.draft.empty() && !s.onehot) {
      if (!job->draft_ctx)
        throw Napi::TypeError::New(
            env, "stochastic verification needs the draft context (it holds the draft distributions)");
      if (s.draft_seq >= (int32_t)job->draft_ctx->params_.n_seq_max)
        throw Napi::RangeError::New(env, "spec.draftSeq is outside the draft context's sequences");
    }
    Napi::Value bv = o.Get("qBank");
    s.q_bank = bv.IsUndefined() ? 0 : (int32_t)IntArg(bv, "spec.qBank", 0, 1);
    Napi::Value rv = o.Get("qRow");
    s.q_row = rv.IsUndefined() ? 0 : (int32_t)IntArg(rv, "spec.qRow", 0, 256);
    s.uniforms = UniformVector(s.sampling.greedy() ? Napi::Value(env.Undefined()) : o.Get("uniforms"), "spec.uniforms",
                               s.draft.size() + 1);
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
    throw Napi::RangeError::New(
        env, "kvCopy: with one KV stream per sequence, only whole sequences can be copied (p0 = p1 = -1)");
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
  job->n_batch =
      info.Length() > 1 && !info[1].IsUndefined() ? (int32_t)IntArg(info[1], "threadsBatch", 1, threads_max_) : job->n;
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
  o.Set("deviceArgmax", device_argmax_);
  o.Set("disposed", closing_);
  return o;
}

}  // namespace md
