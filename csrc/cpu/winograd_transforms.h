// The Winograd transforms of F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray's matrices; points 0,
// +-1 for F(2,3), and 0, +-1, +-2 for F(4,3), with the point at infinity in both).
//
// A tile's output is y = A^T [(G g G^T) . (B^T d B)] A for the 3x3 filter g and the a x a input
// patch d (a = m + 2). The weight gradient is the adjoint in g: G^T [(B^T d B) . (A dy A^T)] G.
// Each 2-D transform is a 1-D transform down the columns and then along the rows.
//
// Every 1-D transform works on the n tiles of a tile row at once: value i of tile t is in[i][t],
// so the loop over t is contiguous and the compiler vectorises it (the tiles are independent).
// The filter transforms run once per call, with n = 1, in double.
#pragma once
#include <cstddef>

namespace fastconv::cpu::wino {

// The loop over the tiles. The rows are distinct arrays, which `omp simd` asserts (the compiler
// cannot prove it through the arrays of row pointers, and left the loops scalar without it).
#define FC_WINO_LANES _Pragma("omp simd") for (std::ptrdiff_t l = 0; l < n; ++l)
// Row i of the input / output as a restrict-qualified local.
#define FC_IN(i) const T* __restrict in##i = in[i]
#define FC_OUT(i) T* __restrict out##i = out[i]

template <int M>
struct Variant;

template <>
struct Variant<2> {
  static constexpr int kM = 2, kA = 4;

  // v = B^T d
  template <typename T>
  static void input(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3);
    FC_WINO_LANES {
      const T d0 = in0[l], d1 = in1[l], d2 = in2[l], d3 = in3[l];
      out0[l] = d0 - d2;
      out1[l] = d1 + d2;
      out2[l] = d2 - d1;
      out3[l] = d1 - d3;
    }
  }
  // y = A^T m
  template <typename T>
  static void output(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3);
    FC_OUT(0); FC_OUT(1);
    FC_WINO_LANES {
      const T m0 = in0[l], m1 = in1[l], m2 = in2[l], m3 = in3[l];
      out0[l] = m0 + m1 + m2;
      out1[l] = m1 - m2 - m3;
    }
  }
  // u = A y (the adjoint of output): a gradient of the outputs into the product domain.
  template <typename T>
  static void output_adjoint(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3);
    FC_WINO_LANES {
      const T y0 = in0[l], y1 = in1[l];
      out0[l] = y0;
      out1[l] = y0 + y1;
      out2[l] = y0 - y1;
      out3[l] = -y1;
    }
  }
  // u = G g
  template <typename T>
  static void filter(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3);
    FC_WINO_LANES {
      const T g0 = in0[l], g1 = in1[l], g2 = in2[l];
      out0[l] = g0;
      out1[l] = T(0.5) * (g0 + g1 + g2);
      out2[l] = T(0.5) * (g0 - g1 + g2);
      out3[l] = g2;
    }
  }
  // g = G^T u (the adjoint of filter): a gradient in the product domain back to the filter.
  template <typename T>
  static void filter_adjoint(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3);
    FC_OUT(0); FC_OUT(1); FC_OUT(2);
    FC_WINO_LANES {
      const T u0 = in0[l], u1 = in1[l], u2 = in2[l], u3 = in3[l];
      out0[l] = u0 + T(0.5) * (u1 + u2);
      out1[l] = T(0.5) * (u1 - u2);
      out2[l] = T(0.5) * (u1 + u2) + u3;
    }
  }
};

template <>
struct Variant<4> {
  static constexpr int kM = 4, kA = 6;

