// Runtime ISA choice for the element-wise, pooling and loss loops: each marked function is
// compiled for the generic x86-64 target (SSE2) and for AVX2, and the loader picks per CPU
// (GCC's function multiversioning, as the Winograd transforms do). The AVX2 clone is built
// without FMA, so both clones round identically: results do not depend on the CPU. (Checked:
// a generic and an -mavx2 build of vexp.h and pool_2x2.h give the same bytes; an FMA build,
// e.g. -march=native or an "fma" clone, contracts the exp's polynomial and does not.)
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define FC_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FC_SIMD_CLONES
#endif
