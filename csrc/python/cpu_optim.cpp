#include "python/cpu_bindings.h"

namespace fastconv::bind {

void bind_optim(pybind11::module_& m) { (void)m; }

}  // namespace fastconv::bind
