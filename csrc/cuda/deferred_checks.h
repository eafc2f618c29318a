// Data errors that only a kernel can see (a label outside [0, C), a bad target weight, a gather
// index out of range) are reported without a round trip to the host: the kernel lowers a slot of
// a device-side ledger, the op records how to word its error, and the host reads the ledger at the
// next point where it waits for the device anyway (a copy to the host, synchronize(),
// check_errors()). So a training step never stops the host for a check, allocates nothing for
// one, and a CUDA graph can capture it.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "fastconv/common.h"

namespace fastconv::cuda {

// A slot's value while no kernel has lowered it.
constexpr std::int64_t kNoBadPosition = std::numeric_limits<std::int64_t>::max();

// The whole error message for a bad position (it may read the offending value from the device).
using BadPositionMessage = std::function<std::string(index_t position)>;

// The next slot of the ledger, holding kNoBadPosition: the op's kernel atomicMins the first bad
// position it meets into it, and `message` words the error if one does. With all kMaxDeferred
// slots pending, they are checked first, here (which may throw an earlier op's error).
unsigned long long* defer_check(BadPositionMessage message);
constexpr index_t kMaxDeferred = 1024;

// Reads the pending slots (one wait, one copy), resets and forgets them all; throws
// std::invalid_argument (a ValueError in Python) with the message of the first one, in the order
// claimed, that a kernel lowered. Returns at once when none is pending.
void check_deferred();

}  // namespace fastconv::cuda
