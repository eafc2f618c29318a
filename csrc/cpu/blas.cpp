#include "cpu/blas.h"

#include <cblas.h>  // scipy-openblas32: every symbol carries the scipy_ prefix
#include <limits>
#include <stdexcept>

#include "cpu/threads.h"
#include "fastconv/text.h"

namespace fastconv::cpu {
namespace {

static_assert(kBlasMaxDim <= std::numeric_limits<blasint>::max(), "blasint is narrower than int");

// Callers checked the limit before their parallel region (check_blas_dim).
blasint as_blasint(index_t v) { return static_cast<blasint>(v); }

CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

// Runs once, when _C loads: from then on every OpenBLAS call stays on its calling thread.
const bool g_single_threaded_blas = [] {
  scipy_openblas_set_num_threads(1);
  return true;
}();

// Tile sizes for C: halve the longer side (in multiples of 16) until there are at least 8 tiles
// or the tiles are 64 wide, so any thread count up to 8 finds work, and tiles stay big enough
// for OpenBLAS's kernels. A function of the shape alone.
struct Tiles {
  index_t tm, tn;
};

Tiles tiles_for(index_t m, index_t n) {
  constexpr index_t kWanted = 8, kSmallest = 64;
  auto halve = [](index_t v) { return (v / 2 + 15) / 16 * 16; };
  index_t tm = m, tn = n;
  while (((m + tm - 1) / tm) * ((n + tn - 1) / tn) < kWanted) {
    if (tn >= tm && tn > kSmallest)
      tn = halve(tn);
    else if (tm > kSmallest)
      tm = halve(tm);
    else
      break;
  }
  return {tm, tn};
}

}  // namespace

void check_blas_dim(index_t v, const char* name) {
  if (v > kBlasMaxDim)
    throw std::invalid_argument(
        text::cat(name, " must be at most ", kBlasMaxDim, " (the 32-bit BLAS limit); got ", v));
}

void gemm(bool ta, bool tb, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, op(ta), op(tb), as_blasint(m), as_blasint(n), as_blasint(k),
                    alpha, a, as_blasint(lda), b, as_blasint(ldb), beta, c, as_blasint(ldc));
}

void gemm(bool ta, bool tb, index_t m, index_t n, index_t k, double alpha, const double* a,
          index_t lda, const double* b, index_t ldb, double beta, double* c, index_t ldc) {
  scipy_cblas_dgemm(CblasRowMajor, op(ta), op(tb), as_blasint(m), as_blasint(n), as_blasint(k),
                    alpha, a, as_blasint(lda), b, as_blasint(ldb), beta, c, as_blasint(ldc));
}

namespace {

// gemm_parallel's tile loop; `tile_epilogue(c_tile, tm, tn, j0, before)` runs on each tile of
// C just before (before = true) and just after its product, on the thread that computes it.
template <typename T, typename Epilogue>
void gemm_tiles(bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, const T* a,
                index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc,
                const Epilogue& tile_epilogue) {
  const index_t dims[] = {m, n, k, lda, ldb, ldc};
  const char* names[] = {"gemm: m", "gemm: n", "gemm: k", "gemm: lda", "gemm: ldb", "gemm: ldc"};
  for (int i = 0; i < 6; ++i) check_blas_dim(dims[i], names[i]);
  const Tiles t = tiles_for(m, n);
  const index_t rows = (m + t.tm - 1) / t.tm, count = rows * ((n + t.tn - 1) / t.tn);
#pragma omp parallel for schedule(static) num_threads(team(count)) if (count > 1)
  for (index_t tile = 0; tile < count; ++tile) {
    const index_t i0 = (tile % rows) * t.tm, j0 = (tile / rows) * t.tn;
    const index_t tm = min_i(t.tm, m - i0), tn = min_i(t.tn, n - j0);
    // Rows i0.. of op(A) and columns j0.. of op(B), wherever transposition put them.
    const T* at = ta ? a + i0 : a + i0 * lda;
    const T* bt = tb ? b + j0 * ldb : b + j0;
    T* ct = c + i0 * ldc + j0;
    tile_epilogue(ct, tm, tn, j0, true);
    gemm(ta, tb, tm, tn, k, alpha, at, lda, bt, ldb, beta, ct, ldc);
    tile_epilogue(ct, tm, tn, j0, false);
  }
}

}  // namespace

template <typename T>
void gemm_parallel(bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, const T* a,
                   index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  gemm_tiles(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
             [](T*, index_t, index_t, index_t, bool) {});
}

template <typename T>
void gemm_parallel_bias_relu(bool ta, bool tb, index_t m, index_t n, index_t k, T alpha,
                             const T* a, index_t lda, const T* b, index_t ldb, const T* bias,
                             bool relu, T* c, index_t ldc) {
  gemm_tiles(ta, tb, m, n, k, alpha, a, lda, b, ldb, bias ? T(1) : T(0), c, ldc,
             [=](T* ct, index_t tm, index_t tn, index_t j0, bool before) {
               if (before && bias) {
                 for (index_t i = 0; i < tm; ++i) {
                   T* row = ct + i * ldc;
#pragma omp simd
                   for (index_t j = 0; j < tn; ++j) row[j] = bias[j0 + j];
                 }
               } else if (!before && relu) {
                 for (index_t i = 0; i < tm; ++i) {
                   T* row = ct + i * ldc;
#pragma omp simd
                   for (index_t j = 0; j < tn; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];
                 }
               }
             });
}

template void gemm_parallel<float>(bool, bool, index_t, index_t, index_t, float, const float*,
                                   index_t, const float*, index_t, float, float*, index_t);
template void gemm_parallel<double>(bool, bool, index_t, index_t, index_t, double, const double*,
                                    index_t, const double*, index_t, double, double*, index_t);
template void gemm_parallel_bias_relu<float>(bool, bool, index_t, index_t, index_t, float,
                                             const float*, index_t, const float*, index_t,
                                             const float*, bool, float*, index_t);
template void gemm_parallel_bias_relu<double>(bool, bool, index_t, index_t, index_t, double,
                                              const double*, index_t, const double*, index_t,
                                              const double*, bool, double*, index_t);

int blas_num_threads() { return scipy_openblas_get_num_threads(); }
const char* blas_config() { return scipy_openblas_get_config(); }

}  // namespace fastconv::cpu
