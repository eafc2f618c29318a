// Scalar arguments shared by the CPU and CUDA bindings: each check raises a TypeError or
// ValueError naming the argument, as checks.h does for arrays.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastconv/common.h"

namespace fastconv::bind {
namespace py = pybind11;

std::string num_str(double v);
double ratio_arg(py::handle obj);                          // dropout ratio in [0, 1)
std::uint64_t seed_arg(py::handle obj);                    // 0 <= seed < 2**64
double non_negative_arg(py::handle obj, const char* name);  // a finite real >= 0
double beta_arg(py::handle obj, const char* name);          // a finite real in [0, 1)
index_t step_arg(py::handle obj);                           // Adam's 1-based step
// An int or a tuple/list of ints, each in [0, 2**63) and with fewer than 2**63 elements in all;
// an entry out of range is named as shape[i] and given as the user wrote it.
std::vector<index_t> shape_arg(py::handle obj);

}  // namespace fastconv::bind
