// The max pools' index arrays in the two forms the CPU bindings take (cpu_pool.cpp,
// cpu_conv_pool.cpp): int64 flat indices (window_indices=False) or uint8 window codes (True).
#pragma once
#include <cstdint>
#include <string>

#include "python/checks.h"

namespace fastconv::bind {

// Runs f(I{}) with I the index type: std::uint8_t for window codes, else index_t.
template <typename F>
decltype(auto) with_index(bool codes, F&& f) {
  if (codes) return f(std::uint8_t{});
  return f(index_t{});
}

// A backward's indices: window codes must already be uint8; flat indices of any integer width
// are widened to int64 (a stray index cannot fault, it just never matches).
inline py::array pool_indices(py::handle obj, bool codes, const char* layout) {
  py::array idx = int_array(obj, "indices", 4, layout);
  const bool is_u8 = idx.dtype().is(py::dtype::of<std::uint8_t>());
  if (codes && !is_u8)
    throw py::type_error("indices must have dtype uint8 (window codes, window_indices=True); got " +
                         py::str(idx.dtype()).cast<std::string>());
  if (!codes && !idx.dtype().is(py::dtype::of<std::int64_t>()))
    idx = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(idx);
  return idx;
}

}  // namespace fastconv::bind
