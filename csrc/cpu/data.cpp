#include "cpu/data.h"

#include <cstring>

namespace fastconv::cpu {
namespace {

// Strictly greater replaces; once the best is a NaN nothing replaces it (the CUDA kernels' rule).
template <typename T>
bool better(T v, T best) {
  return !(v <= best) && best == best;
}

template <typename T>
std::int64_t row_argmax(const T* row, index_t c) {
  T best = row[0];
  std::int64_t at = 0;
  for (index_t j = 1; j < c; ++j)
    if (better(row[j], best)) {
      best = row[j];
      at = j;
    }
  return at;
}

}  // namespace

void gather_rows(void* out, const void* data, const std::int64_t* indices, index_t n, index_t row,
                 std::size_t elem_bytes) {
  const std::size_t row_bytes = static_cast<std::size_t>(row) * elem_bytes;
  auto* dst = static_cast<unsigned char*>(out);
  const auto* src = static_cast<const unsigned char*>(data);
  for (index_t i = 0; i < n; ++i)
    std::memcpy(dst + static_cast<std::size_t>(i) * row_bytes,
                src + static_cast<std::size_t>(indices[i]) * row_bytes, row_bytes);
}

template <typename T>
index_t accuracy_count(const T* z, const std::int64_t* labels, const T* t, index_t n, index_t c) {
  index_t hits = 0;
  for (index_t i = 0; i < n; ++i) {
    const std::int64_t want = t ? row_argmax(t + i * c, c) : labels[i];
    hits += row_argmax(z + i * c, c) == want ? 1 : 0;
  }
  return hits;
}

template index_t accuracy_count<float>(const float*, const std::int64_t*, const float*, index_t,
                                       index_t);
template index_t accuracy_count<double>(const double*, const std::int64_t*, const double*, index_t,
                                        index_t);

}  // namespace fastconv::cpu
