#include "model.h"

#include <ggml-backend.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"

namespace md {

void Model::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function fn = DefineClass(env, "Model",
                                  {
                                      InstanceMethod<&Model::Info>("info"),
                                      InstanceMethod<&Model::Tokenize>("tokenize"),
                                      InstanceMethod<&Model::TokenizeAsync>("tokenizeAsync"),
                                      InstanceMethod<&Model::Detokenize>("detokenize"),
                                      InstanceMethod<&Model::TokenBytes>("tokenBytes"),
                                      InstanceMethod<&Model::TokenText>("tokenText"),
                                      InstanceMethod<&Model::IsEog>("isEog"),
                                      InstanceMethod<&Model::ApplyChatTemplate>("applyChatTemplate"),
                                      InstanceMethod<&Model::Dispose>("dispose"),
                                      InstanceAccessor<&Model::Disposed>("disposed"),
                                  });
  AddonData::Of(env)->model_ctor = Napi::Persistent(fn);
  exports.Set("Model", fn);
  exports.Set("loadModel", Napi::Function::New<LoadModel>(env, "loadModel"));
  exports.Set("firstTokenTextDifference",
              Napi::Function::New<FirstTokenTextDifference>(env, "firstTokenTextDifference"));
}

// Only loadModel may construct: it passes the loaded pointer as an External.
Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed directly: use loadModel()");
  }
  model_.reset(info[0].As<Napi::External<llama_model>>().Data(), llama_model_free);
}

Model::~Model() = default;

llama_model* Model::Get(Napi::Env env) const {
  if (!model_) throw Napi::Error::New(env, "Model is disposed");
  return model_.get();
}

std::shared_ptr<llama_model> Model::Shared(Napi::Env env) const {
  Get(env);
  return model_;
}

static std::string MetaString(const llama_model* m, const char* key) {
  char buf[512];
  int32_t n = llama_model_meta_val_str(m, key, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, std::min<size_t>((size_t)n, sizeof buf - 1));
}

static const char* VocabTypeName(enum llama_vocab_type t) {
  switch (t) {
    case LLAMA_VOCAB_TYPE_NONE:
      return "none";
    case LLAMA_VOCAB_TYPE_SPM:
      return "spm";
    case LLAMA_VOCAB_TYPE_BPE:
      return "bpe";
    case LLAMA_VOCAB_TYPE_WPM:
      return "wpm";
    case LLAMA_VOCAB_TYPE_UGM:
      return "ugm";
    case LLAMA_VOCAB_TYPE_RWKV:
      return "rwkv";
    default:
      return "other";
  }
}

Napi::Value Model::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  llama_model* m = Get(env);
  const llama_vocab* v = llama_model_get_vocab(m);
  Napi::Object o = Napi::Object::New(env);
  char desc[256];
  llama_model_desc(m, desc, sizeof desc);
  o.Set("description", desc);
  o.Set("architecture", MetaString(m, "general.architecture"));
  o.Set("name", MetaString(m, "general.name"));
  o.Set("nParams", (double)llama_model_n_params(m));
  o.Set("sizeBytes", (double)llama_model_size(m));
  o.Set("nVocab", llama_vocab_n_tokens(v));
  o.Set("nCtxTrain", llama_model_n_ctx_train(m));
  o.Set("nEmbd", llama_model_n_embd(m));
  o.Set("nLayer", llama_model_n_layer(m));
  o.Set("nHead", llama_model_n_head(m));
  o.Set("nHeadKv", llama_model_n_head_kv(m));
  o.Set("vocabType", VocabTypeName(llama_vocab_type(v)));
  o.Set("bos", llama_vocab_bos(v));
  o.Set("eos", llama_vocab_eos(v));
  o.Set("eot", llama_vocab_eot(v));
  o.Set("addBos", llama_vocab_get_add_bos(v));
  o.Set("addEos", llama_vocab_get_add_eos(v));
  const char* tmpl = llama_model_chat_template(m, nullptr);
  o.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());
  Napi::Object meta = Napi::Object::New(env);
  const int32_t count = llama_model_meta_count(m);
  std::vector<char> key(256), val(1024);
  for (int32_t i = 0; i < count; i++) {
    if (llama_model_meta_key_by_index(m, i, key.data(), key.size()) < 0) continue;
    int32_t n = llama_model_meta_val_str_by_index(m, i, val.data(), val.size());
    if (n < 0) continue;
    meta.Set(key.data(), std::string(val.data(), std::min<size_t>((size_t)n, val.size() - 1)));
  }
  o.Set("meta", meta);
  return o;
}

