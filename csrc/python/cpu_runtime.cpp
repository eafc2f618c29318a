// What the module was built with, thread control, fork hooks, and the poison switch the tests use.
#include <omp.h>

#include <cstdlib>  // defines __GLIBC__ where glibc is the C library
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cpu/blas.h"
#include "cpu/simd_clones.h"
#include "cpu/threads.h"
#include "fastconv/build_config.h"
#include "python/checks.h"
#include "python/bindings.h"
#include "python/output_blocks.h"

namespace fastconv::bind {

namespace {

// Every op returns fresh numpy arrays of megabytes. glibc serves those with mmap and hands them
// back to the kernel on free, so the next step page-faults them in again: ~6,500 faults (13 ms of
// a ~100 ms training step) on these VMs. Serving blocks up to 32 MiB from the heap and never
// trimming it keeps freed activations for reuse; resident memory stays at the step's peak.
void keep_freed_blocks() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

void bind_runtime(py::module_& m) {
  keep_freed_blocks();
  m.def("build_info", [] {
    py::dict d;
    d["version"] = FASTCONV_VERSION;
    d["compiler"] = FASTCONV_CXX_COMPILER;
    d["blas"] = FASTCONV_BLAS_NAME;
    d["blas_version"] = FASTCONV_BLAS_VERSION;
    d["blas_config"] = cpu::blas_config();
    d["openmp"] = _OPENMP;
    d["cpu_simd"] = cpu::simd_level();
    d["cuda_built"] = bool(FASTCONV_CUDA_BUILT);
    d["cuda_reason"] = FASTCONV_CUDA_REASON;
    d["cuda_archs"] = FASTCONV_CUDA_ARCHS;
    d["cublas_version"] = FASTCONV_CUBLAS_VERSION;
    d["nvcc_version"] = FASTCONV_NVCC_VERSION;
    return d;
  });
  // fastconv.set_num_threads checks n's type and range first, with the same message.
  m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"),
        "Threads for every CPU kernel, process-wide (OpenBLAS itself stays at one).");
  m.def("get_num_threads", &cpu::num_threads);
  m.attr("MAX_THREADS") = cpu::kMaxThreads;
  m.def("_measured_team", &cpu::measured_team,
        "Testing hook: the threads a parallel region opened by the calling thread now gets.");
  m.def("_before_fork", &cpu::before_fork,
        "os.register_at_fork hook: release the calling thread's OpenMP pool (0: released).");
  m.def("_after_fork_in_child", &cpu::after_fork_in_child,
        "os.register_at_fork hook: one thread in the child if the pool could not be released.");
  m.def("get_blas_num_threads", &cpu::blas_num_threads);
  m.def("_set_poison_outputs", &set_poison_outputs, py::arg("on"),
        "Testing hook: fill every newly allocated output with NaN before the kernel runs.");
  m.def("_poison_outputs", &poison_outputs);
  m.def("_cached_output_blocks", [] {
    return py::make_tuple(cached_output_blocks(), cached_output_bytes());
  }, "Testing hook: the freed output blocks of 32 MiB or more kept for reuse (count, bytes).");
}

}  // namespace fastconv::bind
