// Model: one loaded GGUF (weights + vocabulary). Loading runs off the JS thread; the tokenizer
// calls are synchronous (microseconds for short texts, read-only vocabulary), and tokenizeAsync runs a
// long text on libuv's thread pool (a MiB takes ~0.3 s).
#pragma once
#include <llama.h>
#include <napi.h>

#include <memory>

namespace md {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Model(const Napi::CallbackInfo& info);
  ~Model() override;

  // Throw a JS Error if disposed.
  llama_model* Get(Napi::Env env) const;
  std::shared_ptr<llama_model> Shared(Napi::Env env) const;
  const llama_vocab* Vocab(Napi::Env env) const { return llama_model_get_vocab(Get(env)); }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Tokenize(const Napi::CallbackInfo& info);
  Napi::Value TokenizeAsync(const Napi::CallbackInfo& info);
  Napi::Value Detokenize(const Napi::CallbackInfo& info);
  Napi::Value TokenBytes(const Napi::CallbackInfo& info);
  Napi::Value TokenText(const Napi::CallbackInfo& info);
  Napi::Value IsEog(const Napi::CallbackInfo& info);
  Napi::Value ApplyChatTemplate(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  // Shared with this model's contexts, so finalizers may run in any order at exit.
  std::shared_ptr<llama_model> model_;
};

// loadModel(path, { gpuLayers, device, mmap }) -> Promise<Model>
Napi::Value LoadModel(const Napi::CallbackInfo& info);
// firstTokenTextDifference(a, b) -> the lowest shared token id whose text differs, or -1
Napi::Value FirstTokenTextDifference(const Napi::CallbackInfo& info);

}  // namespace md