// llama_tokenize into a vector; false when it fails. Any thread (the vocabulary is read-only).
static bool TokenizeText(const llama_vocab* v, const std::string& text, bool add_special, bool parse_special,
                         std::vector<llama_token>& toks) {
  int32_t cap = (int32_t)text.size() + 4;
  toks.resize(cap);
  int32_t n = llama_tokenize(v, text.data(), (int32_t)text.size(), toks.data(), cap, add_special, parse_special);
  if (n < 0) {
    toks.resize(-n);
    n = llama_tokenize(v, text.data(), (int32_t)text.size(), toks.data(), -n, add_special, parse_special);
  }
  if (n < 0) return false;
  toks.resize(n);
  return true;
}

struct TokenizeArgs {
  std::string text;
  bool add_special = true;
  bool parse_special = false;
};

static TokenizeArgs TokenizeArgsOf(const Napi::CallbackInfo& info) {
  TokenizeArgs a;
  a.text = StringArg(info[0], "text");
  a.add_special = info.Length() > 1 && !info[1].IsUndefined() ? BoolArg(info[1], "addSpecial") : true;
  a.parse_special = info.Length() > 2 && !info[2].IsUndefined() ? BoolArg(info[2], "parseSpecial") : false;
  if (a.text.size() > (size_t)INT32_MAX / 2) throw Napi::RangeError::New(info.Env(), "text is too long to tokenize");
  return a;
}

static Napi::Int32Array TokensOut(Napi::Env env, const std::vector<llama_token>& toks) {
  Napi::Int32Array out = Napi::Int32Array::New(env, toks.size());
  if (!toks.empty()) std::memcpy(out.Data(), toks.data(), toks.size() * sizeof(int32_t));
  return out;
}

Napi::Value Model::Tokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const llama_vocab* v = Vocab(env);
  TokenizeArgs a = TokenizeArgsOf(info);
  std::vector<llama_token> toks;
  if (!TokenizeText(v, a.text, a.add_special, a.parse_special, toks))
    throw Napi::Error::New(env, "tokenization failed");
  return TokensOut(env, toks);
}

