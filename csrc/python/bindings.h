// What the two modules are made of. cpu_module.cpp builds fastconv._C from bind_X, cuda_module.cpp
// builds fastconv._cuda from bind_cuda_X; op X's pair lives in cpu_X.cpp and cuda_X.cpp and
// registers under the same Python signature (signatures.h).
#pragma once
#include <pybind11/pybind11.h>

namespace fastconv::bind {

// Only in _C: build info, threads, test hooks (cpu_runtime.cpp); the shared index math
// (cpu_geometry.cpp).
void bind_runtime(pybind11::module_& m);
void bind_geometry(pybind11::module_& m);
// Only in _cuda: DeviceArray, from_numpy/empty/zeros, DLPack and __cuda_array_interface__,
// allocator statistics, TF32 (cuda_array.cpp, cuda_dlpack.cpp).
void bind_device_array(pybind11::module_& m);

// The ops, CPU and GPU.
void bind_conv(pybind11::module_& m);
void bind_cuda_conv(pybind11::module_& m);
void bind_conv_pool(pybind11::module_& m);  // conv + ReLU + 2x2 max pool, fused (CPU only)
void bind_pool(pybind11::module_& m);
void bind_cuda_pool(pybind11::module_& m);
void bind_loss(pybind11::module_& m);  // softmax cross-entropy
void bind_cuda_loss(pybind11::module_& m);
void bind_dense(pybind11::module_& m);  // dense layer, bias
void bind_cuda_dense(pybind11::module_& m);
void bind_activation(pybind11::module_& m);  // relu, dropout
void bind_cuda_activation(pybind11::module_& m);
void bind_optim(pybind11::module_& m);  // SGD, Adam
void bind_cuda_optim(pybind11::module_& m);
void bind_data(pybind11::module_& m);  // gather_batch, accuracy_count (and argmax on the GPU)
void bind_cuda_data(pybind11::module_& m);
// Private hooks to single GPU kernels, for tests and benchmarks (_im2col, ...).
void bind_cuda_layout(pybind11::module_& m);
void bind_cuda_graph(pybind11::module_& m);  // after bind_device_array

}  // namespace fastconv::bind
