#include "common.h"

#include <llama.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>

namespace md {

int64_t IntArg(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  Napi::Env env = v.Env();
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d))
    throw Napi::TypeError::New(env, std::string(name) + " must be an integer");
  if (d < (double)lo || d > (double)hi) {
    throw Napi::RangeError::New(env, std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "], got " + std::to_string((int64_t)d));
  }
  return (int64_t)d;
}

double NumberArg(const Napi::Value& v, const char* name, double lo, double hi) {
  Napi::Env env = v.Env();
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || d < lo || d > hi) {
    throw Napi::RangeError::New(env, std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "], got " + std::to_string(d));
  }
  return d;
}

bool BoolArg(const Napi::Value& v, const char* name) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string StringArg(const Napi::Value& v, const char* name) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object ObjectArg(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

Napi::Value Field(const Napi::Object& o, const char* key) { return o.Get(key); }

int64_t IntField(const Napi::Object& o, const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : IntArg(v, key, lo, hi);
}

double NumberField(const Napi::Object& o, const char* key, double lo, double hi, double dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : NumberArg(v, key, lo, hi);
}

bool BoolField(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : BoolArg(v, key);
}

namespace {
std::atomic<int> g_level{0};
thread_local std::deque<std::string> t_recent;
thread_local std::string t_partial;

int LevelOf(ggml_log_level l) {
  switch (l) {
    case GGML_LOG_LEVEL_ERROR:
      return 1;
    case GGML_LOG_LEVEL_WARN:
      return 2;
    case GGML_LOG_LEVEL_INFO:
      return 3;
    case GGML_LOG_LEVEL_DEBUG:
      return 4;
    default:
      return -1;  // continuation of the previous line
  }
}

thread_local int t_last_level = 3;

void OnLog(ggml_log_level level, const char* text, void*) {
  int lv = LevelOf(level);
  if (lv < 0) lv = t_last_level;
  t_last_level = lv;
  if (lv <= 2 && text) {
    t_partial += text;
    if (!t_partial.empty() && t_partial.back() == '\n') {
      t_partial.pop_back();
      t_recent.push_back(t_partial);
      if (t_recent.size() > 6) t_recent.pop_front();
      t_partial.clear();
    }
  }
  if (lv <= g_level.load(std::memory_order_relaxed) && text) fputs(text, stderr);
}
}  // namespace

void InstallLogger() { llama_log_set(OnLog, nullptr); }
void SetLogLevel(int level) { g_level.store(level); }
int GetLogLevel() { return g_level.load(); }

std::string TakeRecentLog() {
  std::string out;
  for (auto& l : t_recent) {
    if (!out.empty()) out += "; ";
    out += l;
  }
  t_recent.clear();
  t_partial.clear();
  return out;
}

}  // namespace md
