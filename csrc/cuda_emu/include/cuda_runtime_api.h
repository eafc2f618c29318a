// The emulator's stand-in for <cuda_runtime_api.h>: the same declarations as cuda_runtime.h.
#pragma once
#include "cuda_runtime.h"
