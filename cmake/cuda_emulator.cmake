# fastconv._cuda built for the CPU emulator (csrc/cuda_emu) with FASTCONV_CUDA=EMULATOR: the same
# host code and kernels as the GPU build, each .cu rewritten by build_support/emulate_cuda.py into
# C++ (only the launch syntax changes) and compiled by the C++ compiler against the emulator's
# cuda_runtime.h and cublas_v2.h. For tests on machines without a GPU (.ci/cuda-emulator); never
# installed by pip.
file(GLOB _fc_cu_sources CONFIGURE_DEPENDS csrc/cuda/*.cu)
set(_fc_emulated "")
foreach(_src IN LISTS _fc_cu_sources)
  get_filename_component(_name "${_src}" NAME_WE)
  set(_out "${CMAKE_CURRENT_BINARY_DIR}/emulated/${_name}.cpp")
  add_custom_command(
    OUTPUT "${_out}"
    COMMAND "${Python_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/build_support/emulate_cuda.py"
            "${_src}" "${_out}"
    DEPENDS "${_src}" "${CMAKE_CURRENT_SOURCE_DIR}/build_support/emulate_cuda.py"
    COMMENT "Rewriting ${_name}.cu for the CUDA emulator" VERBATIM)
  list(APPEND _fc_emulated "${_out}")
endforeach()
# As nvcc does for .cu files: define __CUDACC__ (kernels_common.cuh's reductions are behind it)
# and include cuda_runtime.h first. nvcc's own pragmas (#pragma unroll) mean nothing to g++.
set_source_files_properties(${_fc_emulated} PROPERTIES COMPILE_DEFINITIONS __CUDACC__
                            COMPILE_OPTIONS "-include;cuda_runtime.h;-Wno-unknown-pragmas")

file(GLOB _fc_emulator_sources CONFIGURE_DEPENDS csrc/cuda_emu/*.cpp)
file(GLOB _fc_cuda_host CONFIGURE_DEPENDS csrc/cuda/*.cpp)
file(GLOB _fc_cuda_bindings CONFIGURE_DEPENDS csrc/python/cuda_*.cpp csrc/python/common_*.cpp)
pybind11_add_module(_cuda MODULE ${_fc_emulated} ${_fc_emulator_sources} ${_fc_cuda_host}
                    ${_fc_cuda_bindings})
fastconv_module_defaults(_cuda)
# The emulator's headers stand where the CUDA toolkit's would be. No contraction into FMAs, so
# that __fadd_rn and friends are one rounded operation each.
target_include_directories(_cuda BEFORE PRIVATE csrc/cuda_emu/include)
target_include_directories(_cuda PRIVATE csrc/cuda_emu)
target_compile_options(_cuda PRIVATE -ffp-contract=off)
# The emulated cuBLAS computes with the CPU module's OpenBLAS (loaded already by _C).
target_link_libraries(_cuda PRIVATE fastconv_blas)
