// Vocabulary-wide sampling math over logit rows. Pure functions, no llama.cpp state:
// the same filter (temperature, top-k, top-p) builds both the target's p and the draft's q,
// which is what makes stochastic acceptance lossless.
#pragma once
#include <cstdint>
#include <vector>

namespace md {

struct Sampling {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // >= 1: off
  bool greedy() const { return temperature <= 0.0f; }
};

// Index of the largest logit; the lowest index wins ties so every caller agrees.
int32_t Argmax(const float* logits, int32_t n);

// Dense filtered distribution: out[i] = probability of token i after temperature, top-k, top-p
// (zero outside the kept set). Greedy gives a one-hot row. `scratch` avoids reallocations.
void FilteredDist(const float* logits, int32_t n, const Sampling& s, std::vector<float>& out,
                  std::vector<int32_t>& scratch);

// Inverse-CDF sample from an unnormalised non-negative row with uniform u in [0,1).
// Returns -1 when the row has no mass.
int32_t SampleRow(const float* w, int32_t n, double u);

// Sample from normalize(max(0, p - q)) over n tokens. q covers the first n_q tokens (zero beyond:
// the draft's vocabulary may be smaller); q == nullptr means q is one-hot at `q_token`.
// Falls back to sampling p when the residual has no mass (p == q: rejection is impossible).
int32_t SampleResidual(const float* p, int32_t n, const float* q, int32_t n_q, int32_t q_token, double u);

}  // namespace md
