// The one fill kernel (fill.cu): DeviceArray.fill, and the poisoned outputs of tests.
#pragma once
#include <cstdint>

#include "fastconv/common.h"

namespace fastconv::cuda {

// Every element of dst = value, queued on stream().
void fill(float* dst, index_t count, float value);
void fill(std::int64_t* dst, index_t count, std::int64_t value);

}  // namespace fastconv::cuda
