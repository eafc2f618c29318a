#include "python/cpu_bindings.h"

namespace fastconv::bind {

void bind_pool(pybind11::module_& m) { (void)m; }

}  // namespace fastconv::bind
