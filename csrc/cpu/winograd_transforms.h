// The Winograd transforms of F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray's matrices; points 0,
// +-1 for F(2,3), and 0, +-1, +-2 for F(4,3), with the point at infinity in both).
//
// A tile's output is y = A^T [(G g G^T) . (B^T d B)] A for the 3x3 filter g and the a x a input
// patch d (a = m + 2). The weight gradient is the adjoint in g: G^T [(B^T d B) . (A dy A^T)] G.
// Each 2-D transform is a 1-D transform down the columns and then along the rows.
//
// Every transform works on kLanes tiles at once, each value a run of kLanes floats: the inner
// loops over lanes are what the compiler vectorises (the tiles are independent), so one patch
// element of kLanes tiles is one vector. The filter transforms run once per call, in double.
#pragma once
#include <cstddef>

namespace fastconv::cpu::wino {

constexpr int kLanes = 8;

// 1-D transforms of `n` values, each value `L` lanes at stride `is` (input) / `os` (output).
// The index i of a value names the element, l the lane.
#define FC_WINO_LANES for (int l = 0; l < L; ++l)

template <int M>
struct Variant;

template <>
struct Variant<2> {
  static constexpr int kM = 2, kA = 4;

  // v = B^T d
  template <int L, typename T>
  static void input(const T* d, std::ptrdiff_t is, T* v, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T d0 = d[l], d1 = d[is + l], d2 = d[2 * is + l], d3 = d[3 * is + l];
      v[l] = d0 - d2;
      v[os + l] = d1 + d2;
      v[2 * os + l] = d2 - d1;
      v[3 * os + l] = d1 - d3;
    }
  }
  // y = A^T m
  template <int L, typename T>
  static void output(const T* m, std::ptrdiff_t is, T* y, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T m0 = m[l], m1 = m[is + l], m2 = m[2 * is + l], m3 = m[3 * is + l];
      y[l] = m0 + m1 + m2;
      y[os + l] = m1 - m2 - m3;
    }
  }
  // u = A y (the adjoint of output): a gradient of the outputs into the product domain.
  template <int L, typename T>
  static void output_adjoint(const T* y, std::ptrdiff_t is, T* u, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T y0 = y[l], y1 = y[is + l];
      u[l] = y0;
      u[os + l] = y0 + y1;
      u[2 * os + l] = y0 - y1;
      u[3 * os + l] = -y1;
    }
  }
  // u = G g
  template <int L, typename T>
  static void filter(const T* g, std::ptrdiff_t is, T* u, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T g0 = g[l], g1 = g[is + l], g2 = g[2 * is + l];
      u[l] = g0;
      u[os + l] = T(0.5) * (g0 + g1 + g2);
      u[2 * os + l] = T(0.5) * (g0 - g1 + g2);
      u[3 * os + l] = g2;
    }
  }
  // g = G^T u (the adjoint of filter): a gradient in the product domain back to the filter.
  template <int L, typename T>
  static void filter_adjoint(const T* u, std::ptrdiff_t is, T* g, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T u0 = u[l], u1 = u[is + l], u2 = u[2 * is + l], u3 = u[3 * is + l];
      g[l] = u0 + T(0.5) * (u1 + u2);
      g[os + l] = T(0.5) * (u1 - u2);
      g[2 * os + l] = T(0.5) * (u1 + u2) + u3;
    }
  }
};

template <>
struct Variant<4> {
  static constexpr int kM = 4, kA = 6;

  template <int L, typename T>
  static void input(const T* d, std::ptrdiff_t is, T* v, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T d0 = d[l], d1 = d[is + l], d2 = d[2 * is + l], d3 = d[3 * is + l];
      const T d4 = d[4 * is + l], d5 = d[5 * is + l];
      // Shared partial sums: 4d2 - d4 and d1 - ... appear in several rows.
      const T a = d4 - T(4) * d2, b = d3 - T(4) * d1;  // rows 1, 2
      const T c = d4 - d2, e = T(2) * (d3 - d1);        // rows 3, 4
      v[l] = T(4) * d0 - T(5) * d2 + d4;
      v[os + l] = a + b;
      v[2 * os + l] = a - b;
      v[3 * os + l] = c + e;
      v[4 * os + l] = c - e;
      v[5 * os + l] = T(4) * d1 - T(5) * d3 + d5;
    }
  }
  template <int L, typename T>
  static void output(const T* m, std::ptrdiff_t is, T* y, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T m0 = m[l], m1 = m[is + l], m2 = m[2 * is + l], m3 = m[3 * is + l];
      const T m4 = m[4 * is + l], m5 = m[5 * is + l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      y[l] = m0 + s12 + s34;
      y[os + l] = d12 + T(2) * d34;
      y[2 * os + l] = s12 + T(4) * s34;
      y[3 * os + l] = d12 + T(8) * d34 + m5;
    }
  }
  template <int L, typename T>
  static void output_adjoint(const T* y, std::ptrdiff_t is, T* u, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T y0 = y[l], y1 = y[is + l], y2 = y[2 * is + l], y3 = y[3 * is + l];
      const T even1 = y0 + y2, odd1 = y1 + y3;
      const T even2 = y0 + T(4) * y2, odd2 = T(2) * y1 + T(8) * y3;
      u[l] = y0;
      u[os + l] = even1 + odd1;
      u[2 * os + l] = even1 - odd1;
      u[3 * os + l] = even2 + odd2;
      u[4 * os + l] = even2 - odd2;
      u[5 * os + l] = y3;
    }
  }
  template <int L, typename T>
  static void filter(const T* g, std::ptrdiff_t is, T* u, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T g0 = g[l], g1 = g[is + l], g2 = g[2 * is + l];
      u[l] = g0 / T(4);
      u[os + l] = -(g0 + g1 + g2) / T(6);
      u[2 * os + l] = -(g0 - g1 + g2) / T(6);
      u[3 * os + l] = g0 / T(24) + g1 / T(12) + g2 / T(6);
      u[4 * os + l] = g0 / T(24) - g1 / T(12) + g2 / T(6);
      u[5 * os + l] = g2;
    }
  }
  template <int L, typename T>
  static void filter_adjoint(const T* u, std::ptrdiff_t is, T* g, std::ptrdiff_t os) {
    FC_WINO_LANES {
      const T u0 = u[l], u1 = u[is + l], u2 = u[2 * is + l], u3 = u[3 * is + l];
      const T u4 = u[4 * is + l], u5 = u[5 * is + l];
      g[l] = u0 / T(4) - (u1 + u2) / T(6) + (u3 + u4) / T(24);
      g[os + l] = (u2 - u1) / T(6) + (u3 - u4) / T(12);
      g[2 * os + l] = (u3 + u4 - u1 - u2) / T(6) + u5;
    }
  }
};

#undef FC_WINO_LANES

// 2-D: out (no x no values of L lanes) = F in F^T for a 1-D transform F from ni to no values,
// in (ni x ni values). Down the columns into tmp (no x ni), then along tmp's rows.
template <int L, int NI, int NO, typename T, typename F>
inline void transform_2d(const T* in, T* out, F one_d) {
  T tmp[NO * NI * L];
  for (int j = 0; j < NI; ++j) one_d(in + j * L, NI * L, tmp + j * L, NI * L);
  for (int i = 0; i < NO; ++i) one_d(tmp + i * NI * L, L, out + i * NO * L, L);
}

}  // namespace fastconv::cpu::wino
