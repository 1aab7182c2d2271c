#include "kernel/process.h"

#include "abi/syscalls.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "kernel/console.h"
#include "kernel/elf.h"
#include "kernel/heap.h"
#include "kernel/ipc.h"
#include "kernel/machine.h"
#include "kernel/trap.h"
#include "kernel/vm.h"
#include "lib/string.h"

extern "C" const kernel::UserImage __user_images_start[], __user_images_end[];

namespace kernel {
namespace {

constinit uint32_t g_next_pid = 1;
constexpr size_t kMaxProcesses = 64;
constinit Process* g_procs[kMaxProcesses] = {};

void SetPorts(Process* p, bool allow) {
  for (uint32_t i = 0; i < p->port_ranges; ++i) {
    arch::SetIoPorts(p->ports[i].first, p->ports[i].count, allow);
  }
}

void Register(Process* p) {
  for (Process*& slot : g_procs) {
    if (slot == nullptr) {
      slot = p;
      return;
    }
  }
}
void Unregister(Process* p) {
  for (Process*& slot : g_procs) {
    if (slot == p) slot = nullptr;
  }
}

// One zeroed frame mapped at kUserIpcBuffer + 4 KiB * index.
bool MapIpcBuffer(Process* p, Thread* t, uint32_t index) {
  const uint64_t frame = Frames().AllocZeroed();
  if (frame == 0) return false;
  PageTable pt(&Phys(), &Frames(), p->root);
  if (pt.Map(abi::kUserIpcBuffer + index * kPageSize, frame,
             pte::kUser | pte::kWrite | pte::kNoExecute | pte::kOwned) != PageTable::Status::kOk) {
    Frames().Free(frame);
    return false;
  }
  t->ipc.buffer = frame;
  t->index = index;
  return true;
}

// Ends every thread of `p` but the caller; undoes their IPC relations.
void EndThreads(Process* p) {
  for (uint32_t i = 0; i < p->thread_count; ++i) {
    Thread* t = p->threads[i];
    if (t == nullptr) continue;
    IpcCancel(t);
    if (t != Current()) KillThread(t);
    p->threads[i] = nullptr;
  }
}

void CloseAllHandles(Process* p) {
  for (uint32_t i = 0; i < TokenTable::kSlots; ++i) {
    const uint64_t h = p->tokens.HandleAt(i);
    if (h != 0) CloseHandle(p, h);
  }
}

bool InLazyRegion(uint64_t va) {
  return (va >= abi::kUserHeapBase && va - abi::kUserHeapBase < abi::kUserHeapSize) ||
         (va < abi::kUserStackTop && abi::kUserStackTop - va <= abi::kUserStackSize);
}

// Backs the page containing `va` with a zeroed frame (user, RW, NX).
bool BackLazyPage(Process* p, uint64_t va) {
  const uint64_t frame = Frames().AllocZeroed();
  if (frame == 0) return false;
  PageTable pt(&Phys(), &Frames(), p->root);
  const auto s =
      pt.Map(va & ~kPageMask, frame, pte::kUser | pte::kWrite | pte::kNoExecute | pte::kOwned);
  if (s != PageTable::Status::kOk) {
    Frames().Free(frame);
    return s == PageTable::Status::kAlreadyMapped;
  }
  ++p->lazy_pages;
  return true;
}

void FreeAddressSpace(Process* p) {
  if (p->root == 0) return;
  if (arch::ReadCr3() == p->root) SwitchAddressSpace(KernelRoot());
  PageTable pt(&Phys(), &Frames(), p->root);
  pt.FreeRange(0, 255);
  Frames().Free(p->root);
  p->root = 0;
}

void Finish(Process* p, ProcessState state, int64_t code) {
  p->state = state;
  p->exit_code = code;
  WakeAll(&p->exited);
}

}  // namespace

int64_t MapThroughToken(Process* p, Token* t, uint64_t va, bool writable) {
  if (t->type != abi::kObjFrames && t->type != abi::kObjMmio) return abi::kErrWrongType;
  if (t->map_root != 0) return abi::kErrBusy;
  if ((va & kPageMask) != 0 || va >= abi::kUserTop || t->size > abi::kUserTop - va ||
      (t->base & kPageMask) != 0 || t->size == 0) {
    return abi::kErrInvalidArgument;
  }
  if (writable && (t->rights & abi::kRightWrite) == 0) return abi::kErrDenied;
  uint64_t flags = pte::kUser | pte::kNoExecute;
  if (writable) flags |= pte::kWrite;
  if (t->type == abi::kObjMmio) flags |= pte::kCacheDisable | pte::kWriteThrough;
  PageTable pt(&Phys(), &Frames(), p->root);
  const uint64_t pages = (t->size + kPageMask) / kPageSize;
  for (uint64_t i = 0; i < pages; ++i) {
    if (pt.Lookup(va + i * kPageSize) != 0) return abi::kErrBusy;
  }
  if (pt.MapRange(va, t->base, pages * kPageSize, flags) != PageTable::Status::kOk) {
    for (uint64_t i = 0; i < pages; ++i) pt.Unmap(va + i * kPageSize);
    return abi::kErrNoMemory;
  }
  t->map_root = p->root;
  t->map_va = va;
  return abi::kOk;
}

void UnmapThroughToken(Token* t) {
  if (t->map_root == 0) return;
  PageTable pt(&Phys(), &Frames(), t->map_root);
  const uint64_t pages = (t->size + kPageMask) / kPageSize;
  for (uint64_t i = 0; i < pages; ++i) pt.Unmap(t->map_va + i * kPageSize);
  if (arch::ReadCr3() == t->map_root) arch::WriteCr3(t->map_root);  // flush
  t->map_root = 0;
  t->map_va = 0;
}

int64_t CloseHandle(Process* p, uint64_t handle) {
  Token* t = p->tokens.Peek(handle);
  if (t == nullptr) return abi::kErrBadHandle;
  if (t->handles == 1) UnmapThroughToken(t);
  return p->tokens.Close(handle);
}

constinit Process* g_io_process = nullptr;

int64_t AllowPorts(Process* p, uint32_t first, uint32_t count) {
  if (p->port_ranges == 4) return abi::kErrNoSlots;
  p->ports[p->port_ranges++] = Process::PortRange{first, count};
  if (CurrentProcess() == p) SwitchIoPortsSlow(p);
  return abi::kOk;
}

void SwitchIoPortsSlow(Process* next) {
  if (g_io_process != nullptr) SetPorts(g_io_process, false);
  g_io_process = next != nullptr && next->port_ranges != 0 ? next : nullptr;
  if (g_io_process != nullptr) SetPorts(g_io_process, true);
}

Process* ProcessAt(size_t index) { return index < kMaxProcesses ? g_procs[index] : nullptr; }

namespace {

const char* LoadImage(Process* p, const UserImage& image, uint64_t* entry) {
  ElfProgram prog;
  const char* err =
      ParseUserElf(image.begin, static_cast<size_t>(image.end - image.begin), abi::kUserTop, &prog);
  if (err != nullptr) return err;
  PageTable pt(&Phys(), &Frames(), p->root);
  for (size_t i = 0; i < prog.segment_count; ++i) {
    const ElfSegment& s = prog.segments[i];
    const uint64_t first = s.vaddr & ~kPageMask;
    const uint64_t last = (s.vaddr + s.mem_size + kPageMask) & ~kPageMask;
    uint64_t flags = pte::kUser | pte::kOwned;
    if (s.write) flags |= pte::kWrite;
    if (!s.exec) flags |= pte::kNoExecute;
    for (uint64_t va = first; va < last; va += kPageSize) {
      const uint64_t frame = Frames().AllocZeroed();
      if (frame == 0) return "out of memory";
      // Copy the file bytes that fall into this page.
      const uint64_t file_lo = s.vaddr, file_hi = s.vaddr + s.file_size;
      const uint64_t lo = va > file_lo ? va : file_lo;
      const uint64_t hi = va + kPageSize < file_hi ? va + kPageSize : file_hi;
      if (lo < hi) {
        void* dst = PhysPtr<uint8_t>(frame) + (lo - va);
        const void* src = image.begin + s.file_offset + (lo - s.vaddr);
        uint64_t n = hi - lo;
        asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
      }
      if (pt.Map(va, frame, flags) != PageTable::Status::kOk) {
        Frames().Free(frame);
        return "cannot map a segment";
      }
    }
  }
  *entry = prog.entry;
  return nullptr;
}

}  // namespace

size_t UserImageCount() { return static_cast<size_t>(__user_images_end - __user_images_start); }
const UserImage* UserImageAt(size_t i) { return &__user_images_start[i]; }

const UserImage* FindUserImage(const char* name, size_t len) {
  for (size_t i = 0; i < UserImageCount(); ++i) {
    if (lib::EqualN(name, len, __user_images_start[i].name)) return &__user_images_start[i];
  }
  return nullptr;
}

Process* CurrentProcess() {
  Thread* t = Current();
  return t != nullptr ? t->process : nullptr;
}

Process* Spawn(const char* name, size_t len, uint8_t priority, Process* parent, uint64_t arg,
               int64_t* error, bool start) {
  const UserImage* image = FindUserImage(name, len);
  if (image == nullptr) {
    *error = abi::kErrNotFound;
    return nullptr;
  }
  Process* p = New<Process>();
  if (p == nullptr) {
    *error = abi::kErrNoMemory;
    return nullptr;
  }
  p->pid = g_next_pid++;
  p->parent = parent;
  size_t i = 0;
  for (; i + 1 < sizeof(p->name) && image->name[i] != 0; ++i) p->name[i] = image->name[i];
  p->root = Frames().AllocZeroed();
  if (p->root == 0) {
    Delete(p);
    *error = abi::kErrNoMemory;
    return nullptr;
  }
  // The upper half is the kernel's, shared by reference to the same tables.
  const uint64_t* kernel_pml4 = PhysPtr<uint64_t>(KernelRoot());
  uint64_t* pml4 = PhysPtr<uint64_t>(p->root);
  for (size_t e = 256; e < 512; ++e) pml4[e] = kernel_pml4[e];

  uint64_t entry = 0;
  const char* err = LoadImage(p, *image, &entry);
  if (err != nullptr) {
    Print("[proc] cannot load {}: {}\n", image->name, err);
    FreeAddressSpace(p);
    Delete(p);
    *error = abi::kErrInvalidArgument;
    return nullptr;
  }
  if (priority == kIdlePriority) priority = 1;
  const uint64_t args[4] = {abi::kUserHeapBase, abi::kUserHeapSize, p->pid, arg};
  p->priority = priority;
  p->token = CreateRootToken(abi::kObjProcess, abi::kRightsAll, p);
  Token* self =
      p->token != nullptr ? CreateRootToken(abi::kObjProcess, abi::kRightManage, p) : nullptr;
  p->thread = self != nullptr ? CreateUserThread(p, p->name, priority, entry, abi::kUserStackTop,
                                                 args, /*ready=*/false)
                              : nullptr;
  if (p->thread == nullptr || !MapIpcBuffer(p, p->thread, 0)) {
    if (p->thread != nullptr) KillThread(p->thread);
    FreeAddressSpace(p);
    if (self != nullptr) DiscardToken(self);
    if (p->token != nullptr) DiscardToken(p->token);
    Delete(p);
    *error = abi::kErrNoMemory;
    return nullptr;
  }
  (void)p->tokens.Insert(self);  // handle 1 == abi::kSelfHandle
  p->threads[0] = p->thread;
  p->thread_count = 1;
  Register(p);
  if (start) StartProcess(p, arg);
  *error = abi::kOk;
  return p;
}

void StartProcess(Process* p, uint64_t arg) {
  if (p->started || p->thread == nullptr) return;
  p->started = true;
  arch::TrapFrame* f =
      reinterpret_cast<arch::TrapFrame*>(p->thread->stack_top - sizeof(arch::TrapFrame));
  f->rcx = arg;
  f->r8 = p->given;
  Wake(p->thread);
}

int64_t CreateThreadIn(Process* p, uint64_t entry, uint64_t stack_top, uint64_t arg) {
  if (p->state != ProcessState::kRunning) return abi::kErrInvalidArgument;
  if (p->thread_count >= kMaxThreads) return abi::kErrNoSlots;
  if (entry >= abi::kUserTop || stack_top >= abi::kUserTop) return abi::kErrInvalidArgument;
  const uint32_t index = p->thread_count;
  const uint64_t args[4] = {arg, abi::kUserIpcBuffer + index * kPageSize, p->pid, 0};
  Thread* t = CreateUserThread(p, p->name, p->priority, entry, stack_top & ~15ull, args, false);
  if (t == nullptr) return abi::kErrNoMemory;
  if (!MapIpcBuffer(p, t, index)) {
    KillThread(t);
    return abi::kErrNoMemory;
  }
  p->threads[index] = t;
  p->thread_count = index + 1;
  Wake(t);
  return index;
}

void ExitCurrentProcess(int64_t code) {
  Process* p = CurrentProcess();
  if (p == nullptr) Panic("ExitCurrentProcess from a kernel thread");
  if (p->state == ProcessState::kRunning) Finish(p, ProcessState::kExited, code);
  EndThreads(p);
  CloseAllHandles(p);
  if (g_io_process == p) SwitchIoPortsSlow(nullptr);
  p->port_ranges = 0;
  // Run on the kernel's tables from now on; the thread is about to die.
  SwitchAddressSpace(KernelRoot());
  FreeAddressSpace(p);
  p->thread = nullptr;
  ExitCurrentThread();
}

void KillProcess(Process* p, int64_t code) {
  if (p->state != ProcessState::kRunning) return;
  if (CurrentProcess() == p) ExitCurrentProcess(code);
  Finish(p, ProcessState::kKilled, code);
  if (g_io_process == p) SwitchIoPortsSlow(nullptr);
  p->port_ranges = 0;
  EndThreads(p);
  CloseAllHandles(p);
  p->thread = nullptr;
  FreeAddressSpace(p);
}

int64_t WaitProcess(Process* p) {
  while (p->state == ProcessState::kRunning) Wait(&p->exited);
  return p->exit_code;
}

void ReleaseProcess(Process* p) {
  // Tokens naming it may outlive it: they are revoked and detached first.
  Unregister(p);
  if (p->token != nullptr) {
    RevokeDescendants(p->token);
    p->token->revoked = true;
    if (p->token->handles == 0) DiscardToken(p->token);
  }
  Delete(p);
}

bool HandleUserFault(arch::TrapFrame* f) {
  Process* p = CurrentProcess();
  if (p == nullptr) KernelException(*f);
  const uint64_t cr2 = arch::ReadCr2();
  // Lazy heap/stack: a not-present fault (error bit 0 clear) inside a lazy region.
  if (f->vector == arch::kVecPageFault && (f->error & 1) == 0 && InLazyRegion(cr2)) {
    if (BackLazyPage(p, cr2)) return true;
    Print("[user] {} pid {}: out of memory backing {:#x}\n", p->name, p->pid, cr2);
  }
  p->fault_vector = f->vector;
  p->fault_error = f->error;
  p->fault_address = f->vector == arch::kVecPageFault ? cr2 : 0;
  p->fault_rip = f->rip;
  ReportTrap("user", *f);
  Print("[user] {} pid {} killed by exception {} {}\n", p->name, p->pid, f->vector,
        arch::ExceptionMnemonic(f->vector));
  if (p->fault_ep != nullptr) {
    // Fault IPC to the supervisor (blocks until it receives), then the end.
    IpcMsg m;
    m.tag = abi::MakeTag(abi::kLabelFault);
    m.w[0] = p->pid;
    m.w[1] = f->vector;
    m.w[2] = p->fault_address;
    m.w[3] = f->rip;
    m.badge = p->fault_badge;
    IpcDropReply(Current());
    (void)KernelSend(p->fault_ep, m);
  }
  ExitCurrentProcess(-static_cast<int64_t>(32 + f->vector));
}

bool ValidateUserRange(Process* p, uint64_t ptr, uint64_t len, bool write) {
  if (p == nullptr || p->root == 0) return false;
  if (ptr >= abi::kUserTop || len > abi::kUserTop - ptr) return false;
  if (len == 0) return true;
  PageTable pt(&Phys(), &Frames(), p->root);
  const uint64_t last = (ptr + len - 1) & ~kPageMask;
  for (uint64_t va = ptr & ~kPageMask;; va += kPageSize) {
    uint64_t e = pt.Lookup(va);
    if ((e & pte::kPresent) == 0) {
      if (!InLazyRegion(va) || !BackLazyPage(p, va)) return false;
      e = pt.Lookup(va);
    }
    if ((e & pte::kUser) == 0) return false;
    if (write && (e & pte::kWrite) == 0) return false;
    if (va == last) break;
  }
  return true;
}

bool PeekUser(Process* p, uint64_t va, uint64_t* out) {
  if (p == nullptr || p->root == 0 || (va & 7) != 0) return false;
  PageTable pt(&Phys(), &Frames(), p->root);
  const uint64_t e = pt.Lookup(va);
  if ((e & pte::kPresent) == 0 || (e & pte::kUser) == 0) return false;
  *out = *PhysPtr<uint64_t>((e & pte::kAddressMask) + (va & kPageMask));
  return true;
}

}  // namespace kernel
