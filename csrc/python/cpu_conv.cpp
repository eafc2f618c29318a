#include "python/cpu_bindings.h"

namespace fastconv::bind {

void bind_conv(pybind11::module_& m) { (void)m; }

}  // namespace fastconv::bind
