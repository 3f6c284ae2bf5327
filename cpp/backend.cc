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

// deviceHoldsTensor(device, type, ne): whether the device's backend can run graphs over a tensor of this shape in
// its buffers. ggml's scheduler aborts the process on one it cannot (a KV cache tensor beyond a Vulkan device's
// maxStorageBufferRange, say), so the caller asks before it creates a context.
Napi::Value DeviceHoldsTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info[0], "device");
  std::string type = StringArg(info[1], "type");
  if (type != "f16" && type != "f32") throw Napi::RangeError::New(env, "type must be f16 or f32, got " + type);
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "ne must be an array of 1 to 4 dimensions");
  Napi::Array ne = info[2].As<Napi::Array>();
  if (ne.Length() < 1 || ne.Length() > 4) throw Napi::RangeError::New(env, "ne must have 1 to 4 dimensions");
  int64_t dims[4] = {1, 1, 1, 1};
  for (uint32_t i = 0; i < ne.Length(); i++) dims[i] = IntArg(ne.Get(i), "ne[i]", 1, (int64_t)1 << 40);
  ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
  if (!dev) throw Napi::Error::New(env, "no device named " + name);
  ggml_init_params params = {ggml_tensor_overhead(), nullptr, true};  // metadata only, no data
  ggml_context* ctx = ggml_init(params);
  if (!ctx) throw Napi::Error::New(env, "ggml_init failed");
  ggml_tensor* t = ggml_new_tensor(ctx, type == "f16" ? GGML_TYPE_F16 : GGML_TYPE_F32, (int)ne.Length(), dims);
  const bool ok = ggml_backend_dev_supports_op(dev, t);
  ggml_free(ctx);
  return Napi::Boolean::New(env, ok);
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
  exports.Set("deviceHoldsTensor", Napi::Function::New<DeviceHoldsTensor>(env, "deviceHoldsTensor"));
  exports.Set("systemInfo", Napi::Function::New<SystemInfo>(env, "systemInfo"));
  exports.Set("hardwareConcurrency", Napi::Number::New(env, std::thread::hardware_concurrency()));
}

}  // namespace md
