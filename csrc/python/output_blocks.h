// Memory for the largest outputs. glibc serves a block of 32 MiB or more (the highest mmap
// threshold it accepts; cpu_runtime.cpp sets it) with fresh pages and unmaps it on free, so an
// op that returns such an array page-faults all of it in again on every call: ~12,500 faults
// for a 51 MB gradient, most of a pooling backward's time. Those outputs take their memory from
// a small cache of freed blocks instead; the numpy array's base is a capsule that hands the
// block back when the array dies.
#pragma once
#include <pybind11/pybind11.h>

#include <cstddef>

namespace fastconv::bind {

namespace py = pybind11;

constexpr std::size_t kCachedOutputBytes = std::size_t(32) << 20;

// A block of `bytes` (>= kCachedOutputBytes), 64-byte aligned: a freed one of the same size if
// the cache holds one, else a new one; null if none can be had.
void* take_output_block(std::size_t bytes);

// The owner of a block from take_output_block, for the array's base: back to the cache when the
// last reference goes (the cache keeps a few; the oldest beyond that are freed).
py::capsule output_block_owner(void* block, std::size_t bytes);

// Blocks the cache holds now, and their bytes (a testing hook).
std::size_t cached_output_blocks();
std::size_t cached_output_bytes();

}  // namespace fastconv::bind
