// The minedraft_synth addon (build/Release/minedraft_synth.node): the N-API face of the synthetic-pair
// generator (synth.cc), a test-fixture and demo maker kept out of the production addon (minedraft.node).
// Loaded only by src/synth (src/synth/addon.ts).
//
// exports.synthesize(opts, onProgress?) => Promise<void>; runs synthesize_pair on a worker thread.
//   opts: { outDir: string, vocabPath: string, nEmbd: int, nLayer: int, nHead: int, nFf: int,
//           nDraftLayer?: int = 1, nHeadKv?: int = nHead, nCtxTrain?: int = 4096, dtype?: "f32"|"f16"|"q8_0" = "f32",
//           eps?: number = 0.02, attnScale?: number = 1, seed?: number (safe integer >= 0) | bigint = 0,
//           nThreads?: int = 0 (all cores) }
//   onProgress?: (fraction: number, stage: string) => void, called on the JS thread with strictly increasing
//   fractions, the last (1, "done") before the promise resolves; if it throws, synthesis stops, no file is left
//   and the promise rejects with what it threw.
//   Bad arguments throw synchronously: TypeError (wrong type / missing) or RangeError (bad value or combination);
//   I/O failures reject the promise with an Error.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "synth.h"

namespace {

struct ProgressEvent {
  double fraction;
  char stage[24];
};

class SynthWorker : public Napi::AsyncProgressQueueWorker<ProgressEvent> {
 public:
  SynthWorker(Napi::Env env, SynthParams params, Napi::Function onProgress)
      : Napi::AsyncProgressQueueWorker<ProgressEvent>(env, "minedraft.synthesize"),
        params_(std::move(params)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    try {
      synthesize_pair(params_, [&](double f, const char* stage) {
        if (cancelled_.load()) throw std::runtime_error("synthesize: cancelled because onProgress threw");
        if (onProgress_.IsEmpty()) return;
        ProgressEvent ev{};
        ev.fraction = f;
        std::snprintf(ev.stage, sizeof ev.stage, "%s", stage);
        progress.Send(&ev, 1);
      });
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("synthesize: unknown error");
    }
  }

  void OnProgress(const ProgressEvent* data, size_t count) override {
    if (onProgress_.IsEmpty() || cancelled_.load()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; ++i) {
      try {
        onProgress_.Call({Napi::Number::New(env, data[i].fraction), Napi::String::New(env, data[i].stage)});
      } catch (const Napi::Error& e) {
        progressError_ = Napi::Reference<Napi::Value>::New(e.Value(), 1);
        cancelled_.store(true);
        return;
      }
    }
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (!progressError_.IsEmpty()) {
      deferred_.Reject(progressError_.Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(progressError_.IsEmpty() ? e.Value() : progressError_.Value());
  }

 private:
  SynthParams params_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  Napi::Reference<Napi::Value> progressError_;
  std::atomic<bool> cancelled_{false};
};

[[noreturn]] void throw_type(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, "synthesize: " + msg);
}
[[noreturn]] void throw_range(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, "synthesize: " + msg);
}

std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "a boolean";
    case napi_number:
      return "a number";
    case napi_string:
      return "a string";
    case napi_symbol:
      return "a symbol";
    case napi_object:
      return v.IsArray() ? "an array" : "an object";
    case napi_function:
      return "a function";
    case napi_external:
      return "an external";
    case napi_bigint:
      return "a bigint";
    default:
      return "an unknown value";
  }
}

std::string get_string(const Napi::Object& o, const char* key, const char* fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && fallback) return fallback;
  if (!v.IsString()) throw_type(o.Env(), std::string("opts.") + key + " must be a string, got " + describe(v));
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty()) throw_range(o.Env(), std::string("opts.") + key + " must not be empty");
  if (s.find('\0') != std::string::npos)
    throw_range(o.Env(), std::string("opts.") + key + " must not contain NUL characters");
  return s;
}

