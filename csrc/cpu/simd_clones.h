// Runtime ISA choice for the hand-vectorised loops (Winograd transforms, pooling, the softmax's
// exp): each marked function is compiled three times, for the generic x86-64 target (SSE2),
// x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512), and the loader picks the best one this CPU
// runs (GCC's function multiversioning, resolved once at load).
//
// The v3/v4 clones contract a * b + c into one FMA (GCC's default -ffp-contract=fast under
// gnu++17), which rounds once instead of twice. So results are bitwise reproducible on one
// machine, for any thread count, but their last bits may differ between CPUs with and without
// FMA — as the BLAS's already do (OpenBLAS DYNAMIC_ARCH runs a different sgemm kernel per CPU).
// Feature-named clones ("avx2") would not do: "avx2" does not imply FMA.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define FC_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FC_SIMD_CLONES_ENABLED 1
#else
#define FC_SIMD_CLONES
#define FC_SIMD_CLONES_ENABLED 0
#endif

namespace fastconv::cpu {

// The clone the loader picks on this CPU: "x86-64-v4", "x86-64-v3" or "x86-64" (also where
// nothing is cloned). For build_info and the benchmark header.
inline const char* simd_level() {
#if FC_SIMD_CLONES_ENABLED
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
#endif
  return "x86-64";
}

}  // namespace fastconv::cpu
