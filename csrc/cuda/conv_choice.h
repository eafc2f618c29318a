// Which conv2d kernels ConvKernel::automatic runs (conv.h): im2col + cuBLAS, or the
// implicit-GEMM kernels (conv_implicit.h, conv_implicit_backward.h), chosen per shape by timing
// them on this device, once.
//
// With autotuning off (the default) automatic is always im2col + cuBLAS: the kernels a call runs
// then depend on the shape alone, so a rerun in another process gives the same bits. With it on
// (set_conv2d_autotune, fastconv.set_conv_autotune), a call runs the remembered choice for its
// shape; the first call of a shape outside a graph capture times each candidate on the call's
// own arguments (one warm-up run each, then three rounds of one run each, alternating; the
// median of each), remembers the fastest for the rest of the process, and runs it once more so
// that its result is the call's. Near ties may choose differently in another process, so results
// may differ there in their last bits, as with cuDNN's benchmark mode (unless the choices are
// remembered from a saved table). A capture never times: an untimed shape runs im2col there.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "fastconv/geometry.h"

namespace fastconv::cuda {

void set_conv2d_autotune(bool on);
bool conv2d_autotune();

// What is being chosen: the forward's kernel, or the backward's pair (dw with db, dx).
enum class ConvPass : std::uint8_t { forward, backward };

// A candidate's bits: kImplicit (the forward's implicit kernel; the backward's wgrad, dw with db)
// and kImplicitDx (the backward's dgrad). 0 is im2col + cuBLAS throughout.
constexpr unsigned kImplicit = 1, kImplicitDx = 2;

// Runs the call, through run(c), with the candidate c that automatic chooses: the remembered
// one; or, where autotuning is on and nothing is remembered, the fastest of `candidates` (bit c
// set: candidate c is allowed; candidate 0 always is), timed through run(c) first; otherwise 0.
// run(c) must queue the whole call's work on stream() with candidate c. `need_dx` is part of what
// is remembered (a backward without dx times differently), as are the shape and tf32().
void conv2d_run_autotuned(ConvPass pass, const Conv2dShape& s, bool need_dx, unsigned candidates,
                          const std::function<void(unsigned)>& run);

// What autotuning has measured, for benchmarks/switches.py and the tests.
struct ConvTiming {
  ConvPass pass;
  Conv2dShape shape;
  bool need_dx, tf32;
  unsigned chosen;
  std::vector<double> median_ms;  // per candidate; < 0 where it was not allowed
};
std::vector<ConvTiming> conv2d_autotune_table();
void clear_conv2d_autotune_table();
// Remember a choice as if timed (its median_ms may be empty): a table saved from an earlier
// process, or a test's. Replaces what is remembered for the same key.
void remember_conv2d_choice(const ConvTiming& t);

}  // namespace fastconv::cuda