  template <typename T>
  static void input(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3); FC_IN(4); FC_IN(5);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3); FC_OUT(4); FC_OUT(5);
    FC_WINO_LANES {
      const T d0 = in0[l], d1 = in1[l], d2 = in2[l], d3 = in3[l];
      const T d4 = in4[l], d5 = in5[l];
      // Shared partial sums: 4d2 - d4 and d1 - ... appear in several rows.
      const T a = d4 - T(4) * d2, b = d3 - T(4) * d1;  // rows 1, 2
      const T c = d4 - d2, e = T(2) * (d3 - d1);        // rows 3, 4
      out0[l] = T(4) * d0 - T(5) * d2 + d4;
      out1[l] = a + b;
      out2[l] = a - b;
      out3[l] = c + e;
      out4[l] = c - e;
      out5[l] = T(4) * d1 - T(5) * d3 + d5;
    }
  }
  template <typename T>
  static void output(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3); FC_IN(4); FC_IN(5);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3);
    FC_WINO_LANES {
      const T m0 = in0[l], m1 = in1[l], m2 = in2[l], m3 = in3[l];
      const T m4 = in4[l], m5 = in5[l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      out0[l] = m0 + s12 + s34;
      out1[l] = d12 + T(2) * d34;
      out2[l] = s12 + T(4) * s34;
      out3[l] = d12 + T(8) * d34 + m5;
    }
  }
  template <typename T>
  static void output_adjoint(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3); FC_OUT(4); FC_OUT(5);
    FC_WINO_LANES {
      const T y0 = in0[l], y1 = in1[l], y2 = in2[l], y3 = in3[l];
      const T even1 = y0 + y2, odd1 = y1 + y3;
      const T even2 = y0 + T(4) * y2, odd2 = T(2) * y1 + T(8) * y3;
      out0[l] = y0;
      out1[l] = even1 + odd1;
      out2[l] = even1 - odd1;
      out3[l] = even2 + odd2;
      out4[l] = even2 - odd2;
      out5[l] = y3;
    }
  }
  template <typename T>
  static void filter(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2);
    FC_OUT(0); FC_OUT(1); FC_OUT(2); FC_OUT(3); FC_OUT(4); FC_OUT(5);
    FC_WINO_LANES {
      const T g0 = in0[l], g1 = in1[l], g2 = in2[l];
      out0[l] = g0 / T(4);
      out1[l] = -(g0 + g1 + g2) / T(6);
      out2[l] = -(g0 - g1 + g2) / T(6);
      out3[l] = g0 / T(24) + g1 / T(12) + g2 / T(6);
      out4[l] = g0 / T(24) - g1 / T(12) + g2 / T(6);
      out5[l] = g2;
    }
  }
  template <typename T>
  static void filter_adjoint(const T* const* in, T* const* out, std::ptrdiff_t n) {
    FC_IN(0); FC_IN(1); FC_IN(2); FC_IN(3); FC_IN(4); FC_IN(5);
    FC_OUT(0); FC_OUT(1); FC_OUT(2);
    FC_WINO_LANES {
      const T u0 = in0[l], u1 = in1[l], u2 = in2[l], u3 = in3[l];
      const T u4 = in4[l], u5 = in5[l];
      out0[l] = u0 / T(4) - (u1 + u2) / T(6) + (u3 + u4) / T(24);
      out1[l] = (u2 - u1) / T(6) + (u3 - u4) / T(12);
      out2[l] = (u3 + u4 - u1 - u2) / T(6) + u5;
    }
  }
};

#undef FC_WINO_LANES
#undef FC_IN
#undef FC_OUT

// One NI x NI block (row-major) to NO x NO: F in F^T for the 1-D transform F (NI -> NO values),
// down the columns into tmp (NO x NI), then along tmp's rows. For the filters: one tile.
template <int NI, int NO, typename T, typename F>
inline void transform_2d(const T* in, T* out, F one_d) {
  T tmp[NO * NI];
  const T* ip[NI];
  T* op[NO];
  for (int j = 0; j < NI; ++j) {
    for (int i = 0; i < NI; ++i) ip[i] = in + i * NI + j;
    for (int a = 0; a < NO; ++a) op[a] = tmp + a * NI + j;
    one_d(ip, op, 1);
  }
  for (int a = 0; a < NO; ++a) {
    for (int j = 0; j < NI; ++j) ip[j] = tmp + a * NI + j;
    for (int b = 0; b < NO; ++b) op[b] = out + a * NO + b;
    one_d(ip, op, 1);
  }
}

}  // namespace fastconv::cpu::wino
