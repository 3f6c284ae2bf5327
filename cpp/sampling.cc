#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace md {

int32_t Argmax(const float* logits, int32_t n) {
  // Runs once per output row of every decode (vocabulary-wide). The plain loop `if (x[i] > x[best])`
  // is one dependent compare per element, ~4 ns each (1 ms for 8 rows of 32k). Two passes the
  // compiler vectorises instead: the maximum over 16 independent lanes, then its first index.
  // Same result as the plain loop: the lowest index of the maximum; NaNs never compare greater, so
  // they are skipped, except a NaN at index 0, which the plain loop never replaces: it seeds every
  // lane, stays the "maximum", equals nothing, and the scan falls through to 0.
  if (n <= 1) return 0;
  constexpr int32_t kLanes = 16;
  float lane[kLanes];
  for (int32_t k = 0; k < kLanes; k++) lane[k] = logits[0];
  int32_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int32_t k = 0; k < kLanes; k++) lane[k] = logits[i + k] > lane[k] ? logits[i + k] : lane[k];
  }
  float best = lane[0];
  for (int32_t k = 1; k < kLanes; k++) best = lane[k] > best ? lane[k] : best;
  for (; i < n; i++) best = logits[i] > best ? logits[i] : best;
  for (int32_t j = 0; j < n; j++) {
    if (logits[j] == best) return j;
  }
  return 0;
}

namespace {
// Top-p without top-k: the smallest set of likeliest tokens whose mass reaches top_p, in the same
// order as FilteredDist's (higher logit first, lower id on ties). Sorting the whole vocabulary for it
// cost ~4 ms per row at 32k tokens. The tokens within a few temperature units of the top logit
// usually hold the nucleus: one pass sums their mass, and only they are sorted when it reaches
// top_p (with a margin for the float copies of the weights); otherwise a wider band, or all.
void TopPOnly(const float* logits, int32_t n, float maxl, double inv_t, float top_p, std::vector<float>& out,
              std::vector<int32_t>& scratch) {
  auto before = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  auto weight = [&](int32_t i) { return std::exp((double)(logits[i] - maxl) * inv_t); };
  double total = 0.0;
  for (int32_t i = 0; i < n; i++) {
    const double w = weight(i);
    out[i] = (float)w;  // out doubles as the weights' scratch until the result is written
    total += w;
  }
  int32_t count = n;  // candidates: scratch[0, count), all tokens unless a band holds the nucleus
  for (double band : {4.0, 8.0, 16.0, 32.0}) {
    const float floor_logit = (float)(maxl - band / inv_t);
    double mass = 0.0;
    for (int32_t i = 0; i < n; i++) mass += logits[i] >= floor_logit ? out[i] : 0.0f;
    if (mass >= top_p * total * (1.0 + 1e-6)) {
      count = 0;
      for (int32_t i = 0; i < n; i++) {
        if (logits[i] >= floor_logit) scratch[count++] = i;
      }
      break;
    }
  }
  int32_t cut = -1;
  for (;;) {
    std::sort(scratch.begin(), scratch.begin() + count, before);
    double cum = 0.0;
    for (int32_t j = 0; j < count && cut < 0; j++) {
      cum += weight(scratch[j]) / total;
      if (cum >= top_p) cut = j + 1;
    }
    if (cut >= 0) break;
    if (count == n) {  // rounding kept the sum below top_p: every token
      cut = n;
      break;
    }
    // the band's float mass reached top_p but the exact sum did not: take every token
    for (int32_t i = 0; i < n; i++) scratch[i] = i;
    count = n;
  }
  std::fill(out.begin(), out.end(), 0.0f);
  double sum = 0.0;
  for (int32_t j = 0; j < cut; j++) sum += weight(scratch[j]);
  for (int32_t j = 0; j < cut; j++) out[scratch[j]] = (float)(weight(scratch[j]) / sum);
}
}  // namespace

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
  if (use_p && !use_k) {
    TopPOnly(logits, n, maxl, inv_t, s.top_p, out, scratch);
    return;
  }
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
