// fastconv._C: the CPU kernels. Each op family registers itself from its own file.
#include "python/bindings.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastconv CPU kernels (C++17, OpenMP, OpenBLAS)";
  using namespace fastconv::bind;
  bind_runtime(m);
  bind_geometry(m);
  bind_conv(m);
  bind_conv_pool(m);
  bind_pool(m);
  bind_loss(m);
  bind_dense(m);
  bind_activation(m);
  bind_optim(m);
  bind_data(m);
}
