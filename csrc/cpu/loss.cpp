#include "cpu/loss.h"

#include <cmath>

#include "cpu/threads.h"
#include "cpu/softmax_rows.h"
#include "cpu/workspace.h"

namespace fastconv::cpu {
namespace {

// Rows are independent; below this much work a thread team costs more than it saves.
constexpr index_t kParallelWork = index_t(1) << 15;

// A row's maximum (and, for float, whether the exp may take its shortcut over the whole row).
template <typename T>
struct RowScan {
  T max;
};

template <typename T>
RowScan<T> scan_row(const T* z, index_t c) {
  T m = z[0];
  // max is exact in any order, so a SIMD reduction cannot change the bits.
#pragma omp simd reduction(max : m)
  for (index_t j = 1; j < c; ++j) m = z[j] > m ? z[j] : m;
  return {m};
}

inline vexp::RowScan scan_row(const float* z, index_t c) { return vexp::scan_row(z, c); }

// sum_j e^(z[j] - max), each term also stored to e[j] unless e is null. double: std::exp, summed
// in order of j.
template <typename T>
T exp_sum(T* e, const T* z, const RowScan<T>& scan, index_t c) {
  T s = T(0);
  for (index_t j = 0; j < c; ++j) {
    const T v = std::exp(z[j] - scan.max);
    if (e) e[j] = v;
    s += v;
  }
  return s;
}

// float: the vectorised exp of cpu/vexp.h (a bounded error, see there) and a fixed eight-lane
// sum, so every thread count gets the same bits.
inline float exp_sum(float* e, const float* z, const vexp::RowScan& scan, index_t c) {
  return e ? vexp::exp_sum<true>(e, z, scan, c) : vexp::exp_sum<false>(nullptr, z, scan, c);
}

// d[j] = (d[j] * p - t[j]) * scale over a row, or with a one-hot row at label when t is null.
// double: plain loops; float: cpu/softmax_rows.h's, cloned with the exp.
template <typename T>
void grad_row(T* d, const T* t, index_t label, T p, T scale, index_t c) {
  for (index_t j = 0; j < c; ++j) d[j] = (d[j] * p - (t ? t[j] : j == label ? T(1) : T(0))) * scale;
}

inline void grad_row(float* d, const float* t, index_t label, float p, float scale, index_t c) {
  vexp::grad_row(d, t, label, p, scale, c);
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
    const auto scan = scan_row(zi, c);
    const T m = scan.max;
    const T lse = std::log(exp_sum(static_cast<T*>(nullptr), zi, scan, c));
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
    const auto scan = scan_row(zi, c);
    rows[i] = (scan.max - zi[labels[i]]) + std::log(exp_sum(static_cast<T*>(nullptr), zi, scan, c));
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
    const T s = exp_sum(di, zi, scan_row(zi, c), c);  // the unnormalised softmax, kept
    T tsum = T(0);
    for (index_t j = 0; j < c; ++j) tsum += ti[j];
    // Soft targets need not sum to 1: d/dz of sum_c t_c * (lse - z_c) is tsum * softmax - t.
    grad_row(di, ti, 0, tsum / s, scale, c);
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
    const T s = exp_sum(di, zi, scan_row(zi, c), c);
    // Same operations as the dense form with a one-hot row (tsum = 1), so both agree bitwise.
    grad_row(di, static_cast<const T*>(nullptr), labels[i], T(1) / s, scale, c);
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
