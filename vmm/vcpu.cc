#include "vmm/vcpu.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "base/sandbox/seccomp.h"
#include "vmm/boot_trace.h"
#include "vmm/guest_debug.h"
#include "vmm/insn_name.h"

namespace vmm {
namespace {

// Signal used to kick a vCPU thread out of KVM_RUN (its handler does nothing;
// KVM_RUN returns EINTR).
constexpr int kKickSignal = SIGUSR1;

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kKickSignal, &action, nullptr);
  });
}

}  // namespace

base::Result<std::unique_ptr<Vcpu>> Vcpu::Create(kvm::VmFd& vm, uint32_t id, VcpuEnvironment env) {
  auto fd = TRY(vm.CreateVcpu(id));
  return std::unique_ptr<Vcpu>(new Vcpu(std::move(fd), std::move(env)));
}

Vcpu::~Vcpu() { Join(); }

Vcpu::RunState Vcpu::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void Vcpu::Start() {
  InstallKickHandler();
  {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stop_requested_) return;
    state_ = RunState::kRunning;
  }
  std::lock_guard lock(handle_mutex_);
  thread_ = std::thread([this] { Loop(); });
  handle_ = thread_.native_handle();
}

void Vcpu::RequestPause() {
  {
    std::lock_guard lock(mutex_);
    pause_requested_ = true;
  }
  Kick();
}

bool Vcpu::WaitUntilParked(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return cv_.wait_until(lock, deadline, [this] { return state_ != RunState::kRunning; });
}

void Vcpu::Resume() {
  {
    std::lock_guard lock(mutex_);
    pause_requested_ = false;
  }
  cv_.notify_all();
}

void Vcpu::RequestStop() {
  {
    std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  cv_.notify_all();
  Kick();
}

void Vcpu::Kick() {
  __atomic_store_n(&fd_->run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  std::lock_guard lock(handle_mutex_);
  if (handle_ != pthread_t{}) pthread_kill(handle_, kKickSignal);
}

void Vcpu::Join() {
  RequestStop();
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(handle_mutex_);
    handle_ = pthread_t{};
  }
  thread_.join();
}

void Vcpu::Loop() {
  // Block SIGINT/SIGTERM here so they reach the control thread's handler;
  // the kick signal stays deliverable.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  // Before the guest's first instruction on this vCPU (docs/security.md).
  base::sandbox::EnterThreadOrDie(base::sandbox::ThreadKind::kVcpu);

  if (fd_->id() == 0) boot_trace::Mark("first-run");
  kvm_run* run = fd_->run();
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (stop_requested_) break;
      if (pause_requested_) {
        Park(lock);
        continue;
      }
    }
    auto ran = fd_->Run();
    if (!ran) {
      env_.request_stop(VmExit::KvmFailure(ran.error().ToString(), DumpState(false)));
      break;
    }
    if (!*ran) {  // EINTR: a kick; re-check the stop and pause requests.
      __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
      continue;
    }
    ExitAction action = HandleExit(*run, *env_.pio, *env_.mmio, *this, *env_.counters);
    if (action.kind == ExitAction::Kind::kStop) {
      env_.request_stop(std::move(*action.exit));
      break;
    }
  }
  {
    std::lock_guard lock(mutex_);
    state_ = RunState::kStopped;
  }
  cv_.notify_all();
}

// While paused the guest's time must stand still (as seen by the guest): the
// vCPU's TSC offset is moved back by the length of the pause (in TSC cycles)
// when it resumes, and kvmclock is frozen by the Vm's Pause()/Resume().
// Without KVM_VCPU_TSC_OFFSET (Linux < 5.16) the guest's TSC jumps; that is
// logged.
void Vcpu::Park(std::unique_lock<std::mutex>& lock) {
  const auto parked_at = std::chrono::steady_clock::now();
  state_ = RunState::kPaused;
  cv_.notify_all();
  cv_.wait(lock, [this] { return !pause_requested_ || stop_requested_; });
  if (stop_requested_) return;
  state_ = RunState::kRunning;
  lock.unlock();
  auto offset = fd_->GetTscOffset();
  auto khz = fd_->GetTscKhz();
  if (!offset || !khz) {
    spdlog::warn("vcpu {}: cannot hide the pause from the guest's TSC: {}", fd_->id(),
                 (!offset ? offset.error() : khz.error()).ToString());
    return;
  }
  const double paused_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - parked_at).count();
  const auto cycles = static_cast<int64_t>(paused_s * 1000.0 * static_cast<double>(*khz));
  if (auto set = fd_->SetTscOffset(*offset - cycles); !set) {
    spdlog::warn("vcpu {}: {}", fd_->id(), set.error().ToString());
  }
}

