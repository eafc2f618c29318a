#include "fiber_switch.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__linux__)

// fc_emu_switch(void** save_sp, void* load_sp): push the callee-saved registers and control words,
// store rsp, load the other fiber's rsp, pop its registers and return into it.
asm(R"(
  .text
  .p2align 4
  .globl fc_emu_switch
  .hidden fc_emu_switch
  .type fc_emu_switch, @function
fc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size fc_emu_switch, .-fc_emu_switch
)");
extern "C" void fc_emu_switch(void** save_sp, void* load_sp);

namespace fc_emu {

void fiber_prepare(FiberContext* to, char* stack, std::size_t bytes, void (*entry)()) {
  // The top, 16-byte aligned. entry() starts as if called: its return slot at top - 16 (holding
  // 0: it never returns), so that rsp = top - 8 on entry, as the ABI wants after a call.
  auto top = (reinterpret_cast<std::uintptr_t>(stack) + bytes) & ~std::uintptr_t(15);
  auto* slot = reinterpret_cast<std::uint64_t*>(top);
  slot[-1] = 0;
  slot[-2] = reinterpret_cast<std::uint64_t>(entry);  // fc_emu_switch's ret lands here
  for (int r = 3; r <= 8; ++r) slot[-r] = 0;          // rbp, rbx, r12-r15
  std::uint32_t controls[2] = {0x1f80u, 0x037fu};     // MXCSR and x87 control word at reset
  std::memcpy(&slot[-9], controls, sizeof controls);
  to->sp = &slot[-9];
}

void fiber_switch(FiberContext* from, FiberContext* to) { fc_emu_switch(&from->sp, to->sp); }

}  // namespace fc_emu

#else
#include <ucontext.h>

#include <new>

namespace fc_emu {

namespace {
ucontext_t* context_of(FiberContext* c) {
  if (!c->uc) c->uc = new ucontext_t();
  return static_cast<ucontext_t*>(c->uc);
}
}  // namespace

void fiber_prepare(FiberContext* to, char* stack, std::size_t bytes, void (*entry)()) {
  ucontext_t* uc = context_of(to);
  getcontext(uc);
  uc->uc_stack.ss_sp = stack;
  uc->uc_stack.ss_size = bytes;
  uc->uc_link = nullptr;
  makecontext(uc, entry, 0);
}

void fiber_switch(FiberContext* from, FiberContext* to) {
  swapcontext(context_of(from), context_of(to));
}

}  // namespace fc_emu
#endif
