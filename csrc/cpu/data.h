// The training loop's data helpers, twins of the CUDA ones in cuda/data.cu: gathering a
// batch's rows out of a dataset, and counting the rows a model got right.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cpu {

// out (n, row) = the rows data[indices[i]] of data (rows_in, row), elements of elem_bytes bytes.
// Every index must lie in [0, rows_in) (the binding checks).
void gather_rows(void* out, const void* data, const std::int64_t* indices, index_t n, index_t row,
                 std::size_t elem_bytes);

// Rows of z (n, c) whose argmax equals labels[i] or, when t is given, the argmax of t's row i.
// The argmax is the first maximum, and a NaN wins and stays (numpy's argmax, max pooling's rule);
// a label outside [0, c) simply never matches.
template <typename T>
index_t accuracy_count(const T* z, const std::int64_t* labels, const T* t, index_t n, index_t c);

}  // namespace fastconv::cpu
