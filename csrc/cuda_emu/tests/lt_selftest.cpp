// The emulator's cuBLASLt (csrc/cuda_emu/cublaslt*.cpp) checked on its own against a naive
// product in double: every order of A, B and D, both transposes, one and three batches (A shared
// by all three: stride 0), beta 0 (C full of NaN, never read) and 1 (C is D), every implemented
// epilogue, TF32 on and off; then the refusals, and a matmul captured into a graph. Built with g++
// against the emulator's sources by tests/test_cuda_emulator_lt.py. Prints OK and exits 0, or
// names each failed check and exits 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "cublasLt.h"

namespace {

int g_failures = 0;
#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "lt_selftest.cpp:%d: failed: %s\n", __LINE__, #cond);  \
      ++g_failures;                                                               \
    }                                                                             \
  } while (0)

constexpr float kSentinel = 12345.0f;  // where D must not be written
const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kM = 5, kN = 7, kK = 9;
std::mt19937 g_rng(11);

// A test matrix: its shape, order and leading dimension (padded by 2), and its batch stride.
struct Mat {
  bool row;
  int rows, cols, batch;
  std::int64_t ld, stride;
  std::int64_t at(int b, int i, int j) const {
    return b * stride + (row ? std::int64_t(i) * ld + j : std::int64_t(j) * ld + i);
  }
  std::int64_t extent() const { return (row ? rows : cols) * ld; }
  std::size_t size() const { return std::size_t(stride * (batch - 1) + extent()); }
};

Mat mat(bool row, int rows, int cols, int batch, std::int64_t extra_stride, bool shared = false) {
  Mat m{row, rows, cols, batch, (row ? cols : rows) + 2, 0};
  if (!shared) m.stride = m.extent() + extra_stride;
  return m;
}

std::vector<float> random_data(std::size_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(g_rng);
  return v;
}

using Desc = cublasLtMatmulDesc_t;
using Lay = cublasLtMatrixLayout_t;

template <typename T>
void set_layout(Lay l, cublasLtMatrixLayoutAttribute_t attr, T value) {
  CHECK(cublasLtMatrixLayoutSetAttribute(l, attr, &value, sizeof value) == CUBLAS_STATUS_SUCCESS);
}
template <typename T>
void set_desc(Desc d, cublasLtMatmulDescAttributes_t attr, T value) {
  CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof value) == CUBLAS_STATUS_SUCCESS);
}

Lay layout(const Mat& m) {
  Lay l = nullptr;
  CHECK(cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, m.rows, m.cols, m.ld) == CUBLAS_STATUS_SUCCESS);
  set_layout(l, CUBLASLT_MATRIX_LAYOUT_ORDER,
             std::int32_t(m.row ? CUBLASLT_ORDER_ROW : CUBLASLT_ORDER_COL));
  set_layout(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, std::int32_t(m.batch));
  set_layout(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, m.stride);
  return l;
}

Desc descriptor(bool ta, bool tb, bool tf32, cublasLtEpilogue_t ep, const float* bias,
                std::int64_t bias_stride) {
  Desc d = nullptr;
  CHECK(cublasLtMatmulDescCreate(&d, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                                 CUDA_R_32F) == CUBLAS_STATUS_SUCCESS);
  set_desc(d, CUBLASLT_MATMUL_DESC_TRANSA, ta ? CUBLAS_OP_T : CUBLAS_OP_N);
  set_desc(d, CUBLASLT_MATMUL_DESC_TRANSB, tb ? CUBLAS_OP_T : CUBLAS_OP_N);
  set_desc(d, CUBLASLT_MATMUL_DESC_EPILOGUE, ep);
  set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, bias_stride);
  set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, std::int32_t(CUDA_R_32F));
  return d;
}

// A sum in double, with the sum of its terms' magnitudes (which scales the tolerance).
struct Sum {
  double value = 0.0, scale = 0.0;
  void add(double v) {
    value += v;
    scale += std::fabs(v);
  }
  bool near(double got, double tol, bool relu = false) const {
    return std::fabs(got - (relu && value < 0.0 ? 0.0 : value)) <= tol * scale + 1e-30;
  }
};

struct Case {
  bool row_a, row_b, row_d, ta, tb, tf32;
  int batch;
  float beta;
  cublasLtEpilogue_t ep;
};

bool adds_bias(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS;
}
bool relu(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_RELU || e == CUBLASLT_EPILOGUE_RELU_BIAS;
}

