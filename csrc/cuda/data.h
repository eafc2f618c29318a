// The training loop's device-side helpers (gathering a batch, argmax, accuracy), bound in
// python/cuda_data.cpp. They launch on stream() and return without synchronising.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// out (n, row) = data[indices[i]] rows, data (rows_in, row) of 4- or 8-byte elements.
// *first_bad (a slot of deferred_checks.h's ledger) is lowered to the position of the first index
// outside [0, rows_in), if any.
void gather_rows(void* out, const void* data, const std::int64_t* indices, index_t n,
                 index_t rows_in, index_t row, int elem_bytes, unsigned long long* first_bad);

// argmax (n) of each row of x (n, c): the first maximum; a NaN wins and stays (as max pooling).
void argmax_rows(std::int64_t* out, const float* x, index_t n, index_t c);
// count (a scalar) = rows whose argmax equals the label; labels (n) int64 or, when t is given,
// the argmax of the target row t (n, c).
void accuracy_count(std::int64_t* count, const float* z, const std::int64_t* labels,
                    const float* t, index_t n, index_t c);

}  // namespace fastconv::cuda
