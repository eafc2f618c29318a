// Bindings of the training loop's helpers on the GPU: gather_batch, argmax, accuracy_count.
// Argument checks and outputs: cuda_args.h.
#include <pybind11/numpy.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "cuda/data.h"
#include "cuda/deferred_checks.h"
#include "fastconv/text.h"
#include "python/bindings.h"
#include "python/checks.h"
#include "python/cuda_args.h"
#include "python/shapes.h"
#include "python/signatures.h"

namespace fastconv::bind {
namespace {

// Rows data[indices] of a device-resident dataset (float32 images or int64/float32 labels).
// indices: a 1-D int64 device array, or a 1-D integer numpy array (uploaded; checked on the host
// first). An index outside [0, len(data)) is a ValueError naming indices: at once for numpy
// indices, at the next check point for device ones (cuda/deferred_checks.h).
py::object gather_batch(py::handle data_obj, py::handle idx_obj) {
  const DeviceArray& data = device_arg(data_obj, "data");
  if (data.dtype() == DType::f64)
    throw py::type_error("data must have dtype float32 or int64 (the GPU kernels take float32 "
                         "only); got float64");
  check_dataset(data.shape());
  const index_t rows_in = data.dim(0);
  index_t row = 1;  // elements per row
  for (int i = 1; i < data.ndim(); ++i) row *= data.dim(i);
  std::optional<DeviceArray> uploaded;
  const DeviceArray* idx = nullptr;
  if (py::isinstance<py::array>(idx_obj)) {
    auto host = int_array(idx_obj, "indices", 1, "(B,)");
    auto i64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(host);
    const std::int64_t* p = i64.data();
    check_indices(p, i64.size(), rows_in);
    uploaded.emplace(std::vector<index_t>{static_cast<index_t>(i64.size())}, DType::i64);
    uploaded->copy_from_host(p, static_cast<std::size_t>(i64.nbytes()));
    idx = &*uploaded;
  } else {
    idx = &int64_dev(idx_obj, "indices", 1, "(B,)");
  }
  std::vector<index_t> shape = data.shape();
  shape[0] = idx->dim(0);
  DeviceArray batch = new_output(shape, data.dtype());
  const DeviceArray indices = *idx;
  unsigned long long* first_bad = cuda::defer_check([indices, rows_in](index_t bad) {
    std::int64_t value = 0;  // the error path: fetch the one index
    indices.read_elements(bad, 1, &value);
    return text::cat("indices must be in [0, ", rows_in, ") (data's rows); got ", value,
                     " at position ", bad);
  });
  cuda::gather_rows(batch.raw(), data.raw(), cp<std::int64_t>(*idx), idx->dim(0), rows_in, row,
                    static_cast<int>(dtype_size(data.dtype())), first_bad);
  return out(std::move(batch));
}

py::object argmax(py::handle x_obj) {
  const DeviceArray& x = float_dev(x_obj, "x", 2, "(N, C)");
  check_positive(x.dim(1), "x.shape[1] (the classes C)");
  DeviceArray idx = new_output({x.dim(0)}, DType::i64);
  cuda::argmax_rows(mp<std::int64_t>(idx), cp<float>(x), x.dim(0), x.dim(1));
  return out(std::move(idx));
}

// Rows of z whose argmax is the target: t (N,) int64 labels or (N, C) float32 one-hot rows.
py::object accuracy_count(py::handle z_obj, py::handle t_obj) {
  const DeviceArray& z = logits(z_obj);
  const Targets t = targets(t_obj, z);
  DeviceArray count = new_output({}, DType::i64);
  cuda::accuracy_count(mp<std::int64_t>(count), cp<float>(z),
                       t.is_labels ? cp<std::int64_t>(*t.t) : nullptr,
                       t.is_labels ? nullptr : cp<float>(*t.t), z.dim(0), z.dim(1));
  return out(std::move(count));
}

}  // namespace

void bind_cuda_data(py::module_& m) {
  def_data(m, &gather_batch, &accuracy_count);
  m.def("argmax", &argmax, py::arg("x"), "Per-row argmax of x (N, C) as int64 (N,).");
}

}  // namespace fastconv::bind
