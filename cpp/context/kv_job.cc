// KV-cache operations: remove / copy / keep a sequence, clear, a sequence's position range.
#include "context.h"
#include "jobs.h"

namespace md {

void KvJob::Run(Context& c) {
  llama_memory_t mem = llama_get_memory(c.ctx_);
  switch (op) {
    case Remove:
      result_bool = llama_memory_seq_rm(mem, seq, p0, p1);
      break;
    case Copy:
      llama_memory_seq_cp(mem, seq, seq2, p0, p1);
      break;
    case Keep:
      llama_memory_seq_keep(mem, seq);
      break;
    case Clear:
      llama_memory_clear(mem, true);
      break;
    case PosRange:
      pos_min = llama_memory_seq_pos_min(mem, seq);
      pos_max = llama_memory_seq_pos_max(mem, seq);
      break;
  }
}

Napi::Value KvJob::Result(Napi::Env env) {
  if (op == Remove) return Napi::Boolean::New(env, result_bool);
  if (op == PosRange) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("min", pos_min);
    o.Set("max", pos_max);
    return o;
  }
  return env.Undefined();
}

}  // namespace md
