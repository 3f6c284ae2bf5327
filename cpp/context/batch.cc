// The llama_batch the jobs fill and decode (worker thread only).
#include <stdexcept>
#include <string>

#include "../common.h"
#include "context.h"

namespace md {

void Context::BatchAdd(llama_token t, llama_pos p, llama_seq_id s, bool logits) {
  const int32_t i = batch_.n_tokens++;
  batch_.token[i] = t;
  batch_.pos[i] = p;
  batch_.n_seq_id[i] = 1;
  batch_.seq_id[i][0] = s;
  batch_.logits[i] = logits ? 1 : 0;
}

void Context::DecodeOrThrow(const char* what) {
  if (batch_.n_tokens == 0) return;
  if (!unusable_.empty()) throw std::runtime_error(std::string(what) + ": the context is unusable: " + unusable_);
  int32_t rc;
  try {
    rc = llama_decode(ctx_, batch_);
  } catch (const std::exception& e) {
    unusable_ = e.what();
    throw std::runtime_error(std::string(what) + ": " + e.what() + " (this context cannot be used any more)");
  }
  if (rc == 0) return;
  std::string msg = std::string(what) + ": llama_decode failed (";
  if (rc == 1)
    msg += "no KV cache slot: the context is full";
  else if (rc == 2)
    msg += "aborted";
  else
    msg += "error " + std::to_string(rc);
  std::string why = TakeRecentLog();
  throw std::runtime_error(msg + ")" + (why.empty() ? "" : ": " + why));
}

}  // namespace md
