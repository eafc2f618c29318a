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
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fastconv/common.h"

namespace fastconv::cuda {

// A slot's value while no kernel has lowered it.
constexpr std::int64_t kNoBadPosition = std::numeric_limits<std::int64_t>::max();

// The whole error message for a bad position (it may read the offending value from the device).
using BadPositionMessage = std::function<std::string(index_t position)>;

// A free slot of the ledger, holding kNoBadPosition: the op's kernel atomicMins the first bad
// position it meets into it, and `message` words the error if one does. With no slot free, the
// pending ones are checked first, here (which may throw an earlier op's error). While a graph is
// being captured the slot is the graph's instead (see CapturedChecks), and it is a
// std::runtime_error if none is free, since a capture cannot wait for the check.
unsigned long long* defer_check(BadPositionMessage message);
constexpr index_t kMaxDeferred = 1024;

// Reads the pending slots (one wait, one copy), resets and forgets them all; throws
// std::invalid_argument (a ValueError in Python) with the message of the first one, in the order
// claimed, that a kernel lowered. Returns at once when none is pending.
void check_deferred();

// Copies `nbytes` of device memory at `src` to the host at `dst` and checks the pending slots,
// both with one wait (the ledger is read into pinned memory, so only the data's copy blocks); then
// throws as check_deferred does, before the caller may use dst. Refused during a capture.
void copy_to_host_checked(void* dst, const void* src, std::size_t nbytes);

// The slots a captured graph's kernels write, claimed once at capture. Each launch of the graph
// arms them (makes them pending, once each, in the order claimed); destroying the set gives them
// back to the ledger after the next check, since a launch may still be pending.
class CapturedChecks {
 public:
  CapturedChecks() = default;
  CapturedChecks(const CapturedChecks&) = delete;
  CapturedChecks& operator=(const CapturedChecks&) = delete;
  ~CapturedChecks();
  void arm() const;

 private:
  friend void begin_deferred_capture();
  friend std::unique_ptr<CapturedChecks> end_deferred_capture();
  friend unsigned long long* defer_check(BadPositionMessage message);
  std::vector<std::pair<int, std::shared_ptr<const BadPositionMessage>>> claims_;
};

// Called by graph.cpp around a capture: makes the ledger if it is not there yet (which cannot
// happen inside the capture), then routes defer_check's claims into the returned set.
void begin_deferred_capture();
std::unique_ptr<CapturedChecks> end_deferred_capture();

}  // namespace fastconv::cuda
