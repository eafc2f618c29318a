#include "cpu/winograd_choice.h"

#include <atomic>
#include <stdexcept>

#include "cpu/winograd.h"
#include "fastconv/text.h"

namespace fastconv::cpu {
namespace {

constexpr const char* kNames[] = {"auto", "im2col", "winograd", "winograd_f2", "winograd_f4"};
enum Algorithm { kAuto, kIm2col, kWinograd, kWinogradF2, kWinogradF4 };

std::atomic<int> g_algorithm{kAuto};

// Auto takes Winograd only where both channel counts reach this: the element-wise GEMMs are
// k x c x tiles, and with few channels the transforms, not the GEMMs, are the work (the tutorial
// CNN's first layer, 1 -> 32 channels, is faster as im2col).
constexpr index_t kAutoMinChannels = 16;

// The tile where the setting leaves it to the shape. F(4x4, 3x3) saves 4x the multiplications
// and F(2x2, 3x3) 2.25x; F(4,3)'s larger transform constants cost accuracy (about 5x im2col's
// error against 1x; BENCHMARKS.md, "CPU Winograd"). F(4,3) was the faster one on every shape
// measured, 28x28 to 56x56 and 16 to 128 channels, so it is the choice for all of them; F(2,3)
// stays available by name for accuracy.
int tile_for(const Conv2dShape&) { return 4; }

}  // namespace

void set_conv_algorithm(const std::string& name) {
  for (int i = 0; i < 5; ++i) {
    if (name == kNames[i]) {
      g_algorithm.store(i, std::memory_order_relaxed);
      return;
    }
  }
  throw std::invalid_argument(text::cat(
      "algorithm must be one of 'auto', 'im2col', 'winograd', 'winograd_f2', 'winograd_f4'; got '",
      name, "'"));
}

const char* conv_algorithm() { return kNames[g_algorithm.load(std::memory_order_relaxed)]; }

int winograd_tile(const Conv2dShape& s, std::size_t elem_bytes) {
  const int a = g_algorithm.load(std::memory_order_relaxed);
  if (a == kIm2col || elem_bytes != sizeof(float) || !winograd_applies(s)) return 0;
  if (a == kWinogradF2) return 2;
  if (a == kWinogradF4) return 4;
  if (a == kAuto && (s.c < kAutoMinChannels || s.k < kAutoMinChannels)) return 0;
  return tile_for(s);
}

const char* conv2d_algorithm(const Conv2dShape& s, std::size_t elem_bytes) {
  const int m = winograd_tile(s, elem_bytes);
  return m == 0 ? "im2col" : m == 2 ? "winograd_f2" : "winograd_f4";
}

}  // namespace fastconv::cpu
