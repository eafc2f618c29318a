// DLPack for DeviceArray (cuda_dlpack.cpp): the __dlpack__ method and from_dlpack.
#pragma once
#include <pybind11/pybind11.h>

#include "cuda/device_array.h"

namespace fastconv::bind {
namespace py = pybind11;

// DeviceArray.__dlpack__(stream=None, *, max_version=None, dl_device=None, copy=None).
py::object dlpack_export(const cuda::DeviceArray& d, py::handle stream_obj,
                         py::handle max_version, py::handle dl_device, py::handle copy);
// A view of another library's CUDA array (anything with __dlpack__, or a capsule); no copy.
cuda::DeviceArray from_dlpack(py::handle obj);

}  // namespace fastconv::bind