// One matmul of `c` through the heuristic and cublasLtMatmul, checked element by element.
void check_case(const Case& c, cublasLtHandle_t h, cudaStream_t s) {
  const float alpha = 0.75f;
  const Mat ma = mat(c.row_a, c.ta ? kK : kM, c.ta ? kM : kK, c.batch, 0, c.batch > 1);
  const Mat mb = mat(c.row_b, c.tb ? kN : kK, c.tb ? kK : kN, c.batch, 3);
  const Mat md = mat(c.row_d, kM, kN, c.batch, 1);
  const Mat mc = c.beta != 0.0f ? md : mat(!c.row_d, kM, kN, c.batch, 4);
  const std::vector<float> a = random_data(ma.size()), b = random_data(mb.size());
  std::vector<float> d(md.size(), kSentinel), c_nan(mc.size(), kNaN);
  const std::vector<float> c0 = random_data(md.size());  // C's values, where C is D
  if (c.beta != 0.0f)
    for (int bt = 0; bt < c.batch; ++bt)
      for (int j = 0; j < kN; ++j)
        for (int i = 0; i < kM; ++i) d[md.at(bt, i, j)] = c0[md.at(bt, i, j)];
  const bool grad_a = c.ep == CUBLASLT_EPILOGUE_BGRADA, grad_b = c.ep == CUBLASLT_EPILOGUE_BGRADB;
  const int bias_len = grad_b ? kN : kM;
  // A read bias is shared by the batches in TF32 cases (stride 0); a written one never is.
  const std::int64_t bias_stride = adds_bias(c.ep) && c.tf32 ? 0 : bias_len + 1;
  std::vector<float> bias = random_data(bias_stride * (c.batch - 1) + bias_len + 1);
  if (grad_a || grad_b) bias.assign(bias.size(), kNaN);
  const bool uses_bias = grad_a || grad_b || adds_bias(c.ep);

  cublasLtMatmulDesc_t desc =
      descriptor(c.ta, c.tb, c.tf32, c.ep, uses_bias ? bias.data() : nullptr, bias_stride);
  cublasLtMatrixLayout_t la = layout(ma), lb = layout(mb), lc = layout(mc), ld = layout(md);
  cublasLtMatmulPreference_t pref = nullptr;
  CHECK(cublasLtMatmulPreferenceCreate(&pref) == 0);
  const std::uint64_t max_ws = 1 << 20;
  CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &max_ws, sizeof max_ws) == 0);
  cublasLtMatmulHeuristicResult_t result[2] = {};
  int count = -1;
  CHECK(cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, ld, pref, 2, result, &count) == 0);
  CHECK(count == 1 && result[0].state == CUBLAS_STATUS_SUCCESS && result[0].workspaceSize == 0);
  const float* c_ptr = c.beta != 0.0f ? d.data() : c_nan.data();
  CHECK(cublasLtMatmul(h, desc, &alpha, a.data(), la, b.data(), lb, &c.beta, c_ptr, lc, d.data(),
                       ld, &result[0].algo, nullptr, 0, s) == CUBLAS_STATUS_SUCCESS);
  // The descriptors may go at once; the stream does not capture, so the work has run.
  cublasLtMatmulDescDestroy(desc);
  for (auto l : {la, lb, lc, ld}) cublasLtMatrixLayoutDestroy(l);
  cublasLtMatmulPreferenceDestroy(pref);

  const double tol = c.tf32 ? 1.5e-3 : 1e-5;  // relative to the sum of the terms' magnitudes
  const auto opa = [&](int bt, int i, int kk) {
    return double(a[c.ta ? ma.at(bt, kk, i) : ma.at(bt, i, kk)]);
  };
  const auto opb = [&](int bt, int kk, int j) {
    return double(b[c.tb ? mb.at(bt, j, kk) : mb.at(bt, kk, j)]);
  };
  std::vector<bool> in_d(d.size(), false);
  bool cases_ok = true;
  for (int bt = 0; bt < c.batch; ++bt) {
    for (int j = 0; j < kN; ++j)
      for (int i = 0; i < kM; ++i) {
        Sum want;
        for (int kk = 0; kk < kK; ++kk) want.add(alpha * opa(bt, i, kk) * opb(bt, kk, j));
        if (c.beta != 0.0f) want.add(c.beta * c0[md.at(bt, i, j)]);
        if (adds_bias(c.ep)) want.add(bias[bt * bias_stride + i]);
        cases_ok &= want.near(d[md.at(bt, i, j)], tol, relu(c.ep));
        in_d[md.at(bt, i, j)] = true;
      }
    for (int i = 0; (grad_a || grad_b) && i < bias_len; ++i) {
      Sum want;
      for (int kk = 0; kk < kK; ++kk) want.add(grad_a ? opa(bt, i, kk) : opb(bt, kk, i));
      cases_ok &= want.near(bias[bt * bias_stride + i], tol);
    }
    if (grad_a || grad_b) cases_ok &= std::isnan(bias[bt * bias_stride + bias_len]);  // padding
  }
  for (std::size_t e = 0; e < d.size(); ++e) cases_ok &= in_d[e] || d[e] == kSentinel;
  if (!cases_ok)
    std::fprintf(stderr,
                 "case: row a/b/d %d/%d/%d trans a/b %d/%d tf32 %d batch %d beta %g epilogue %d\n",
                 c.row_a, c.row_b, c.row_d, c.ta, c.tb, c.tf32, c.batch, c.beta, int(c.ep));
  CHECK(cases_ok);
}

