#include "cpu/loss.h"

#include <cmath>

#include "cpu/threads.h"
#include "cpu/vexp.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {
namespace {

// Rows are independent; below this much work a thread team costs more than it saves.
constexpr index_t kParallelWork = index_t(1) << 15;

template <typename T>
T row_max(const T* z, index_t c) {
  T m = z[0];
  // max is exact in any order, so a SIMD reduction cannot change the bits.
#pragma omp simd reduction(max : m)
  for (index_t j = 1; j < c; ++j) m = z[j] > m ? z[j] : m;
  return m;
}

inline float row_max(const float* z, index_t c) { return vexp::max_row(z, c); }

// sum_j e^(z[j] - m), each term also stored to e[j] unless e is null. double: std::exp, summed
// in order of j.
template <typename T>
T exp_sum(T* e, const T* z, T m, index_t c) {
  T s = T(0);
  for (index_t j = 0; j < c; ++j) {
    const T v = std::exp(z[j] - m);
    if (e) e[j] = v;
    s += v;
  }
  return s;
}

// float: the vectorised exp of cpu/vexp.h (a bounded error, see there) and a fixed eight-lane
// sum, so every thread count and ISA clone gets the same bits.
inline float exp_sum(float* e, const float* z, float m, index_t c) {
  return e ? vexp::exp_sum<true>(e, z, m, c) : vexp::exp_sum<false>(nullptr, z, m, c);
}

// The batch mean from per-row values summed in row order: the same bits for any thread count.
template <typename T>
T ordered_mean(const T* rows, index_t n) {
  T sum = T(0);
  for (index_t i = 0; i < n; ++i) sum += rows[i];
  return sum / T(n);
}

}  // namespace

template <typename T>
void softmax_ce_forward(T* loss, const T* z, const T* t, index_t n, index_t c) {
  T* rows = scratch<T>(0, static_cast<std::size_t>(n), {"softmax_ce_forward", "per-row losses"});
#pragma omp parallel for schedule(static) num_threads(team(n)) if (n * c > kParallelWork)
  for (index_t i = 0; i < n; ++i) {
    const T* zi = z + i * c;
    const T* ti = t + i * c;
    const T m = row_max(zi, c);
    const T lse = std::log(exp_sum(static_cast<T*>(nullptr), zi, m, c));
    T acc = T(0);
    // Zero weights are skipped so a -inf logit off the target gives 0, not 0 * inf = NaN.
    for (index_t j = 0; j < c; ++j) acc += ti[j] == T(0) ? T(0) : ti[j] * ((m - zi[j]) + lse);
    rows[i] = acc;
  }
  *loss = ordered_mean(rows, n);
}

template <typename T>
void softmax_ce_forward(T* loss, const T* z, const std::int64_t* labels, index_t n, index_t c) {
  T* rows = scratch<T>(0, static_cast<std::size_t>(n), {"softmax_ce_forward", "per-row losses"});
#pragma omp parallel for schedule(static) num_threads(team(n)) if (n * c > kParallelWork)
  for (index_t i = 0; i < n; ++i) {
    const T* zi = z + i * c;
    const T m = row_max(zi, c);
    rows[i] = (m - zi[labels[i]]) + std::log(exp_sum(static_cast<T*>(nullptr), zi, m, c));
  }
  *loss = ordered_mean(rows, n);
}

template <typename T>
void softmax_ce_backward(T* dz, const T* z, const T* t, T dloss, index_t n, index_t c) {
  const T scale = dloss / T(n);
#pragma omp parallel for schedule(static) num_threads(team(n)) if (n * c > kParallelWork)
  for (index_t i = 0; i < n; ++i) {
    const T* zi = z + i * c;
    const T* ti = t + i * c;
    T* di = dz + i * c;
    const T m = row_max(zi, c);
    const T s = exp_sum(di, zi, m, c);  // the unnormalised softmax, kept for the last pass
    T tsum = T(0);
    for (index_t j = 0; j < c; ++j) tsum += ti[j];
    // Soft targets need not sum to 1: d/dz of sum_c t_c * (lse - z_c) is tsum * softmax - t.
    const T p = tsum / s;
    for (index_t j = 0; j < c; ++j) di[j] = (di[j] * p - ti[j]) * scale;
  }
}

template <typename T>
void softmax_ce_backward(T* dz, const T* z, const std::int64_t* labels, T dloss, index_t n,
                         index_t c) {
  const T scale = dloss / T(n);
#pragma omp parallel for schedule(static) num_threads(team(n)) if (n * c > kParallelWork)
  for (index_t i = 0; i < n; ++i) {
    const T* zi = z + i * c;
    T* di = dz + i * c;
    const T m = row_max(zi, c);
    const T s = exp_sum(di, zi, m, c);
    // Same operations as the dense form with a one-hot row (tsum = 1), so both agree bitwise.
    const T p = T(1) / s;
    const index_t y = labels[i];
    for (index_t j = 0; j < c; ++j) di[j] = (di[j] * p - (j == y ? T(1) : T(0))) * scale;
  }
}

template void softmax_ce_forward<float>(float*, const float*, const float*, index_t, index_t);
template void softmax_ce_forward<double>(double*, const double*, const double*, index_t, index_t);
template void softmax_ce_forward<float>(float*, const float*, const std::int64_t*, index_t,
                                        index_t);
template void softmax_ce_forward<double>(double*, const double*, const std::int64_t*, index_t,
                                         index_t);
template void softmax_ce_backward<float>(float*, const float*, const float*, float, index_t,
                                         index_t);
template void softmax_ce_backward<double>(double*, const double*, const double*, double, index_t,
                                          index_t);
template void softmax_ce_backward<float>(float*, const float*, const std::int64_t*, float,
                                         index_t, index_t);
template void softmax_ce_backward<double>(double*, const double*, const std::int64_t*, double,
                                          index_t, index_t);

}  // namespace fastconv::cpu