// tokenizeAsync on libuv's pool: the model stays alive (shared) until the worker is done.
class TokenizeWorker : public Napi::AsyncWorker {
 public:
  TokenizeWorker(Napi::Env env, std::shared_ptr<llama_model> keep, TokenizeArgs args)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        keep_(std::move(keep)),
        args_(std::move(args)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }
  void Execute() override {
    if (!TokenizeText(llama_model_get_vocab(keep_.get()), args_.text, args_.add_special, args_.parse_special, toks_))
      SetError("tokenization failed");
  }
  void OnOK() override { deferred_.Resolve(TokensOut(Env(), toks_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<llama_model> keep_;
  TokenizeArgs args_;
  std::vector<llama_token> toks_;
};

Napi::Value Model::TokenizeAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<llama_model> keep = Shared(env);
  auto* worker = new TokenizeWorker(env, std::move(keep), TokenizeArgsOf(info));
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself when done
  return promise;
}

static std::vector<llama_token> TokensArg(const Napi::Value& val, const char* name, int32_t n_vocab) {
  Napi::Env env = val.Env();
  std::vector<llama_token> out;
  if (val.IsTypedArray() && val.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = val.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (val.IsArray()) {
    Napi::Array a = val.As<Napi::Array>();
    if (a.Length() > (1u << 25)) throw Napi::RangeError::New(env, std::string(name) + " is too long");
    out.resize(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) out[i] = (llama_token)IntArg(a.Get(i), name, 0, n_vocab - 1);
  } else {
    throw Napi::TypeError::New(env, std::string(name) + " must be an Int32Array or an array of token ids");
  }
  for (llama_token t : out) {
    if (t < 0 || t >= n_vocab)
      throw Napi::RangeError::New(env, std::string(name) + ": token id " + std::to_string(t) +
                                           " is outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
  }
  return out;
}

Napi::Value Model::Detokenize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<llama_model> keep = Shared(env);  // a getter in the arguments may call dispose()
  const llama_vocab* v = llama_model_get_vocab(keep.get());
  std::vector<llama_token> toks = TokensArg(info[0], "tokens", llama_vocab_n_tokens(v));
  bool remove_special = info.Length() > 1 && !info[1].IsUndefined() ? BoolArg(info[1], "removeSpecial") : false;
  bool unparse_special = info.Length() > 2 && !info[2].IsUndefined() ? BoolArg(info[2], "unparseSpecial") : false;
  std::string text(toks.size() * 8 + 16, '\0');
  int32_t n = llama_detokenize(v, toks.data(), (int32_t)toks.size(), text.data(), (int32_t)text.size(), remove_special,
                               unparse_special);
  if (n < 0) {
    text.resize(-n);
    n = llama_detokenize(v, toks.data(), (int32_t)toks.size(), text.data(), (int32_t)text.size(), remove_special,
                         unparse_special);
  }
  if (n < 0) throw Napi::Error::New(env, "detokenization failed");
  text.resize(n);
  return Napi::String::New(env, text);
}

Napi::Value Model::TokenBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const llama_vocab* v = Vocab(env);
  llama_token t = (llama_token)IntArg(info[0], "token", 0, llama_vocab_n_tokens(v) - 1);
  bool special = info.Length() > 1 && !info[1].IsUndefined() ? BoolArg(info[1], "special") : false;
  char buf[256];
  int32_t n = llama_token_to_piece(v, t, buf, sizeof buf, 0, special);
  std::string s;
  if (n < 0) {
    s.resize(-n);
    n = llama_token_to_piece(v, t, s.data(), (int32_t)s.size(), 0, special);
    if (n < 0) throw Napi::Error::New(env, "token_to_piece failed");
    s.resize(n);
  } else {
    s.assign(buf, n);
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(env, s.size());
  if (!s.empty()) std::memcpy(out.Data(), s.data(), s.size());
  return out;
}

Napi::Value Model::TokenText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const llama_vocab* v = Vocab(env);
  llama_token t = (llama_token)IntArg(info[0], "token", 0, llama_vocab_n_tokens(v) - 1);
  const char* s = llama_vocab_get_text(v, t);
  return Napi::String::New(env, s ? s : "");
}

Napi::Value Model::IsEog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const llama_vocab* v = Vocab(env);
  llama_token t = (llama_token)IntArg(info[0], "token", 0, llama_vocab_n_tokens(v) - 1);
  return Napi::Boolean::New(env, llama_vocab_is_eog(v, t));
}

Napi::Value Model::ApplyChatTemplate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<llama_model> keep = Shared(env);  // a getter in the messages may call dispose()
  llama_model* m = keep.get();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "messages must be an array of { role, content }");
  Napi::Array arr = info[0].As<Napi::Array>();
  bool add_assistant = info.Length() > 1 && !info[1].IsUndefined() ? BoolArg(info[1], "addAssistant") : true;
  std::string tmpl_override = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  const char* tmpl = tmpl_override.empty() ? llama_model_chat_template(m, nullptr) : tmpl_override.c_str();
  if (!tmpl) throw Napi::Error::New(env, "this model has no chat template (tokenizer.chat_template is missing)");
  std::vector<std::string> roles(arr.Length()), contents(arr.Length());
  std::vector<llama_chat_message> msgs(arr.Length());
  size_t total = 0;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object o = ObjectArg(arr.Get(i), "message");
    roles[i] = StringArg(o.Get("role"), "message.role");
    contents[i] = StringArg(o.Get("content"), "message.content");
    msgs[i] = {roles[i].c_str(), contents[i].c_str()};
    total += roles[i].size() + contents[i].size();
  }
  std::string out(total * 2 + 256, '\0');
  int32_t n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), add_assistant, out.data(), (int32_t)out.size());
  if (n > (int32_t)out.size()) {
    out.resize(n);
    n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), add_assistant, out.data(), (int32_t)out.size());
  }
  if (n < 0)
    throw Napi::Error::New(env, "the model's chat template is not supported by llama.cpp's built-in template engine");
  out.resize(n);
  return Napi::String::New(env, out);
}

Napi::Value Model::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_) return env.Undefined();  // double dispose is a no-op
  const long live = model_.use_count() - 1;
  if (live > 0) {
    throw Napi::Error::New(
        env, "cannot dispose the model: " + std::to_string(live) + " context(s) still use it; dispose them first");
  }
  model_.reset();
  return env.Undefined();
}

Napi::Value Model::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), model_ == nullptr);
}

// --- loading -------------------------------------------------------------------------------

