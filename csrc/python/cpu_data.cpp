// Bindings for the training loop's data helpers, with the names and checks of the CUDA ones:
// gather_batch (a batch's rows of a dataset) and accuracy_count (rows predicted right).
#include <cstdint>
#include <string>

#include "cpu/data.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

using Int64s = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A dataset: float32/float64 images or int64/float labels, C-contiguous, rows along axis 0.
py::array dataset(py::handle obj) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("data must be a numpy array (rows, ...); got " +
                         (obj.is_none() ? std::string("None") : type_name(obj)));
  auto a = py::reinterpret_borrow<py::array>(obj);
  const bool is_int64 = a.dtype().is(py::dtype::of<std::int64_t>());
  if (!is_int64 && !a.dtype().is(py::dtype::of<float>()) &&
      !a.dtype().is(py::dtype::of<double>()))
    throw py::type_error("data must have dtype float32, float64 or int64; got " + dtype_str(a));
  check_dataset(shape_of(a));
  return is_int64 ? int_array(a, "data", -1, "(rows, ...)")
                  : float_array(a, "data", -1, "(rows, ...)");
}

py::array gather_batch(py::handle data_obj, py::handle idx_obj) {
  const py::array data = dataset(data_obj);
  const Int64s idx = Int64s::ensure(int_array(idx_obj, "indices", 1, "(B,)"));
  const index_t rows_in = data.shape(0);
  const std::int64_t* p = idx.data();
  check_indices(p, idx.size(), rows_in);
  std::vector<index_t> shape = shape_of(data);
  shape[0] = idx.size();
  const index_t row = rows_in > 0 ? data.size() / rows_in : 0;
  auto gather = [&](auto tag) -> py::array {
    using T = decltype(tag);
    py::array batch = new_output<T>(shape);
    py::gil_scoped_release nogil;
    cpu::gather_rows(batch.mutable_data(), data.data(), p, idx.size(), row, sizeof(T));
    return batch;
  };
  if (data.dtype().is(py::dtype::of<std::int64_t>())) return gather(std::int64_t{});
  return with_float(dtype_of(data), gather);
}

// Rows of z whose argmax is the target: t (N,) integer labels or (N, C) one-hot rows of z's
// dtype (compared by their argmax).
py::array accuracy_count(py::handle z_obj, py::handle t_obj) {
  const py::array z = float_array(z_obj, "z", 2, "(N, C)");
  check_logits(shape_of(z));
  const index_t n = z.shape(0), c = z.shape(1);
  if (!py::isinstance<py::array>(t_obj))
    throw py::type_error("t must be a numpy array of (N,) integer labels or (N, C) target "
                         "weights; got " +
                         (t_obj.is_none() ? std::string("None") : type_name(t_obj)));
  const auto t = py::reinterpret_borrow<py::array>(t_obj);
  py::array dense;  // (N, C) one-hot rows, or
  Int64s labels;    // (N,) labels
  const bool is_labels = t.ndim() != 2;
  if (!is_labels) {
    dense = float_array(t, "t", 2, "(N, C)");
    check_same_dtype(dense, "t", z, "z");
    check_shape_like(shape_of(dense), "t", shape_of(z), "z");
  } else if (t.ndim() != 1) {
    throw py::value_error("t must be (N, C) target weights or (N,) integer labels; got shape " +
                          shape_str(t));
  } else {
    if (t.dtype().kind() != 'i' && t.dtype().kind() != 'u')
      throw py::type_error("t must have an integer dtype as (N,) labels; got " + dtype_str(t));
    auto raw = int_array(t, "t", 1, "(N,)");
    check_dim(shape_of(raw), "t", 0, n, "z's batch N");
    // A uint64 label of 2**63 or more wraps to a negative int64 here: it matched no row before
    // and matches none after.
    labels = Int64s::ensure(raw);
  }
  auto count = new_output<std::int64_t>({});
  with_float(dtype_of(z), [&](auto tag) {
    using T = decltype(tag);
    const T* zp = cptr<T>(z);
    const T* tp = is_labels ? nullptr : cptr<T>(dense);
    const std::int64_t* lp = is_labels ? labels.data() : nullptr;
    py::gil_scoped_release nogil;
    *count.mutable_data() = cpu::accuracy_count(zp, lp, tp, n, c);
  });
  return count;
}

}  // namespace

void bind_data(py::module_& m) { def_data(m, &gather_batch, &accuracy_count); }

}  // namespace fastconv::bind
