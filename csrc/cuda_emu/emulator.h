// What the emulator's own files share (not seen by fastconv's sources).
#pragma once
#include "cuda_runtime.h"

namespace fc_emu {

// A misuse the GPU would answer with a hang or undefined behaviour: print why and abort, since
// the process cannot go on meaningfully (the fibers of a block cannot be unwound).
[[noreturn]] void fatal(const char* why);

// What the host asked of the device: kernel launches, and the calls that make the host wait for
// it (a stream, event or device synchronisation, a synchronous copy). The same host code runs on
// a GPU, so these counts are a GPU's too; benchmarks/launch_count.py reads them through
// fc_emu_counts (exported by the emulator build of _cuda).
void count_launch();
void count_wait();

// The error cudaGetLastError returns next on this thread.
void set_last_error(cudaError_t err);

}  // namespace fc_emu