namespace {
class LoadWorker : public Napi::AsyncWorker {
 public:
  // devices: the model's offload devices in order (empty: llama.cpp's default, all of them); split: each one's share
  // of the layers (empty: by free memory, llama.cpp's default)
  LoadWorker(Napi::Env env, std::string path, llama_model_params params, std::vector<ggml_backend_dev_t> devices,
             std::vector<float> split)
      : Napi::AsyncWorker(env, "minedraft.loadModel"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        params_(params),
        devices_(std::move(devices)),
        split_(std::move(split)) {
    devices_.push_back(nullptr);  // llama.cpp reads the list up to a null
    if (!split_.empty()) {
      split_.resize(std::max<size_t>(split_.size(), llama_max_devices()), 0.0f);
      params_.tensor_split = split_.data();
    }
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void UseDeviceList() { params_.devices = devices_.data(); }

  // Loads onto GPU (or RPC) devices run one at a time: two first loads onto one Vulkan device raced in its lazy
  // initialisation and crashed the process (a null call in llama_model_loader::create_tensor). CPU loads stay parallel.
  void OffloadsToDevices(bool yes) { exclusive_ = yes; }

  void Execute() override {
    static std::mutex device_loads;
    std::unique_lock<std::mutex> lock(device_loads, std::defer_lock);
    if (exclusive_) lock.lock();
    TakeRecentLog();
    model_ = llama_model_load_from_file(path_.c_str(), params_);
    if (!model_) {
      std::string why = TakeRecentLog();
      SetError("failed to load model from " + path_ + (why.empty() ? "" : ": " + why));
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      Napi::Object obj = AddonData::Of(env)->model_ctor.New({Napi::External<llama_model>::New(env, model_)});
      model_ = nullptr;  // owned by the Model now
      deferred_.Resolve(obj);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }
  ~LoadWorker() override {
    if (model_) llama_model_free(model_);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  llama_model_params params_;
  std::vector<ggml_backend_dev_t> devices_;
  std::vector<float> split_;
  bool exclusive_ = false;
  llama_model* model_ = nullptr;
};
}  // namespace

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info[0], "path");
  llama_model_params params = llama_model_default_params();
  std::vector<ggml_backend_dev_t> devices;
  std::vector<float> split;
  bool cpu_only = false;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Object o = ObjectArg(info[1], "options");
    params.n_gpu_layers = (int32_t)IntField(o, "gpuLayers", -1, 100000, params.n_gpu_layers);
    if (!BoolField(o, "mmap", true)) params.load_mode = LLAMA_LOAD_MODE_NONE;
    Napi::Value d = o.Get("device");
    if (!d.IsUndefined()) {
      // "cpu", a device name, or several as llama.cpp's --device takes them: "RPC0,CUDA0"
      std::string names = StringArg(d, "device");
      if (names == "cpu" || names == "CPU") {
        cpu_only = true;
      } else {
        for (size_t start = 0; start <= names.size();) {
          size_t end = names.find(',', start);
          if (end == std::string::npos) end = names.size();
          const std::string name = names.substr(start, end - start);
          if (name == "cpu" || name == "CPU")
            throw Napi::RangeError::New(env,
                                        "device: cpu cannot be listed with other devices (the layers not "
                                        "offloaded, see gpuLayers, stay on the CPU)");
          ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
          if (!dev) throw Napi::Error::New(env, "device '" + name + "' not found (see minedraft inspect --devices)");
          devices.push_back(dev);
          start = end + 1;
        }
        if (devices.size() >= llama_max_devices())
          throw Napi::RangeError::New(env, "device: at most " + std::to_string(llama_max_devices() - 1) + " devices");
      }
    }
    Napi::Value t = o.Get("tensorSplit");
    if (!t.IsUndefined()) {
      if (!t.IsArray()) throw Napi::TypeError::New(env, "tensorSplit must be an array of numbers");
      Napi::Array a = t.As<Napi::Array>();
      if (a.Length() != devices.size())
        throw Napi::RangeError::New(env, "tensorSplit needs one share per device in device");
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value v = a.Get(i);
        if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() >= 0))
          throw Napi::RangeError::New(env, "tensorSplit shares must be numbers >= 0");
        split.push_back(v.As<Napi::Number>().FloatValue());
      }
    }
  }
  if (cpu_only) params.n_gpu_layers = 0;
  params.progress_callback = nullptr;
  const bool listed = !devices.empty() || cpu_only;
  auto* w = new LoadWorker(env, path, params, std::move(devices), std::move(split));
  if (listed) w->UseDeviceList();  // the named devices, or [] (no offload device at all)
  w->OffloadsToDevices(!cpu_only && params.n_gpu_layers != 0);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// firstTokenTextDifference(a, b): the lowest token id below both vocabulary sizes whose text differs
// between the two models, or -1. A fact over the whole vocabulary (150k strcmp calls for a large one),
// so it stays native; whether a draft may serve a target is decided in TypeScript (src/native/vocab-compat.ts).
Napi::Value FirstTokenTextDifference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Function ctor = AddonData::Of(env)->model_ctor.Value();
  for (size_t i = 0; i < 2; i++) {
    if (info.Length() <= i || !info[i].IsObject() || !info[i].As<Napi::Object>().InstanceOf(ctor)) {
      throw Napi::TypeError::New(env, "firstTokenTextDifference(a, b) takes two models");
    }
  }
  const llama_vocab* va = Model::Unwrap(info[0].As<Napi::Object>())->Vocab(env);
  const llama_vocab* vb = Model::Unwrap(info[1].As<Napi::Object>())->Vocab(env);
  const int32_t shared = std::min(llama_vocab_n_tokens(va), llama_vocab_n_tokens(vb));
  for (int32_t t = 0; t < shared; t++) {
    const char* ta = llama_vocab_get_text(va, t);
    const char* tb = llama_vocab_get_text(vb, t);
    if (std::strcmp(ta ? ta : "", tb ? tb : "") != 0) return Napi::Number::New(env, t);
  }
  return Napi::Number::New(env, -1);
}

}  // namespace md
