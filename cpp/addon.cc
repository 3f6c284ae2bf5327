// minedraft native addon: thin, policy-free mechanism over llama.cpp (load, decode, draft, verify
// math, KV). Scheduling and acceptance decisions live in TypeScript (src/engine).
//
//   common.*       argument readers, per-environment data, the llama.cpp log sink
//   backend.*      process-wide setup: backends, logging, devices
//   rpc.*          RPC devices: a ggml rpc-server's devices registered next to the local ones
//   model.*        a loaded GGUF: metadata, tokenizer, chat template, vocabulary facts
//   context/       a llama.cpp context on its own worker thread: queue, jobs, row pool, JS bindings
//   sampling*.*    vocabulary-wide sampling math (and its synchronous JS access)
//   synth/         the synthetic-GGUF generator: a separate module (minedraft_synth.node), not linked here
#include <napi.h>

#include "backend.h"
#include "common.h"
#include "context/context.h"
#include "model.h"
#include "rpc.h"
#include "sampling_js.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new md::AddonData());
  md::InitBackend(env, exports);
  md::InitRpc(env, exports);
  md::Model::Init(env, exports);
  md::Context::Init(env, exports);
  md::InitSamplingJs(env, exports);
  return exports;
}

NODE_API_MODULE(minedraft, InitAddon)
