#include "backend.h"

#include <ggml-backend.h>
#include <llama.h>

#include <mutex>
#include <string>
#include <thread>

#include "common.h"

namespace md {

namespace {
std::once_flag g_init_once;
std::string g_loaded_from;

// init({ libDir, logLevel }): loads the ggml backends (CPU variants, CUDA, Vulkan, Metal) found in
// libDir by explicit path, so the libraries the addon linked and the backends it uses match.
Napi::Value InitLlama(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectArg(info[0], "options");
  std::string dir = StringArg(o.Get("libDir"), "libDir");
  SetLogLevel((int)IntField(o, "logLevel", 0, 4, 0));
  std::call_once(g_init_once, [&] {
    InstallLogger();
    ggml_backend_load_all_from_path(dir.c_str());
    llama_backend_init();
    g_loaded_from = dir;
  });
  if (ggml_backend_dev_count() == 0) throw Napi::Error::New(env, "no ggml backend could be loaded from " + dir);
  return Napi::String::New(env, g_loaded_from);
}

// loadBackend(path): loads one ggml backend module (e.g. node-llama-cpp's libggml-cuda.so) and
// returns { name, devices }; throws with llama.cpp's reason when it cannot (missing driver, ...).
Napi::Value LoadBackend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info[0], "path");
  TakeRecentLog();
  const size_t before = ggml_backend_dev_count();
  // A missing driver is an expected outcome here: keep llama.cpp quiet and report the reason instead.
  const int level = GetLogLevel();
  SetLogLevel(0);
  ggml_backend_reg_t reg = ggml_backend_load(path.c_str());
  SetLogLevel(level);
  if (!reg) {
    std::string why = TakeRecentLog();
    throw Napi::Error::New(
        env, "cannot load backend " + path + (why.empty() ? " (not supported on this system)" : ": " + why));
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", ggml_backend_reg_name(reg));
  o.Set("devices", (double)(ggml_backend_dev_count() - before));
  return o;
}

Napi::Value SetLogLevelJs(const Napi::CallbackInfo& info) {
  SetLogLevel((int)IntArg(info[0], "level", 0, 4));
  return info.Env().Undefined();
}

const char* DevTypeName(enum ggml_backend_dev_type t) {
  switch (t) {
    case GGML_BACKEND_DEVICE_TYPE_CPU:
      return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU:
      return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU:
      return "igpu";
    case GGML_BACKEND_DEVICE_TYPE_ACCEL:
      return "accel";
    default:
      return "other";
  }
}

Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t n = ggml_backend_dev_count();
  Napi::Array arr = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    ggml_backend_dev_t d = ggml_backend_dev_get(i);
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(d, &free, &total);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", ggml_backend_dev_name(d));
    o.Set("description", ggml_backend_dev_description(d));
    o.Set("type", DevTypeName(ggml_backend_dev_type(d)));
    o.Set("backend", ggml_backend_reg_name(ggml_backend_dev_backend_reg(d)));
    o.Set("memoryFree", (double)free);
    o.Set("memoryTotal", (double)total);
    arr.Set((uint32_t)i, o);
  }
  return arr;
}

Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), llama_print_system_info());
}
}  // namespace

void InitBackend(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New<InitLlama>(env, "init"));
  exports.Set("loadBackend", Napi::Function::New<LoadBackend>(env, "loadBackend"));
  exports.Set("setLogLevel", Napi::Function::New<SetLogLevelJs>(env, "setLogLevel"));
  exports.Set("devices", Napi::Function::New<Devices>(env, "devices"));
  exports.Set("systemInfo", Napi::Function::New<SystemInfo>(env, "systemInfo"));
  exports.Set("hardwareConcurrency", Napi::Number::New(env, std::thread::hardware_concurrency()));
}

}  // namespace md
