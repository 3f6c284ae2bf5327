#include "rpc.h"

#include <ggml-backend.h>
#include <ggml.h>
#include <ggml-rpc.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "common.h"

namespace md {

namespace {
// The RPC backend is found at run time, as llama.cpp's common code does (--rpc): the prebuilt libraries
// have none, and linking ggml_backend_rpc_add_server would keep the addon from loading there.
typedef ggml_backend_reg_t (*AddServerFn)(const char* endpoint);

AddServerFn FindAddServer() {
  ggml_backend_reg_t rpc = ggml_backend_reg_by_name("RPC");
  if (!rpc) return nullptr;
  return (AddServerFn)ggml_backend_reg_get_proc_address(rpc, "ggml_backend_rpc_add_server");
}

// ggml's RPC client aborts the process when a server is lost mid-run (RPC_STATUS_ASSERT in ggml-rpc.cpp) and
// its message does not say which server: name them on the way out. Installed only once a server is added.
char g_servers[1024] = "";
ggml_abort_callback_t g_previous_abort = nullptr;

void OnAbort(const char* message) {
  if (g_previous_abort) {
    g_previous_abort(message);
  } else {
    std::fprintf(stderr, "%s\n", message);
  }
  std::fprintf(stderr,
               "minedraft: ggml aborted with RPC servers in use (%s); its RPC client ends the process when a "
               "server is lost or answers badly\n",
               g_servers);
}

Napi::Value RpcSupported(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), FindAddServer() != nullptr);
}

// addRpcServer(endpoint): connects to a ggml rpc-server (HOST:PORT) and registers its devices, returning
// { name, devices: [name...] }. ggml aborts the process when it cannot connect or the handshake fails, so
// the caller checks the server first (src/native/rpc.ts probes it with a bounded time-out).
Napi::Value AddRpcServer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string endpoint = StringArg(info[0], "endpoint");
  AddServerFn add = FindAddServer();
  if (!add) throw Napi::Error::New(env, "this build has no RPC backend: npm run build:source -- --gpu <gpu> --rpc");
  static std::mutex mutex;
  static std::set<ggml_backend_reg_t> registered;
  std::lock_guard<std::mutex> lock(mutex);
  TakeRecentLog();
  ggml_backend_reg_t reg = add(endpoint.c_str());
  if (!reg) {
    std::string why = TakeRecentLog();
    throw Napi::Error::New(env, "RPC server " + endpoint + " has no device" + (why.empty() ? "" : ": " + why));
  }
  // ggml returns the same reg for an endpoint added again: registering it twice would list its devices twice
  if (registered.insert(reg).second) {
    ggml_backend_register(reg);
    const size_t used = std::strlen(g_servers);
    std::snprintf(g_servers + used, sizeof(g_servers) - used, "%s%s", used ? ", " : "", endpoint.c_str());
    if (registered.size() == 1) g_previous_abort = ggml_set_abort_callback(OnAbort);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", ggml_backend_reg_name(reg));
  const size_t n = ggml_backend_reg_dev_count(reg);
  Napi::Array devices = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) devices.Set((uint32_t)i, ggml_backend_dev_name(ggml_backend_reg_dev_get(reg, i)));
  o.Set("devices", devices);
  return o;
}
}  // namespace

void InitRpc(Napi::Env env, Napi::Object exports) {
  exports.Set("rpcSupported", Napi::Function::New<RpcSupported>(env, "rpcSupported"));
  exports.Set("addRpcServer", Napi::Function::New<AddRpcServer>(env, "addRpcServer"));
  // the protocol version this build speaks, from ggml-rpc.h (a header only: nothing is linked)
  Napi::Object proto = Napi::Object::New(env);
  proto.Set("major", RPC_PROTO_MAJOR_VERSION);
  proto.Set("minor", RPC_PROTO_MINOR_VERSION);
  exports.Set("rpcProtocol", proto);
}

}  // namespace md
