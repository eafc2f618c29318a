// cpu/vexp.h's exp, element-wise, for tests/test_vexp.py to compare with numpy's over the float32
// range (through ctypes: a test hook, not part of the Python API, so it has no binding).
#include <cstdint>

#include "cpu/vexp.h"

extern "C" __attribute__((visibility("default"))) void fastconv_vexp_probe(float* y,
                                                                          const float* x,
                                                                          std::int64_t n) {
  fastconv::cpu::vexp::exp_array(y, x, n);
}
