#include "cuda/lt_gemm.h"

#include <cublasLt.h>

#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "cuda/context.h"
#include "cuda/runtime.h"
#include "fastconv/text.h"

namespace fastconv::cuda {
namespace {

std::atomic<bool> g_on{true};
std::atomic<std::int64_t> g_fused{0}, g_refused{0};

// What cuBLASLt answered for one problem: the descriptors its algorithm was chosen for, or no
// algorithm. Plans live as long as the process (descriptors are host memory; destroying them at
// exit could run after the library has been torn down).
struct Plan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct Cache {
  std::mutex mutex;  // also serialises setting the bias pointer on a shared descriptor
  cublasLtHandle_t handle = nullptr;
  std::map<std::vector<std::int64_t>, Plan> plans;
};

Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

// Raised only where a size outgrows what a cuBLASLt layout can hold; the callers' own sizes are
// far below it.
std::int64_t checked_ld(index_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(text::cat("cuda::lt_gemm: ", what, " = ", v,
                                          " is outside cuBLASLt's int range"));
  return v;
}

cublasLtEpilogue_t lt_epilogue(LtEpilogue e) {
  switch (e) {
    case LtEpilogue::none: return CUBLASLT_EPILOGUE_DEFAULT;
    case LtEpilogue::relu: return CUBLASLT_EPILOGUE_RELU;
    case LtEpilogue::bias: return CUBLASLT_EPILOGUE_BIAS;
    case LtEpilogue::relu_bias: return CUBLASLT_EPILOGUE_RELU_BIAS;
    case LtEpilogue::bias_grad_a: return CUBLASLT_EPILOGUE_BGRADA;
    case LtEpilogue::bias_grad_b: return CUBLASLT_EPILOGUE_BGRADB;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// The alignment class of a pointer (its address mod 16): cuBLASLt chooses its algorithm for
// the alignment the pointers have, so it is part of what a plan was made for.
std::int64_t misalign(const void* p) {
  return std::int64_t(reinterpret_cast<std::uintptr_t>(p) & 15u);
}

std::vector<std::int64_t> key_of(const LtGemm& g, cublasComputeType_t compute) {
  std::vector<std::int64_t> k = {g.trans_a, g.trans_b, g.batch, std::int64_t(g.epilogue),
                                 std::int64_t(compute), g.beta != 0.0f, misalign(g.a),
                                 misalign(g.b), misalign(g.d), misalign(g.bias)};
  for (const LtLayout* l : {&g.a_layout, &g.b_layout, &g.d_layout})
    k.insert(k.end(), {l->rows, l->cols, l->ld, l->row_major, l->batch_stride});
  return k;
}

void set_layout(cublasLtMatrixLayout_t* out, const LtLayout& l, index_t batch) {
  const std::uint64_t rows = std::uint64_t(checked_ld(l.rows, "rows"));
  const std::uint64_t cols = std::uint64_t(checked_ld(l.cols, "cols"));
  FC_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(out, CUDA_R_32F, rows, cols, checked_ld(l.ld, "ld")));
  const std::int32_t order = l.row_major ? CUBLASLT_ORDER_ROW : CUBLASLT_ORDER_COL;
  FC_CUBLAS_CHECK(
      cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_ORDER, &order, sizeof order));
  if (batch > 1) {
    const std::int32_t count = std::int32_t(checked_ld(batch, "batch"));
    const std::int64_t stride = l.batch_stride;
    FC_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                     &count, sizeof count));
    FC_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        *out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
  }
}

// Descriptors for g and cuBLASLt's first choice of algorithm, or ok = false where it has none.
Plan make_plan(cublasLtHandle_t handle, const LtGemm& g, cublasComputeType_t compute) {
  Plan p;
  FC_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F));
  const std::int32_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const std::int32_t tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const std::uint32_t epilogue = lt_epilogue(g.epilogue);
  FC_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  FC_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  FC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                 sizeof epilogue));
  // The heuristic reads the bias pointer's alignment (so it is set here as well as per call).
  const void* bias = g.bias;
  FC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                 sizeof bias));
  set_layout(&p.a, g.a_layout, g.batch);
  set_layout(&p.b, g.b_layout, g.batch);
  set_layout(&p.d, g.d_layout, g.batch);
  std::size_t ws = 0;
  (void)cublas_workspace(&ws);
  cublasLtMatmulPreference_t pref = nullptr;
  FC_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const std::uint64_t ws64 = ws;
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws64, sizeof ws64);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result,
                                        &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // Versions differ in how they turn a layout down (NOT_SUPPORTED, INVALID_VALUE, or no
  // result); each is a refusal here, and the caller's own path runs. The emulator's tests check
  // that fastconv's layouts are valid: there every one is taken, and counted as fused.
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE ||
      (st == CUBLAS_STATUS_SUCCESS && found == 0))
    return p;
  if (st != CUBLAS_STATUS_SUCCESS)
    throw_cublas(st, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
  p.ok = result.state == CUBLAS_STATUS_SUCCESS;
  p.algo = result.algo;
  return p;
}

}  // namespace

bool lt_gemm(const LtGemm& g) {
  // Empty products (and their zero bias gradients) are left to the callers' own kernels.
  if (!g_on.load() || g.batch <= 0 || g.d_layout.rows <= 0 || g.d_layout.cols <= 0 ||
      (g.trans_a ? g.a_layout.rows : g.a_layout.cols) <= 0)
    return false;
  const cublasComputeType_t compute = gemm_compute_type();
  std::size_t ws = 0;
  void* workspace = cublas_workspace(&ws);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (!c.handle) FC_CUBLAS_CHECK(cublasLtCreate(&c.handle));
  const std::vector<std::int64_t> key = key_of(g, compute);
  auto it = c.plans.find(key);
  if (it == c.plans.end()) it = c.plans.emplace(key, make_plan(c.handle, g, compute)).first;
  const Plan& p = it->second;
  if (!p.ok) {
    g_refused.fetch_add(1);
    return false;
  }
  const void* bias = g.bias;
  FC_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                 sizeof bias));
  FC_CUBLAS_CHECK(cublasLtMatmul(c.handle, p.desc, &g.alpha, g.a, p.a, g.b, p.b, &g.beta, g.d,
                                 p.d, g.d, p.d, &p.algo, workspace, ws, stream()));
  g_fused.fetch_add(1);
  return true;
}

void set_gemm_epilogues(bool on) { g_on.store(on); }
bool gemm_epilogues() { return g_on.load(); }

LtGemmStats lt_gemm_stats() { return {g_fused.load(), g_refused.load()}; }

}  // namespace fastconv::cuda
