// RPC devices: a ggml rpc-server's devices registered next to the local ones (models on other machines).
#pragma once
#include <napi.h>

namespace md {
void InitRpc(Napi::Env env, Napi::Object exports);
}
