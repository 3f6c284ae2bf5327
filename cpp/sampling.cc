#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace md {

int32_t Argmax(const float* logits, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; i++) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

void FilteredDist(const float* logits, int32_t n, const Sampling& s, std::vector<float>& out,
                  std::vector<int32_t>& scratch) {
  out.assign(n, 0.0f);
  if (s.greedy()) {
    out[Argmax(logits, n)] = 1.0f;
    return;
  }
  // Order: higher logit first, lower id on ties (a total order, so the kept set is deterministic).
  auto before = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  const bool use_k = s.top_k > 0 && s.top_k < n;
  const bool use_p = s.top_p < 1.0f;
  float maxl = logits[Argmax(logits, n)];
  const double inv_t = 1.0 / s.temperature;

  if (!use_k && !use_p) {
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
      float e = (float)std::exp((double)(logits[i] - maxl) * inv_t);
      out[i] = e;
      sum += e;
    }
    const float inv = (float)(1.0 / sum);
    for (int32_t i = 0; i < n; i++) out[i] *= inv;
    return;
  }

  scratch.resize(n);
  for (int32_t i = 0; i < n; i++) scratch[i] = i;
  int32_t kept = n;
  if (use_k) {
    std::nth_element(scratch.begin(), scratch.begin() + s.top_k, scratch.end(), before);
    kept = s.top_k;
  }
  std::sort(scratch.begin(), scratch.begin() + kept, before);
  double sum = 0.0;
  std::vector<double> e(kept);
  for (int32_t j = 0; j < kept; j++) {
    e[j] = std::exp((double)(logits[scratch[j]] - maxl) * inv_t);
    sum += e[j];
  }
  if (use_p) {
    // smallest prefix whose mass reaches top_p (at least one token)
    double cum = 0.0;
    int32_t cut = kept;
    for (int32_t j = 0; j < kept; j++) {
      cum += e[j] / sum;
      if (cum >= s.top_p) {
        cut = j + 1;
        break;
      }
    }
    kept = cut;
    sum = 0.0;
    for (int32_t j = 0; j < kept; j++) sum += e[j];
  }
  for (int32_t j = 0; j < kept; j++) out[scratch[j]] = (float)(e[j] / sum);
}

int32_t SampleRow(const float* w, int32_t n, double u) {
  double total = 0.0;
  int32_t last = -1;
  for (int32_t i = 0; i < n; i++) {
    if (w[i] > 0.0f) {
      total += w[i];
      last = i;
    }
  }
  if (last < 0) return -1;
  const double target = u * total;
  double cum = 0.0;
  for (int32_t i = 0; i < n; i++) {
    if (w[i] <= 0.0f) continue;
    cum += w[i];
    if (cum > target) return i;
  }
  return last;  // rounding: u close to 1
}

int32_t SampleResidual(const float* p, int32_t n, const float* q, int32_t n_q, int32_t q_token, double u) {
  auto q_at = [&](int32_t i) -> float { return q ? (i < n_q ? q[i] : 0.0f) : (i == q_token ? 1.0f : 0.0f); };
  double total = 0.0;
  for (int32_t i = 0; i < n; i++) {
    float qi = q_at(i);
    float r = p[i] - qi;
    if (r > 0.0f) total += r;
  }
  if (!(total > 0.0)) return SampleRow(p, n, u);
  const double target = u * total;
  double cum = 0.0;
  int32_t last = -1;
  for (int32_t i = 0; i < n; i++) {
    float qi = q_at(i);
    float r = p[i] - qi;
    if (r <= 0.0f) continue;
    cum += r;
    last = i;
    if (cum > target) return i;
  }
  return last;
}

}  // namespace md
