// minedraft native addon: thin, policy-free mechanism over llama.cpp (load, decode, draft, verify
// math, KV). Scheduling and acceptance decisions live in TypeScript (src/engine).
#include <napi.h>

#include "backend.h"
#include "common.h"
#include "context.h"
#include "model.h"
#include "sampling_js.h"
#include "synth.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new md::AddonData());
  md::InitBackend(env, exports);
  md::Model::Init(env, exports);
  md::Context::Init(env, exports);
  md::InitSamplingJs(env, exports);
  InitSynth(env, exports);
  return exports;
}

NODE_API_MODULE(minedraft, InitAddon)
