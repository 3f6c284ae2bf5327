#include "sampling_js.h"

#include <cstring>
#include <vector>

#include "common.h"
#include "sampling.h"

namespace md {

namespace {
Napi::Float32Array RowArg(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a Float32Array");
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (a.ElementLength() == 0) throw Napi::RangeError::New(v.Env(), std::string(name) + " is empty");
  return a;
}

Sampling SamplingOf(const Napi::Value& v) {
  Sampling s;
  Napi::Object o = ObjectArg(v, "sampling");
  s.temperature = (float)NumberField(o, "temperature", 0.0, 1e6, 0.0);
  s.top_k = (int32_t)IntField(o, "topK", 0, INT32_MAX, 0);
  s.top_p = (float)NumberField(o, "topP", 1e-9, 1.0, 1.0);
  return s;
}

Napi::Value ArgmaxJs(const Napi::CallbackInfo& info) {
  Napi::Float32Array a = RowArg(info[0], "logits");
  return Napi::Number::New(info.Env(), Argmax(a.Data(), (int32_t)a.ElementLength()));
}

Napi::Value FilteredDistJs(const Napi::CallbackInfo& info) {
  Napi::Float32Array a = RowArg(info[0], "logits");
  Sampling s = SamplingOf(info[1]);
  std::vector<float> out;
  std::vector<int32_t> scratch;
  FilteredDist(a.Data(), (int32_t)a.ElementLength(), s, out, scratch);
  Napi::Float32Array r = Napi::Float32Array::New(info.Env(), out.size());
  std::memcpy(r.Data(), out.data(), out.size() * sizeof(float));
  return r;
}

Napi::Value SampleRowJs(const Napi::CallbackInfo& info) {
  Napi::Float32Array w = RowArg(info[0], "weights");
  double u = NumberArg(info[1], "u", 0.0, 0.9999999999999999);
  return Napi::Number::New(info.Env(), SampleRow(w.Data(), (int32_t)w.ElementLength(), u));
}

// sampleResidual(p, q | null, qToken, u)
Napi::Value SampleResidualJs(const Napi::CallbackInfo& info) {
  Napi::Float32Array p = RowArg(info[0], "p");
  const float* q = nullptr;
  int32_t n_q = 0;
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    Napi::Float32Array qa = RowArg(info[1], "q");
    q = qa.Data();
    n_q = (int32_t)qa.ElementLength();
  }
  int32_t q_token = (int32_t)IntArg(info[2], "qToken", -1, INT32_MAX);
  double u = NumberArg(info[3], "u", 0.0, 0.9999999999999999);
  return Napi::Number::New(info.Env(), SampleResidual(p.Data(), (int32_t)p.ElementLength(), q, n_q, q_token, u));
}
}  // namespace

void InitSamplingJs(Napi::Env env, Napi::Object exports) {
  Napi::Object s = Napi::Object::New(env);
  s.Set("argmax", Napi::Function::New<ArgmaxJs>(env, "argmax"));
  s.Set("filteredDist", Napi::Function::New<FilteredDistJs>(env, "filteredDist"));
  s.Set("sampleRow", Napi::Function::New<SampleRowJs>(env, "sampleRow"));
  s.Set("sampleResidual", Napi::Function::New<SampleResidualJs>(env, "sampleResidual"));
  exports.Set("sampling", s);
}

}  // namespace md
