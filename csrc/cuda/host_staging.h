// Small host-to-device copies that do not wait for the device. A copy from pageable (numpy) memory
// must finish before the host may change that memory, so it cost a wait for all queued work. Here
// the bytes go first into a slot of a ring of pinned (page-locked) host buffers, and the device
// copies from the slot in stream order; a slot is reused once the event recorded after its copy
// has completed (in a training loop, long before). A step's batch indices (512 bytes at batch 64)
// thus upload without stopping the host, as a captured CUDA graph will need.
#pragma once
#include <cstddef>

namespace fastconv::cuda {

// Bytes a slot holds; larger copies take the waiting path.
constexpr std::size_t kStagingSlotBytes = std::size_t(64) << 10;

// Queues the copy of `nbytes` from host `src` to device `dst` on stream() and returns true, the
// host bytes already copied out; false (nothing done) when the copy is larger than a slot or no
// pinned memory could be had (then the caller copies and waits).
bool stage_to_device(void* dst, const void* src, std::size_t nbytes);

}  // namespace fastconv::cuda
