// The emulator's cuBLASLt: descriptors that hold their attributes, the checks cublasLtMatmul and
// its heuristic share, and the matmul itself, run or recorded on its stream like cublasGemmEx.
// The computation is cublaslt_run.cpp's.
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cublasLt.h"
#include "emulator.h"
#include "lt_plan.h"

struct cublasLtContext {
  int unused = 0;  // the handle holds nothing: the stream is cublasLtMatmul's argument
};

// Each field has the type its attribute takes (see cublasLt.h), so SetAttribute checks the size.
struct cublasLtMatrixLayoutOpaque_t {
  std::uint32_t type;
  std::int32_t order = CUBLASLT_ORDER_COL;
  std::uint64_t rows, cols;
  std::int64_t ld;
  std::int32_t batch = 1;
  std::int64_t stride = 0;
};

struct cublasLtMatmulDescOpaque_t {
  std::int32_t compute, scale;
  std::int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
  std::int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  std::uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  void* bias = nullptr;
  std::int64_t bias_stride = 0;
  std::int32_t bias_type = -1;  // D's type
};

struct cublasLtMatmulPreferenceOpaque_t {
  std::uint32_t search = 0;
  std::uint64_t max_workspace = 0;
};

namespace {

using fc_emu::LtEpilogue;
using fc_emu::LtMatrix;
using fc_emu::LtPlan;

template <typename T>
cublasStatus_t set_field(T* field, const void* buf, std::size_t size) {
  if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(field, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

template <typename T>
cublasStatus_t create(T** out) {
  if (!out) return CUBLAS_STATUS_INVALID_VALUE;
  *out = new (std::nothrow) T;
  return *out ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

template <typename T>
cublasStatus_t destroy(T* p) {
  delete p;  // null is fine, as cuBLASLt's destroy functions allow
  return CUBLAS_STATUS_SUCCESS;
}

bool epilogue_of(std::uint32_t value, LtEpilogue* out) {
  switch (value) {
    case CUBLASLT_EPILOGUE_DEFAULT: *out = LtEpilogue::None; return true;
    case CUBLASLT_EPILOGUE_RELU: *out = LtEpilogue::Relu; return true;
    case CUBLASLT_EPILOGUE_BIAS: *out = LtEpilogue::Bias; return true;
    case CUBLASLT_EPILOGUE_RELU_BIAS: *out = LtEpilogue::ReluBias; return true;
    case CUBLASLT_EPILOGUE_BGRADA: *out = LtEpilogue::BgradA; return true;
    case CUBLASLT_EPILOGUE_BGRADB: *out = LtEpilogue::BgradB; return true;
  }
  return false;
}

bool implemented(const cublasLtMatrixLayoutOpaque_t& l) {
  return l.type == CUDA_R_32F && (l.order == CUBLASLT_ORDER_COL || l.order == CUBLASLT_ORDER_ROW);
}

// A layout as the work reads it; false where it is impossible (a leading dimension that makes
// rows or columns overlap, no batch, a negative stride) or beyond the int sizes BLAS takes (and a
// leading dimension beyond 2^40, so that the offsets' arithmetic cannot overflow).
bool matrix_of(const cublasLtMatrixLayoutOpaque_t& l, LtMatrix* out) {
  const bool row_major = l.order == CUBLASLT_ORDER_ROW;
  const std::uint64_t inner = row_major ? l.cols : l.rows;
  if (l.rows > INT_MAX || l.cols > INT_MAX || l.ld < 1 || l.ld > (std::int64_t(1) << 40) ||
      std::uint64_t(l.ld) < inner ||
      l.batch < 1 || l.stride < 0)
    return false;
  *out = LtMatrix{row_major, std::int64_t(l.rows), std::int64_t(l.cols), l.ld, l.stride};
  return true;
}

bool valid_op(std::int32_t op) {
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;  // C is T for real data
}

// What cublasLtMatmul and its heuristic both check, and the plan of the work where all is well.
cublasStatus_t make_plan(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                         cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                         cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d, LtPlan* plan) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!desc || !a || !b || !c || !d) return CUBLAS_STATUS_INVALID_VALUE;
  // What the emulator does not implement.
  if ((desc->compute != CUBLAS_COMPUTE_32F && desc->compute != CUBLAS_COMPUTE_32F_FAST_TF32) ||
      desc->scale != CUDA_R_32F || desc->pointer_mode != CUBLASLT_POINTER_MODE_HOST ||
      !epilogue_of(desc->epilogue, &plan->epilogue) ||
      (desc->bias_type != -1 && desc->bias_type != CUDA_R_32F) || !implemented(*a) ||
      !implemented(*b) || !implemented(*c) || !implemented(*d))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  // What no implementation could do.
  if (!valid_op(desc->transa) || !valid_op(desc->transb) || !matrix_of(*a, &plan->a) ||
      !matrix_of(*b, &plan->b) || !matrix_of(*c, &plan->c) || !matrix_of(*d, &plan->d) ||
      a->batch != d->batch || b->batch != d->batch || c->batch != d->batch)
    return CUBLAS_STATUS_INVALID_VALUE;
  plan->ta = desc->transa != CUBLAS_OP_N;
  plan->tb = desc->transb != CUBLAS_OP_N;
  plan->tf32 = desc->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  plan->m = int(d->rows);
  plan->n = int(d->cols);
  plan->batch = d->batch;
  const std::uint64_t a_rows = plan->ta ? a->cols : a->rows, k = plan->ta ? a->rows : a->cols;
  const std::uint64_t b_rows = plan->tb ? b->cols : b->rows, b_cols = plan->tb ? b->rows : b->cols;
  if (a_rows != d->rows || b_rows != k || b_cols != d->cols || c->rows != d->rows ||
      c->cols != d->cols)
    return CUBLAS_STATUS_INVALID_VALUE;
  plan->k = int(k);
  // Batches of D may not overlap (they would be written at once on a GPU).
  const LtMatrix& dm = plan->d;
  const std::int64_t outer = dm.row_major ? dm.rows : dm.cols;
  const std::int64_t inner = dm.row_major ? dm.cols : dm.rows;
  if (d->batch > 1 && outer > 0 && inner > 0 && dm.stride < (outer - 1) * dm.ld + inner)
    return CUBLAS_STATUS_INVALID_VALUE;
  // The bias: read by BIAS and RELU_BIAS (a stride of 0 shares it between batches), written by
  // BGRADA (length m) and BGRADB (length n), whose batches may not overlap either.
  const bool grad = plan->epilogue == LtEpilogue::BgradA || plan->epilogue == LtEpilogue::BgradB;
  const bool uses_bias = grad || plan->epilogue == LtEpilogue::Bias ||
                         plan->epilogue == LtEpilogue::ReluBias;
  const std::int64_t bias_len = plan->epilogue == LtEpilogue::BgradB ? plan->n : plan->m;
  if (uses_bias && (!desc->bias || desc->bias_stride < 0 ||
                    (grad && d->batch > 1 && bias_len > 0 && desc->bias_stride < bias_len)))
    return CUBLAS_STATUS_INVALID_VALUE;
  plan->bias = uses_bias ? desc->bias : nullptr;
  plan->bias_stride = desc->bias_stride;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) { return create(handle); }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  return destroy(handle);
}
const char* cublasLtGetStatusName(cublasStatus_t status) { return cublasGetStatusName(status); }
const char* cublasLtGetStatusString(cublasStatus_t status) {
  return cublasGetStatusString(status);
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                          std::uint64_t rows, std::uint64_t cols,
                                          std::int64_t ld) {
  const cublasStatus_t st = create(layout);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  (*layout)->type = std::uint32_t(type);
  (*layout)->rows = rows;
  (*layout)->cols = cols;
  (*layout)->ld = ld;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  return destroy(layout);
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, std::size_t size) {
  if (!l) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return set_field(&l->type, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return set_field(&l->order, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return set_field(&l->rows, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return set_field(&l->cols, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_LD: return set_field(&l->ld, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return set_field(&l->batch, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return set_field(&l->stride, buf, size);
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                        cudaDataType_t scale) {
  const cublasStatus_t st = create(desc);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  (*desc)->compute = compute;
  (*desc)->scale = scale;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) { return destroy(desc); }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              std::size_t size) {
  if (!desc) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return set_field(&desc->compute, buf, size);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return set_field(&desc->scale, buf, size);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return set_field(&desc->pointer_mode, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSA: return set_field(&desc->transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return set_field(&desc->transb, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return set_field(&desc->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return set_field(&desc->bias, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return set_field(&desc->bias_stride, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return set_field(&desc->bias_type, buf, size);
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  return create(pref);
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  return destroy(pref);
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void* buf, std::size_t size) {
  if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: return set_field(&pref->search, buf, size);
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      return set_field(&pref->max_workspace, buf, size);
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
    cublasLtMatmulPreference_t, int requested, cublasLtMatmulHeuristicResult_t results[],
    int* returned) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (requested <= 0 || !results || !returned) return CUBLAS_STATUS_INVALID_VALUE;
  *returned = 0;
  LtPlan plan;
  const cublasStatus_t st = make_plan(handle, desc, a, b, c, d, &plan);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  // For tests of the callers' fallbacks: the three ways a real cuBLASLt turns a valid problem
  // down (FC_EMU_LT_HEURISTIC=none, not_supported or invalid).
  if (const char* refuse = std::getenv("FC_EMU_LT_HEURISTIC")) {
    if (std::strcmp(refuse, "none") == 0) return CUBLAS_STATUS_SUCCESS;
    if (std::strcmp(refuse, "not_supported") == 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (std::strcmp(refuse, "invalid") == 0) return CUBLAS_STATUS_INVALID_VALUE;
  }
  // One algorithm, with no workspace: it fits any MAX_WORKSPACE_BYTES.
  results[0] = cublasLtMatmulHeuristicResult_t{};
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                              const void* alpha_p, const void* a_p, cublasLtMatrixLayout_t a,
                              const void* b_p, cublasLtMatrixLayout_t b, const void* beta_p,
                              const void* c_p, cublasLtMatrixLayout_t c, void* d_p,
                              cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t*, void*,
                              std::size_t, cudaStream_t stream) {
  LtPlan plan;
  const cublasStatus_t st = make_plan(handle, desc, a, b, c, d, &plan);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (!alpha_p || !beta_p) return CUBLAS_STATUS_INVALID_VALUE;
  // alpha and beta are host scalars, read now; the matrices and a read bias when the work runs.
  const float alpha = *static_cast<const float*>(alpha_p);
  const float beta = *static_cast<const float*>(beta_p);
  // In place, C must be laid out as D is (cuBLASLt's rule); elsewhere C is only read.
  const bool in_place = c_p == d_p;
  if ((beta != 0.0f && !c_p) ||
      (in_place && (plan.c.row_major != plan.d.row_major || plan.c.ld != plan.d.ld ||
                    (plan.batch > 1 && plan.c.stride != plan.d.stride))))
    return CUBLAS_STATUS_INVALID_VALUE;
  const auto* a_data = static_cast<const float*>(a_p);
  const auto* b_data = static_cast<const float*>(b_p);
  const auto* c_data = static_cast<const float*>(c_p);
  auto* d_data = static_cast<float*>(d_p);
  const cudaError_t err =
      fc_emu::run_or_record(stream, [plan, alpha, beta, a_data, b_data, c_data, d_data] {
        try {
          fc_emu::run_lt_matmul(plan, alpha, beta, a_data, b_data, c_data, d_data);
        } catch (const std::bad_alloc&) {
          return cudaErrorMemoryAllocation;
        }
        return cudaSuccess;
      });
  if (err == cudaSuccess) return CUBLAS_STATUS_SUCCESS;
  return err == cudaErrorMemoryAllocation ? CUBLAS_STATUS_ALLOC_FAILED
                                          : CUBLAS_STATUS_EXECUTION_FAILED;
}
