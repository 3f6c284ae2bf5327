// Greedy rows' argmax where the logits are: llama.cpp's backend sampling appends a greedy sampler to the graph for
// the sequences that have one, and when every output row of a pass does, the pass brings back one token per row
// instead of n_vocab floats. For a model on an RPC device that copy is most of what a pass moves over the network.
// Jobs ask per sequence: greedy rows that need nothing but the argmax attach; a job that reads logits detaches.
#include <stdexcept>

#include "context.h"

namespace md {

namespace {
// llama.cpp's greedy backend sampler leaves the row's logits as an output beside the token, so they would still
// be copied back (row by row). This one, after it in the chain, drops them: only the token comes back.
void DropLogits(llama_sampler*, ggml_context*, ggml_cgraph*, llama_sampler_data* data) { data->logits = nullptr; }
bool BackendOnly(llama_sampler*, ggml_backend_buffer_type_t, uint32_t) { return true; }
// the CPU path never runs it: the chain is offloaded whole, or llama_set_sampler fails and it is freed
void NoApply(llama_sampler*, llama_token_data_array*) {}
const char* DropLogitsName(const llama_sampler*) { return "minedraft.drop-logits"; }

const llama_sampler_i kDropLogits = {
    /* .name              = */ DropLogitsName,
    /* .accept            = */ nullptr,
    /* .apply             = */ NoApply,
    /* .reset             = */ nullptr,
    /* .clone             = */ nullptr,
    /* .free              = */ nullptr,
    /* .backend_init      = */ BackendOnly,
    /* .backend_accept    = */ nullptr,
    /* .backend_apply     = */ DropLogits,
    /* .backend_set_input = */ nullptr,
    /* .backend_reset     = */ nullptr,
    /* .copy_state        = */ nullptr,
};
}  // namespace

bool Context::ArgmaxOnDevice(llama_seq_id seq, bool want) {
  if (!device_argmax_ || seq < 0 || (size_t)seq >= params_.n_seq_max) return false;
  if (seq_argmax_.empty()) seq_argmax_.assign(params_.n_seq_max, nullptr);
  llama_sampler*& chain = seq_argmax_[(size_t)seq];
  if (want == (chain != nullptr)) return want;
  if (!want) {
    llama_set_sampler(ctx_, seq, nullptr);
    llama_sampler_free(chain);
    chain = nullptr;
    return false;
  }
  llama_sampler* c = llama_sampler_chain_init(llama_sampler_chain_default_params());
  llama_sampler_chain_add(c, llama_sampler_init_greedy());
  llama_sampler_chain_add(c, llama_sampler_init(const_cast<llama_sampler_i*>(&kDropLogits), nullptr));
  if (!llama_set_sampler(ctx_, seq, c)) {
    // this context cannot sample on its output device (e.g. a tensor-parallel split): logits from now on
    llama_sampler_free(c);
    device_argmax_ = false;
    return false;
  }
  chain = c;
  return true;
}

// After llama_free (the context points at the chains until then).
void Context::FreeDeviceArgmax() {
  for (llama_sampler*& c : seq_argmax_) {
    if (c) llama_sampler_free(c);
    c = nullptr;
  }
}

}  // namespace md