bool Vcpu::TryAssist() {
  if (auto handed_back = ReinjectInt3(*fd_, *env_.memory); handed_back && *handed_back) {
    return true;
  }
  // An instruction KVM could not emulate but vmm can (vmm/insn_assist.h).
  if (auto completed = CompleteUnemulatedInstruction(*fd_, *env_.memory, mxcsr_); !completed) {
    spdlog::warn("vcpu {}: {}", fd_->id(), completed.error().message());
  } else if (*completed) {
    return true;
  }
  return false;
}

std::string Vcpu::DumpState(bool with_instruction) {
  std::string out;
  auto regs = fd_->GetRegs();
  auto sregs = fd_->GetSregs();
  if (!regs || !sregs) {
    return fmt::format("(registers unavailable: {})",
                       (!regs ? regs.error() : sregs.error()).ToString());
  }
  const kvm_regs& r = *regs;
  const kvm_sregs& s = *sregs;
  out += fmt::format("vcpu {} registers:\n", fd_->id());
  out += fmt::format("  RIP={:016x} RSP={:016x} RFLAGS={:08x}\n", r.rip, r.rsp, r.rflags);
  out += fmt::format("  RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}\n", r.rax, r.rbx, r.rcx,
                     r.rdx);
  out +=
      fmt::format("  RSI={:016x} RDI={:016x} RBP={:016x} R8 ={:016x}\n", r.rsi, r.rdi, r.rbp, r.r8);
  out +=
      fmt::format("  R9 ={:016x} R10={:016x} R11={:016x} R12={:016x}\n", r.r9, r.r10, r.r11, r.r12);
  out += fmt::format("  R13={:016x} R14={:016x} R15={:016x}\n", r.r13, r.r14, r.r15);
  out += fmt::format("  CR0={:016x} CR2={:016x} CR3={:016x} CR4={:016x} EFER={:x}\n", s.cr0, s.cr2,
                     s.cr3, s.cr4, s.efer);
  auto seg = [&](const char* name, const kvm_segment& g) {
    out += fmt::format("  {}={:04x} base={:016x} limit={:08x} type={:x} l={} db={} dpl={}\n", name,
                       g.selector, g.base, g.limit, g.type, g.l, g.db, g.dpl);
  };
  seg("CS", s.cs);
  seg("SS", s.ss);
  seg("DS", s.ds);
  seg("FS", s.fs);
  seg("GS", s.gs);
  seg("TR", s.tr);
  out += fmt::format("  GDT base={:016x} limit={:04x}  IDT base={:016x} limit={:04x}\n", s.gdt.base,
                     s.gdt.limit, s.idt.base, s.idt.limit);
  if (with_instruction) {
    uint8_t bytes[15] = {};
    size_t count = 0;
    const kvm_run* run = fd_->run();
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
        run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
      count = std::min<size_t>(run->emulation_failure.insn_size, sizeof(bytes));
      std::memcpy(bytes, run->emulation_failure.insn_bytes, count);
    } else {
      const uint64_t linear = s.cs.base + r.rip;
      for (count = 0; count < sizeof(bytes); ++count) {
        auto phys = fd_->Translate(linear + count);
        if (!phys || !*phys) break;
        auto byte = env_.memory->ReadObj<uint8_t>(**phys);
        if (!byte) break;
        bytes[count] = *byte;
      }
    }
    std::span<const uint8_t> insn(bytes, count);
    std::string name = DescribeInstruction(insn);
    out += fmt::format("  instruction at RIP: {}{}\n", count ? HexBytes(insn) : "(unreadable)",
                       name.empty() ? "" : fmt::format("  ({})", name));
  }
  out += fmt::format("last serial line: \"{}\"\n",
                     env_.last_serial_line ? env_.last_serial_line() : std::string());
  return out;
}

}  // namespace vmm
