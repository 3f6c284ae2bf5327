// Shared helpers for the addon: argument checks that throw JS errors, and the llama.cpp log sink.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace md {

// Per-environment state (constructors), so the addon also works in worker_threads.
struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference context_ctor;
  static AddonData* Of(Napi::Env env) { return env.GetInstanceData<AddonData>(); }
};

// Argument readers: each throws a TypeError / RangeError naming the argument.
int64_t IntArg(const Napi::Value& v, const char* name, int64_t lo, int64_t hi);
double NumberArg(const Napi::Value& v, const char* name, double lo, double hi);
bool BoolArg(const Napi::Value& v, const char* name);
std::string StringArg(const Napi::Value& v, const char* name);
Napi::Object ObjectArg(const Napi::Value& v, const char* name);
Napi::Value Field(const Napi::Object& o, const char* key);  // undefined if missing
int64_t IntField(const Napi::Object& o, const char* key, int64_t lo, int64_t hi, int64_t dflt);
double NumberField(const Napi::Object& o, const char* key, double lo, double hi, double dflt);
bool BoolField(const Napi::Object& o, const char* key, bool dflt);

// llama.cpp / ggml log routing. Levels: 0 silent, 1 error, 2 warn, 3 info, 4 debug.
void InstallLogger();
void SetLogLevel(int level);
int GetLogLevel();
// The last error/warning lines llama.cpp logged on the calling thread (cleared by this call):
// appended to load failures so the user sees why.
std::string TakeRecentLog();

}  // namespace md
