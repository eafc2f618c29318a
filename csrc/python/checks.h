// Argument checks for the bindings: every malformed call becomes a TypeError or ValueError that
// names the argument and says what was expected. Kernels below this layer assume valid input.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <vector>

#include "fastconv/common.h"
#include "fastconv/dtype.h"

namespace fastconv::bind {
namespace py = pybind11;

using Dims = std::vector<index_t>;

std::string dims_str(const Dims& d);  // "(2, 3)", "(4,)"
std::string shape_str(const py::array& a);
std::string type_name(py::handle obj);
// A value in its shortest round-trip form in its own precision: -0.1f as "-0.1" (not
// "-0.10000000149011612"), -1.0 as "-1". Locale-free (std::to_chars).
std::string float_str(float v);
std::string float_str(double v);

// Scalars. pybind11's own casters would take None or a bool silently, so these check the type:
// a finite real number (Python or numpy; bools refused: lr=True is a bug, not a rate) and a bool.
double real_arg(py::handle obj, const char* name);
bool bool_arg(py::handle obj, const char* name);

std::vector<index_t> shape_of(const py::array& a);

// A float32/float64, C-contiguous numpy array of the given rank (ndim < 0: any rank). `layout`
// names the axes for the message, e.g. "(N, C, H, W)", or is "" where there is nothing to name.
py::array float_array(py::handle obj, const char* name, int ndim, const char* layout);
// The same, but an array that a kernel updates in place: also writeable.
py::array inout_array(py::handle obj, const char* name, int ndim, const char* layout);
// An integer (any width) C-contiguous array of the given rank; the caller converts if needed.
py::array int_array(py::handle obj, const char* name, int ndim, const char* layout);

DType dtype_of(const py::array& a);
void check_same_dtype(const py::array& a, const char* a_name, const py::array& b,
                      const char* b_name);
// "x must be 4-D (N, C, H, W); got shape (3, 8, 8)"; ndim < 0 takes any rank, and `layout` may
// be "" where there are no axes to name. For numpy and device arrays alike.
void check_rank(const Dims& shape, const char* name, int ndim, const char* layout);
// "w.shape[1] must be 3 (x's channels); got shape (...)". On shapes, so that the CPU bindings
// (numpy arrays) and the CUDA bindings (device arrays) word their errors alike.
void check_dim(const Dims& shape, const char* name, int axis, index_t expected, const char* what);
void check_shape_like(const Dims& shape, const char* name, const Dims& ref, const char* ref_name);
// A fused ReLU's backward mask: relu_y, the forward's output, with dy's rank, dtype and shape;
// nullopt where it is None.
std::optional<py::array> relu_y_arg(py::handle obj, const py::array& dy, int ndim,
                                    const char* layout);
// Two buffers of one in-place update must not overlap, or one's update would feed the other's
// (either backend: raw address ranges). The message says how many of a's bytes b shares.
void check_disjoint(const void* a, std::size_t a_bytes, const char* a_name, const void* b,
                    std::size_t b_bytes, const char* b_name);
// A conv bias: exactly k elements, as (k,) or (1, k, 1, 1).
void check_conv_bias(const Dims& shape, index_t k);

void check_positive(index_t v, const char* name);
void check_non_negative(index_t v, const char* name);


// Outputs are allocated here; a failed allocation is a MemoryError that gives the bytes asked for
// and the output's shape. In poison mode (tests) they are filled with NaN, or the lowest
// integer, so that any element a kernel forgets to write fails the comparison.
void set_poison_outputs(bool on);
bool poison_outputs();

template <typename T>
py::array_t<T> new_output(const std::vector<index_t>& shape);

template <typename T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <typename T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// Runs f(T{}) with T the element type float or double.
template <typename F>
decltype(auto) with_float(DType dt, F&& f) {
  if (dt == DType::f32) return f(float{});
  return f(double{});
}

// The body of most CPU bindings: a new output of the given dims and float dtype, which
// kernel(T* out) fills with the GIL released (so it must not touch Python objects).
template <typename Kernel>
py::array float_output(DType dt, const std::vector<index_t>& dims, Kernel&& kernel) {
  return with_float(dt, [&](auto t) -> py::array {
    using T = decltype(t);
    py::array out = new_output<T>(dims);
    T* p = ptr<T>(out);
    {
      py::gil_scoped_release nogil;
      kernel(p);
    }
    return out;
  });
}

// A convolution backward's outputs (dx, dw, db) in float dtype dt: dw always, dx (x's shape) and
// db (w's first dimension) when asked. kernel(T* dx, T* dw, T* db) fills them with the GIL
// released, given null for an output not asked for, which the tuple returns as None.
template <typename Kernel>
py::tuple conv_grads_output(DType dt, const std::vector<index_t>& x_shape,
                            const std::vector<index_t>& w_shape, bool need_dx, bool need_db,
                            Kernel&& kernel) {
  return with_float(dt, [&](auto t) -> py::tuple {
    using T = decltype(t);
    py::array dw = new_output<T>(w_shape);
    py::array dx, db;
    if (need_dx) dx = new_output<T>(x_shape);
    if (need_db) db = new_output<T>({w_shape[0]});
    {
      py::gil_scoped_release nogil;
      kernel(need_dx ? ptr<T>(dx) : nullptr, ptr<T>(dw), need_db ? ptr<T>(db) : nullptr);
    }
    return py::make_tuple(need_dx ? py::object(dx) : py::none(), dw,
                          need_db ? py::object(db) : py::none());
  });
}

// An input's data as the element type of the output `like`, for float_output's kernels.
template <typename T>
const T* cptr_like(const T* /*like*/, const py::array& a) {
  return cptr<T>(a);
}

}  // namespace fastconv::bind
