// Process-wide llama.cpp setup: backend loading from an explicit folder, logging, device listing.
#pragma once
#include <napi.h>

namespace md {
void InitBackend(Napi::Env env, Napi::Object exports);
}
