#include "cpu/workspace.h"

#include <limits>
#include <memory>

#include "fastconv/checked.h"
#include "fastconv/text.h"

namespace fastconv::cpu {

OutOfMemory::OutOfMemory(const char* kernel, std::size_t bytes, const char* what)
    : message_(text::cat(kernel, ": out of memory allocating ", bytes, " bytes of ", what)) {}

OutOfMemory::OutOfMemory(const char* kernel, const char* what)
    : message_(text::cat(kernel, ": out of memory: ", what, " needs more than ",
                         std::numeric_limits<std::size_t>::max(), " bytes")) {}

std::size_t SizeCalc::mul(std::size_t a, std::size_t b) const {
  std::size_t r;
  if (!try_mul(a, b, &r)) throw OutOfMemory(kernel, what);
  return r;
}

std::size_t SizeCalc::add(std::size_t a, std::size_t b) const {
  std::size_t r;
  if (!try_add(a, b, &r)) throw OutOfMemory(kernel, what);
  return r;
}

std::size_t SizeCalc::count(index_t v) const { return v > 0 ? static_cast<std::size_t>(v) : 0; }

namespace {

constexpr std::align_val_t kAlign{64};
constexpr std::size_t kSlots = 6;

struct AlignedFree {
  void operator()(void* p) const { ::operator delete(p, kAlign); }
};

struct Buffer {
  std::unique_ptr<void, AlignedFree> data;
  std::size_t bytes = 0;
};

}  // namespace

void* reserve_bytes(std::size_t slot, std::size_t bytes, const SizeCalc& request) {
  thread_local Buffer buffers[kSlots];
  Buffer& b = buffers[slot];
  if (b.bytes < bytes) {
    b.data.reset();  // the old contents are not needed: free first, so the peak is the new size
    b.bytes = 0;
    void* p = ::operator new(bytes, kAlign, std::nothrow);
    if (!p) throw OutOfMemory(request.kernel, bytes, request.what);
    b.data.reset(p);
    b.bytes = bytes;
  }
  return b.data.get();
}

}  // namespace fastconv::cpu
