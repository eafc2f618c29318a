// Switching between the fibers of an emulated block. On x86-64 a hand-written switch that saves
// only what the System V ABI makes callee-saved (six registers, the SSE and x87 control words):
// glibc's swapcontext also saves the signal mask, one system call per switch, which made the
// emulator spend most of its time in the kernel. Elsewhere, ucontext.
#pragma once
#include <cstddef>

namespace fc_emu {

struct FiberContext {
  void* sp = nullptr;  // the saved stack pointer (x86-64), or unused
  void* uc = nullptr;  // a ucontext_t (other architectures)
};

// Prepares `to` to start `entry()` on the stack [stack, stack + bytes); entry must never return.
void fiber_prepare(FiberContext* to, char* stack, std::size_t bytes, void (*entry)());
// Saves the running context into `from` and continues `to`.
void fiber_switch(FiberContext* from, FiberContext* to);

}  // namespace fc_emu
