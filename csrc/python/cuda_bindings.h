// What fastconv._cuda is made of: cuda_module.cpp (devices, runtime) calls these in turn.
#pragma once
#include <pybind11/pybind11.h>

namespace fastconv::bind {

// DeviceArray, from_numpy/empty/zeros, DLPack and __cuda_array_interface__, allocator statistics,
// TF32 (cuda_array.cpp).
void bind_device_array(pybind11::module_& m);
// The CUDA kernels, with the same names and signatures as fastconv._C's (the kernels branch).
void bind_cuda_kernels(pybind11::module_& m);

}  // namespace fastconv::bind
