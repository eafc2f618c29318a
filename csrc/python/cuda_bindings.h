// What fastconv._cuda is made of: cuda_module.cpp (devices, runtime) calls these in turn. The
// kernels' bindings mirror the CPU module's (cpu_bindings.h) file by file, with the same names,
// argument names, order and return conventions, taking and returning DeviceArrays.
#pragma once
#include <pybind11/pybind11.h>

namespace fastconv::bind {

// DeviceArray, from_numpy/empty/zeros, DLPack and __cuda_array_interface__, allocator statistics,
// TF32 (cuda_array.cpp, cuda_dlpack.cpp).
void bind_device_array(pybind11::module_& m);
void bind_cuda_conv(pybind11::module_& m);        // cuda_conv.cpp
void bind_cuda_pool(pybind11::module_& m);        // cuda_pool.cpp
void bind_cuda_loss(pybind11::module_& m);        // cuda_loss.cpp: softmax cross-entropy
void bind_cuda_dense(pybind11::module_& m);       // cuda_dense.cpp: dense layer, bias
void bind_cuda_activation(pybind11::module_& m);  // cuda_activation.cpp: relu, dropout
void bind_cuda_optim(pybind11::module_& m);       // cuda_optim.cpp: SGD, Adam
void bind_cuda_data(pybind11::module_& m);        // cuda_data.cpp: gather_batch, argmax, accuracy

}  // namespace fastconv::bind
