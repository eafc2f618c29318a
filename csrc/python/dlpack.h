// The DLPack ABI (https://dmlc.github.io/dlpack/latest/c_api.html), written out from the public
// spec: the structs that cross library boundaries inside "dltensor" capsules. Only the fields
// fastconv reads or writes are commented.
#pragma once
#include <cstdint>

namespace fastconv::dlpack {

enum DLDeviceType : std::int32_t { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13 };
enum DLDataTypeCode : std::uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2 };

struct DLDevice {
  DLDeviceType device_type;
  std::int32_t device_id;
};

struct DLDataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // in elements; NULL means compact row-major
  std::uint64_t byte_offset;
};

// The unversioned form (capsule "dltensor"), understood by every consumer.
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// DLPack >= 1.0 (capsule "dltensor_versioned"), returned when the consumer passes max_version.
struct DLPackVersion {
  std::uint32_t major;
  std::uint32_t minor;
};
constexpr std::uint64_t kFlagReadOnly = 1u << 0;

struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  std::uint64_t flags;
  DLTensor dl_tensor;
};

}  // namespace fastconv::dlpack