void all_cases(cublasLtHandle_t h, cudaStream_t s) {
  const cublasLtEpilogue_t eps[] = {CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_RELU,
                                    CUBLASLT_EPILOGUE_BIAS,    CUBLASLT_EPILOGUE_RELU_BIAS,
                                    CUBLASLT_EPILOGUE_BGRADA,  CUBLASLT_EPILOGUE_BGRADB};
  for (int bits = 0; bits < 64; ++bits)
    for (int batch : {1, 3})
      for (float beta : {0.0f, 1.0f})
        for (cublasLtEpilogue_t ep : eps)
          check_case(Case{bool(bits & 1), bool(bits & 2), bool(bits & 4), bool(bits & 8),
                          bool(bits & 16), bool(bits & 32), batch, beta, ep},
                     h, s);
}

// TF32 rounds the inputs: 1 + 2^-12 is 1 in TF32, not in float.
void tf32_rounds(cublasLtHandle_t h, cudaStream_t s) {
  for (bool tf32 : {false, true}) {
    const float a = 1.0f + std::ldexp(1.0f, -12), b = 1.0f, one = 1.0f, zero = 0.0f;
    float d = kSentinel;
    Desc desc = descriptor(false, false, tf32, CUBLASLT_EPILOGUE_DEFAULT, nullptr, 0);
    Lay l = layout(mat(false, 1, 1, 1, 0));
    CHECK(cublasLtMatmul(h, desc, &one, &a, l, &b, l, &zero, &d, l, &d, l, nullptr, nullptr, 0,
                         s) == CUBLAS_STATUS_SUCCESS);
    CHECK(d == (tf32 ? 1.0f : a));
    cublasLtMatmulDescDestroy(desc);
    cublasLtMatrixLayoutDestroy(l);
  }
}

// Matmul and heuristic give `want` for a product set up as below and then changed by `spoil`, D
// left as it was; where only the pointers are wrong, the heuristic (which sees none) accepts.
template <typename Spoil>
void refused(cublasLtHandle_t h, cudaStream_t s, cublasStatus_t want, Spoil spoil,
             bool pointers_only = false) {
  const Mat ma = mat(false, kM, kK, 1, 0), mb = mat(true, kK, kN, 1, 0);
  const Mat md = mat(false, kM, kN, 1, 0);
  const std::vector<float> a = random_data(ma.size()), b = random_data(mb.size());
  std::vector<float> bias = random_data(kM), d(md.size(), kSentinel);
  cublasLtMatmulDesc_t desc =
      descriptor(false, false, false, CUBLASLT_EPILOGUE_RELU_BIAS, bias.data(), 0);
  cublasLtMatrixLayout_t la = layout(ma), lb = layout(mb), lc = layout(md), ld = layout(md);
  spoil(desc, la, lb, lc, ld);
  const float one = 1.0f;
  cublasLtMatmulHeuristicResult_t result{};
  int count = -1;
  const cublasStatus_t heur =
      cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, ld, nullptr, 1, &result, &count);
  CHECK(heur == (pointers_only ? CUBLAS_STATUS_SUCCESS : want));
  CHECK(count == (heur == CUBLAS_STATUS_SUCCESS ? 1 : 0));
  const cublasStatus_t got = cublasLtMatmul(h, desc, &one, a.data(), la, b.data(), lb, &one,
                                            d.data(), lc, d.data(), ld, nullptr, nullptr, 0, s);
  if (got != want) std::fprintf(stderr, "refused: got %d, want %d\n", int(got), int(want));
  CHECK(got == want);
  bool untouched = true;
  for (float v : d) untouched &= v == kSentinel;
  CHECK(untouched || want == CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulDescDestroy(desc);
  for (auto l : {la, lb, lc, ld}) cublasLtMatrixLayoutDestroy(l);
}

