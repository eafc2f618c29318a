// The element types fastconv's arrays hold, one enum for both modules: the CPU bindings take
// float32 and float64 numpy arrays, the GPU's DeviceArray also holds int64 (labels, indices).
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastconv {

enum class DType : std::uint8_t { f32, f64, i64 };

inline std::size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
  }
  return 0;
}

// numpy's names: "float32", "float64", "int64".
inline const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
  }
  return "?";
}

}  // namespace fastconv
