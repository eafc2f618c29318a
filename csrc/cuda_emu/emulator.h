// What the emulator's own files share (not seen by fastconv's sources).
#pragma once
#include "cuda_runtime.h"

namespace fc_emu {

// A misuse the GPU would answer with a hang or undefined behaviour: print why and abort, since
// the process cannot go on meaningfully (the fibers of a block cannot be unwound).
[[noreturn]] void fatal(const char* why);

// The error cudaGetLastError returns next on this thread.
void set_last_error(cudaError_t err);

}  // namespace fc_emu