void refusals(cublasLtHandle_t h, cudaStream_t s) {
  const cublasStatus_t invalid = CUBLAS_STATUS_INVALID_VALUE;
  const cublasStatus_t unsupported = CUBLAS_STATUS_NOT_SUPPORTED;
  refused(h, s, CUBLAS_STATUS_SUCCESS, [](Desc, Lay, Lay, Lay, Lay) {});  // the base
  // Leading dimensions that make columns (COL) or rows (ROW) overlap.
  refused(h, s, invalid, [](Desc, Lay a, Lay, Lay, Lay) {
    set_layout(a, CUBLASLT_MATRIX_LAYOUT_LD, std::int64_t(kM - 1));
  });
  refused(h, s, invalid, [](Desc, Lay, Lay b, Lay, Lay) {
    set_layout(b, CUBLASLT_MATRIX_LAYOUT_LD, std::int64_t(kN - 1));
  });
  // Shapes that do not chain: k of op(A) against op(B)'s rows, D's rows, C's columns.
  refused(h, s, invalid, [](Desc, Lay, Lay b, Lay, Lay) {
    set_layout(b, CUBLASLT_MATRIX_LAYOUT_ROWS, std::uint64_t(kK + 1));
  });
  refused(h, s, invalid, [](Desc d, Lay, Lay, Lay, Lay) {
    set_desc(d, CUBLASLT_MATMUL_DESC_TRANSA, std::int32_t(CUBLAS_OP_T));
  });
  refused(h, s, invalid, [](Desc, Lay, Lay, Lay c, Lay) {
    set_layout(c, CUBLASLT_MATRIX_LAYOUT_COLS, std::uint64_t(kN - 1));
  });
  refused(h, s, invalid, [](Desc, Lay, Lay b, Lay, Lay) {
    set_layout(b, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, std::int32_t(2));
  });
  // A bias the epilogue needs, missing.
  refused(h, s, invalid, [](Desc d, Lay, Lay, Lay, Lay) {
    set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<void*>(nullptr));
  });
  refused(h, s, invalid, [](Desc d, Lay, Lay, Lay, Lay) {
    set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<void*>(nullptr));
    set_desc(d, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BGRADB);
  });
  // In place with C laid out unlike D (the heuristic sees no pointers and accepts).
  refused(h, s, invalid, [](Desc, Lay, Lay, Lay c, Lay) {
    set_layout(c, CUBLASLT_MATRIX_LAYOUT_LD, std::int64_t(kM + 3));
  }, true);
  // What the emulator does not implement.
  for (cublasLtEpilogue_t ep : {CUBLASLT_EPILOGUE_GELU, CUBLASLT_EPILOGUE_RELU_AUX_BIAS,
                                CUBLASLT_EPILOGUE_DRELU_BGRAD, cublasLtEpilogue_t(3)})
    refused(h, s, unsupported, [ep](Desc d, Lay, Lay, Lay, Lay) {
      set_desc(d, CUBLASLT_MATMUL_DESC_EPILOGUE, ep);
    });
  refused(h, s, unsupported, [](Desc, Lay, Lay, Lay, Lay d) {
    set_layout(d, CUBLASLT_MATRIX_LAYOUT_ORDER, std::int32_t(CUBLASLT_ORDER_COL32));
  });
  refused(h, s, unsupported, [](Desc d, Lay, Lay, Lay, Lay) {
    set_desc(d, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, std::int32_t(70));  // 32F_PEDANTIC
  });
  refused(h, s, unsupported, [](Desc d, Lay, Lay, Lay, Lay) {
    set_desc(d, CUBLASLT_MATMUL_DESC_POINTER_MODE, std::int32_t(CUBLASLT_POINTER_MODE_DEVICE));
  });
  // Attributes: a wrong size, an unknown one, a null buffer.
  Desc desc = descriptor(false, false, false, CUBLASLT_EPILOGUE_DEFAULT, nullptr, 0);
  const std::int64_t wide = 0;
  CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &wide, sizeof wide) ==
        invalid);
  CHECK(cublasLtMatmulDescSetAttribute(desc, cublasLtMatmulDescAttributes_t(9), &wide, 8) ==
        invalid);
  CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, nullptr, 4) == invalid);
  cublasLtMatrixLayout_t l = layout(mat(false, 2, 2, 1, 0));
  const std::int32_t narrow = 3;
  CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ROWS, &narrow, 4) == invalid);
  CHECK(cublasLtMatrixLayoutSetAttribute(l, cublasLtMatrixLayoutAttribute_t(7), &wide, 8) ==
        invalid);
  cublasLtMatmulPreference_t pref = nullptr;
  CHECK(cublasLtMatmulPreferenceCreate(&pref) == 0);
  CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &narrow, 4) == invalid);
  cublasLtMatmulHeuristicResult_t result{};
  int count = -1;
  CHECK(cublasLtMatmulAlgoGetHeuristic(h, desc, l, l, l, l, pref, 0, &result, &count) == invalid);
  CHECK(cublasLtMatmulAlgoGetHeuristic(nullptr, desc, l, l, l, l, pref, 1, &result, &count) ==
        CUBLAS_STATUS_NOT_INITIALIZED);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(l);
  cublasLtMatmulDescDestroy(desc);
}

