// Synchronous JS access to the sampling math (small rows: tests and tools; the engine's hot path
// runs the same functions inside the worker jobs).
#pragma once
#include <napi.h>

namespace md {
void InitSamplingJs(Napi::Env env, Napi::Object exports);
}
