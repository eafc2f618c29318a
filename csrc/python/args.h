// Scalar arguments shared by the CPU and CUDA bindings: each check raises a TypeError or
// ValueError naming the argument, as checks.h does for arrays.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fastconv/common.h"
#include "fastconv/dtype.h"

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
// An int (Python or numpy; bools refused) that fits in 64 bits, or nullopt; the one int parser
// under the int arguments here and in shapes.h and cuda_args.h, which word their own errors.
std::optional<index_t> int64_of(py::handle obj);
// str(operator.index(obj)): an int argument as the user gave it, for a message.
std::string index_str(py::handle obj);
// A Python int (or numpy integer; bools refused) that fits in int64, else TypeError/ValueError
// naming the argument (the geometry bindings and shape4_arg).
index_t int64_arg(py::handle obj, const char* name);

// The one dtype parser: numpy.dtype(obj), or nullopt where numpy takes obj for no dtype at all.
std::optional<py::dtype> numpy_dtype_of(py::handle obj);
// A numpy dtype as fastconv's (float32, float64 or int64, in native byte order), or nullopt.
std::optional<DType> fastconv_dtype(const py::dtype& dt);
// The dtype of an array made from nothing (dropout_mask): float32 or float64. float32_only (the
// GPU) refuses float64 in its own words.
DType dtype_arg(py::handle obj, bool float32_only);

// The scalars of one SGD step, in the order they are checked; nesterov needs momentum > 0.
struct SgdArgs {
  double lr, momentum;
  bool nesterov;
  double weight_decay;
};
SgdArgs sgd_args(py::handle lr, py::handle momentum, py::handle nesterov, py::handle weight_decay);

// The scalars of one Adam step, in the order they are checked; eps must be > 0.
struct AdamArgs {
  index_t step;
  double lr, beta1, beta2, eps, weight_decay;
};
AdamArgs adam_args(py::handle step, py::handle lr, py::handle beta1, py::handle beta2,
                   py::handle eps, py::handle weight_decay);

}  // namespace fastconv::bind