// integer option in [lo, hi]; required unless hasDefault
int get_int(const Napi::Object& o, const char* key, bool hasDefault, int def, int lo, int hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (hasDefault) return def;
    throw_type(o.Env(), std::string("opts.") + key + " is required (an integer)");
  }
  if (!v.IsNumber()) throw_type(o.Env(), std::string("opts.") + key + " must be a number, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) {
    throw_range(o.Env(), std::string("opts.") + key + " must be an integer, got " + v.ToString().Utf8Value());
  }
  if (d < lo || d > hi) {
    throw_range(o.Env(), std::string("opts.") + key + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                             "], got " + v.ToString().Utf8Value());
  }
  return static_cast<int>(d);
}

uint64_t get_seed(const Napi::Object& o) {
  Napi::Value v = o.Get("seed");
  if (v.IsUndefined()) return 0;
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t s = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_range(o.Env(), "opts.seed must be a bigint in [0, 2^64-1]");
    return s;
  }
  if (!v.IsNumber()) throw_type(o.Env(), "opts.seed must be a number or a bigint, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < 0 || d > 9007199254740991.0) {
    throw_range(o.Env(), "opts.seed must be an integer in [0, 2^53-1] (or a bigint), got " + v.ToString().Utf8Value());
  }
  return static_cast<uint64_t>(d);
}

Napi::Value Synthesize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsFunction()) {
    throw_type(env, "the first argument (opts) must be an object, got " +
                        (info.Length() < 1 ? std::string("nothing") : describe(info[0])));
  }
  Napi::Function onProgress;
  if (info.Length() >= 2 && !info[1].IsUndefined() && !info[1].IsNull()) {
    if (!info[1].IsFunction())
      throw_type(env, "the second argument (onProgress) must be a function, got " + describe(info[1]));
    onProgress = info[1].As<Napi::Function>();
  }
  const Napi::Object o = info[0].As<Napi::Object>();

  SynthParams p;
  p.outDir = get_string(o, "outDir", nullptr);
  p.vocabPath = get_string(o, "vocabPath", nullptr);
  p.nEmbd = get_int(o, "nEmbd", false, 0, 2, 65536);
  p.nLayer = get_int(o, "nLayer", false, 0, 1, 4096);
  p.nDraftLayer = get_int(o, "nDraftLayer", true, 1, 1, 4096);
  p.nHead = get_int(o, "nHead", false, 0, 1, 65536);
  p.nHeadKv = get_int(o, "nHeadKv", true, p.nHead, 1, 65536);
  p.nFf = get_int(o, "nFf", false, 0, 1, 1 << 20);
  p.nCtxTrain = get_int(o, "nCtxTrain", true, 4096, 1, 1 << 24);
  p.nThreads = get_int(o, "nThreads", true, 0, 0, 1024);
  p.dtype = get_string(o, "dtype", "f32");
  {
    Napi::Value v = o.Get("eps");
    if (!v.IsUndefined()) {
      if (!v.IsNumber()) throw_type(env, "opts.eps must be a number, got " + describe(v));
      const double d = v.As<Napi::Number>().DoubleValue();
      if (!std::isfinite(d) || d < 0 || d > 100)
        throw_range(env, "opts.eps must be a finite number in [0, 100], got " + v.ToString().Utf8Value());
      p.eps = static_cast<float>(d);
    }
  }
  {
    Napi::Value v = o.Get("attnScale");
    if (!v.IsUndefined()) {
      if (!v.IsNumber()) throw_type(env, "opts.attnScale must be a number, got " + describe(v));
      const double d = v.As<Napi::Number>().DoubleValue();
      if (!std::isfinite(d) || d < 0 || d > 100)
        throw_range(env, "opts.attnScale must be a finite number in [0, 100], got " + v.ToString().Utf8Value());
      p.attnScale = static_cast<float>(d);
    }
  }
  p.seed = get_seed(o);

  const std::string err = synth_validate_params(p);
  if (!err.empty()) throw_range(env, err);

  auto* worker = new SynthWorker(env, std::move(p), onProgress);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself when done
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("synthesize", Napi::Function::New(env, Synthesize, "synthesize"));
  return exports;
}

}  // namespace

NODE_API_MODULE(minedraft_synth, Init)
