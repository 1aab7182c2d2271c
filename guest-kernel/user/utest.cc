// utest: user-mode self-tests. Each check owns one bit of the exit code
// (0 = all passed); the kernel's test harness prints one TAP line per bit
// (names in kernel/selftest.cc, kUserChecks, same order).
#include "user/runtime.h"

namespace {

using user::Syscall;

bool DebugPrintReturnsLength() {
  const char msg[] = "# utest: DebugPrint\n";
  return user::DebugPrint(msg, sizeof(msg) - 1) == static_cast<int64_t>(sizeof(msg) - 1);
}

bool YieldReturnsZero() { return user::Yield() == 0; }

bool UnknownSyscallRejected() {
  return Syscall(abi::kSysCount) == abi::kErrNoSyscall && Syscall(1000) == abi::kErrNoSyscall &&
         Syscall(~0ull) == abi::kErrNoSyscall;
}

// No handle but 1 exists in utest's table: everything else is forged.
bool ForgedHandlesRejected() {
  return Syscall(abi::kSysSend, 42) == abi::kErrBadHandle &&
         Syscall(abi::kSysRecv, 0) == abi::kErrBadHandle &&
         Syscall(abi::kSysCall, 0x102) == abi::kErrBadHandle &&
         Syscall(abi::kSysReply, 7, abi::kTagReplyRecv) == abi::kErrBadHandle &&
         Syscall(abi::kSysReply, 0, 0) == abi::kErrNoReply &&
         Syscall(abi::kSysInvoke, 42, abi::kOpInspect) == abi::kErrBadHandle;
}

// Every register but RAX (result), RCX and R11 survives a system call.
bool RegistersPreserved() {
  uint64_t bad;
  asm volatile(
      "push %%rbp\n"
      "mov $0x1111, %%rbx\n mov $0x2222, %%rbp\n mov $0x3333, %%r12\n"
      "mov $0x4444, %%r13\n mov $0x5555, %%r14\n mov $0x6666, %%r15\n"
      "mov $0x7777, %%rdi\n mov $0x8888, %%rsi\n mov $0x9999, %%rdx\n"
      "mov $0xaaaa, %%r10\n mov $0xbbbb, %%r8\n mov $0xcccc, %%r9\n"
      "mov $4, %%eax\n"
      "syscall\n"
      "sub $0x1111, %%rbx\n sub $0x2222, %%rbp\n sub $0x3333, %%r12\n"
      "sub $0x4444, %%r13\n sub $0x5555, %%r14\n sub $0x6666, %%r15\n"
      "sub $0x7777, %%rdi\n sub $0x8888, %%rsi\n sub $0x9999, %%rdx\n"
      "sub $0xaaaa, %%r10\n sub $0xbbbb, %%r8\n sub $0xcccc, %%r9\n"
      "or %%rbp, %%rbx\n or %%r12, %%rbx\n or %%r13, %%rbx\n or %%r14, %%rbx\n"
      "or %%r15, %%rbx\n or %%rdi, %%rbx\n or %%rsi, %%rbx\n or %%rdx, %%rbx\n"
      "or %%r10, %%rbx\n or %%r8, %%rbx\n or %%r9, %%rbx\n or %%rax, %%rbx\n"
      "pop %%rbp\n"
      "mov %%rbx, %%rax\n"
      : "=a"(bad)
      :
      : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "memory");
  return bad == 0;
}

bool BadPointersRejected() {
  struct Case {
    uint64_t ptr, len;
  };
  const Case cases[] = {
      {0, 1},                           // null page
      {0xffffffff80100000ull, 16},      // kernel image
      {0xffff800000000000ull, 16},      // direct map
      {0x0000800000000000ull, 16},      // first non-canonical address
      {0x00007ffffffff800ull, 0x1000},  // runs off the end of user space
      {0xffffffffffffff00ull, 0x200},   // wraps around
      {0x0000000000400000ull - 8, 16},  // starts below the image, unmapped
      {0x10000000ull, 8},               // unmapped user address
  };
  for (const Case& c : cases) {
    if (Syscall(abi::kSysDebugPrint, c.ptr, c.len) != abi::kErrBadPointer) {
      user::Print("# utest: bad pointer {:#x}+{:#x} accepted\n", c.ptr, c.len);
      return false;
    }
  }
  static const char text[] = "x";
  return Syscall(abi::kSysDebugPrint, reinterpret_cast<uint64_t>(text), abi::kDebugPrintMax + 1) ==
         abi::kErrInvalidArgument;
}

bool LazyHeap(uint64_t heap, uint64_t size) {
  const uint64_t offsets[] = {0, 4096, 1 << 20, size - 8};
  for (const uint64_t off : offsets) {
    volatile uint64_t* p = reinterpret_cast<volatile uint64_t*>(heap + off);
    if (*p != 0) return false;  // fresh pages are zero
    *p = off ^ 0x5a5a5a5a;
    if (*p != (off ^ 0x5a5a5a5a)) return false;
  }
  // A system call on a never-touched heap page backs it too (the page is
  // zero: print it as a zero-length prefix of a written byte on the next page).
  char* untouched = reinterpret_cast<char*>(heap + (2 << 20));
  untouched[4096] = '\n';
  return Syscall(abi::kSysDebugPrint, reinterpret_cast<uint64_t>(untouched + 4096), 1) == 1 &&
         Syscall(abi::kSysDebugPrint, reinterpret_cast<uint64_t>(untouched + 4095), 0) == 0;
}

[[gnu::noinline]] uint64_t DeepStack(int depth) {
  volatile uint8_t buf[8192];
  buf[0] = static_cast<uint8_t>(depth);
  buf[sizeof(buf) - 1] = 1;
  return depth == 0 ? buf[0] + buf[sizeof(buf) - 1] : DeepStack(depth - 1) + buf[0];
}

bool LazyStack() { return DeepStack(8) == 1 + 36; }

// The self handle is a process token, not a control token.
bool SpawnDenied() {
  return user::Spawn(abi::kSelfHandle, "hello", 10) == abi::kErrWrongType &&
         user::Spawn(5, "hello", 10) == abi::kErrBadHandle;
}

}  // namespace

extern "C" int64_t UserMain(uint64_t heap, uint64_t heap_size, uint64_t, uint64_t) {
  int64_t failed = 0;
  int bit = 0;
  const bool results[] = {DebugPrintReturnsLength(), YieldReturnsZero(),   UnknownSyscallRejected(),
                          ForgedHandlesRejected(),   RegistersPreserved(), BadPointersRejected(),
                          LazyHeap(heap, heap_size), LazyStack(),          SpawnDenied()};
  for (const bool ok : results) {
    if (!ok) failed |= 1ll << bit;
    ++bit;
  }
  return failed;
}
