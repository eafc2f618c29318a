// What the module was built with, thread control, and the poison switch the tests use.
#include <omp.h>

#include "cpu/blas.h"
#include "fastconv/build_config.h"
#include "python/checks.h"
#include "python/cpu_bindings.h"

namespace fastconv::bind {

void bind_runtime(py::module_& m) {
  m.def("build_info", [] {
    py::dict d;
    d["version"] = FASTCONV_VERSION;
    d["compiler"] = FASTCONV_CXX_COMPILER;
    d["blas"] = FASTCONV_BLAS_NAME;
    d["blas_version"] = FASTCONV_BLAS_VERSION;
    d["blas_config"] = cpu::blas_config();
    d["openmp"] = _OPENMP;
    d["cuda_built"] = bool(FASTCONV_CUDA_BUILT);
    d["cuda_reason"] = FASTCONV_CUDA_REASON;
    d["cuda_archs"] = FASTCONV_CUDA_ARCHS;
    d["cublas_version"] = FASTCONV_CUBLAS_VERSION;
    d["nvcc_version"] = FASTCONV_NVCC_VERSION;
    return d;
  });
  m.def("set_num_threads", [](int n) {
    check_positive(n, "n");
    cpu::set_num_threads(n);
  }, py::arg("n"), "Threads for both OpenMP loops and OpenBLAS GEMMs.");
  m.def("get_num_threads", &cpu::num_threads);
  m.def("get_blas_num_threads", &cpu::blas_num_threads);
  m.def("_set_poison_outputs", &set_poison_outputs, py::arg("on"),
        "Testing hook: fill every newly allocated output with NaN before the kernel runs.");
  m.def("_poison_outputs", &poison_outputs);
}

}  // namespace fastconv::bind
