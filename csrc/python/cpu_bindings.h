// One registration function per op family; cpu_module.cpp calls them all.
#pragma once
#include <pybind11/pybind11.h>

namespace fastconv::bind {
void bind_runtime(pybind11::module_& m);      // cpu_runtime.cpp: build info, threads, test hooks
void bind_geometry(pybind11::module_& m);     // cpu_geometry.cpp: output sizes
void bind_conv(pybind11::module_& m);         // cpu_conv.cpp
void bind_pool(pybind11::module_& m);         // cpu_pool.cpp
void bind_loss(pybind11::module_& m);         // cpu_loss.cpp: softmax cross-entropy
void bind_dense(pybind11::module_& m);        // cpu_dense.cpp: dense layer, bias
void bind_activation(pybind11::module_& m);   // cpu_activation.cpp: relu, dropout
void bind_optim(pybind11::module_& m);        // cpu_optim.cpp: SGD, Adam
void bind_data(pybind11::module_& m);         // cpu_data.cpp: batch gathering, accuracy
}  // namespace fastconv::bind