// A RELU_BIAS matmul captured into a graph: alpha is the call's, the descriptors are gone before
// the replay, and the matrices and bias are read at each replay.
void captured(cublasLtHandle_t h) {
  cudaStream_t s = nullptr;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  const Mat ma = mat(true, kM, kK, 1, 0), mb = mat(false, kK, kN, 1, 0);
  const Mat md = mat(true, kM, kN, 1, 0);
  std::vector<float> a(ma.size()), b = random_data(mb.size()), bias(kM), d(md.size(), kSentinel);
  std::vector<float> c_nan(md.size(), kNaN);
  float alpha = 2.0f;
  const float zero = 0.0f;
  cublasLtMatmulDesc_t desc =
      descriptor(false, false, false, CUBLASLT_EPILOGUE_RELU_BIAS, bias.data(), 0);
  cublasLtMatrixLayout_t la = layout(ma), lb = layout(mb), ld = layout(md);
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cublasLtMatmul(h, desc, &alpha, a.data(), la, b.data(), lb, &zero, c_nan.data(), ld,
                       d.data(), ld, nullptr, nullptr, 0, s) == CUBLAS_STATUS_SUCCESS);
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(s, &graph) == cudaSuccess && graph != nullptr);
  cublasLtMatmulDescDestroy(desc);
  for (auto l : {la, lb, ld}) cublasLtMatrixLayoutDestroy(l);
  alpha = -100.0f;  // too late: the capture has 2
  bool untouched = true;
  for (float v : d) untouched &= v == kSentinel;
  CHECK(untouched);  // nothing ran yet
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int round = 0; round < 2; ++round) {
    for (auto* v : {&a, &bias}) {  // new values in the same memory, read at the replay
      const std::vector<float> fresh = random_data(v->size());
      std::copy(fresh.begin(), fresh.end(), v->begin());
    }
    CHECK(cudaGraphLaunch(exec, s) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    bool ok = true;
    for (int j = 0; j < kN; ++j)
      for (int i = 0; i < kM; ++i) {
        Sum want;
        want.add(bias[i]);
        for (int kk = 0; kk < kK; ++kk) want.add(2.0 * a[ma.at(0, i, kk)] * b[mb.at(0, kk, j)]);
        ok &= want.near(d[md.at(0, i, j)], 1e-5, true);
      }
    CHECK(ok);
  }
  CHECK(cudaGraphExecDestroy(exec) == cudaSuccess);
  CHECK(cudaGraphDestroy(graph) == cudaSuccess);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
}

}  // namespace

int main() {
  cublasLtHandle_t h = nullptr;
  CHECK(cublasLtCreate(&h) == CUBLAS_STATUS_SUCCESS && h != nullptr);
  cudaStream_t s = nullptr;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  all_cases(h, s);
  tf32_rounds(h, s);
  refusals(h, s);
  captured(h);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
  CHECK(cublasLtDestroy(h) == CUBLAS_STATUS_SUCCESS);
  CHECK(cudaGetLastError() == cudaSuccess);
  if (g_failures) return 1;
  std::printf("OK\n");
  return 0;
}
