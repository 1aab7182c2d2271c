// One virtual CPU: its KVM fd, its thread, its run state and the per-vCPU
// state exit handling needs (the MXCSR shadow of vmm/insn_assist.h). Its
// thread runs KVM_RUN and hands every exit to HandleExit()
// (vmm/exit_handler.h) until the VM stops.
//
// Run state: kStopped until Start(), then kRunning; kPaused while parked by
// RequestPause() (acknowledged: WaitUntilParked() returns once the thread has
// parked); kStopped again once the thread has left its loop.
//
// Owned by the Vm. Start(), Join() and (after Join) DumpState() are called on
// the main thread; RequestPause()/Resume()/RequestStop()/Kick() and
// WaitUntilParked() from any thread. Lock order: mutex_ before
// handle_mutex_; both are leaf locks with respect to everything outside.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/guest_memory.h"
#include "devices/bus.h"
#include "vmm/exit_handler.h"
#include "vmm/insn_assist.h"
#include "vmm/kvm/kvm.h"
#include "vmm/metrics.h"
#include "vmm/vm_exit.h"

namespace vmm {

// What a vCPU thread uses of the VM. Everything must outlive the Vcpu.
struct VcpuEnvironment {
  const devices::Bus* pio = nullptr;
  const devices::Bus* mmio = nullptr;
  const base::GuestMemory* memory = nullptr;
  ExitCounters* counters = nullptr;
  // Ends the VM (the first request wins). Called on the vCPU thread.
  std::function<void(VmExit)> request_stop;
  // For the crash report.
  std::function<std::string()> last_serial_line;
};

class Vcpu : private ExitVcpu {
 public:
  enum class RunState { kRunning, kPaused, kStopped };

  [[nodiscard]] static base::Result<std::unique_ptr<Vcpu>> Create(kvm::VmFd& vm, uint32_t id,
                                                                  VcpuEnvironment env);
  ~Vcpu() override;

  kvm::VcpuFd& fd() { return *fd_; }
  uint32_t id() const { return fd_->id(); }
  RunState state() const;

  // Starts the thread. Once.
  void Start();
  // Asks the thread to park before its next KVM_RUN and kicks it out of the
  // current one.
  void RequestPause();
  // Waits until the thread is parked (or stopped). False on timeout.
  bool WaitUntilParked(std::chrono::steady_clock::time_point deadline);
  void Resume();
  // Asks the thread to leave its loop and kicks it.
  void RequestStop();
  // Makes KVM_RUN return now (immediate_exit and the kick signal).
  void Kick();
  // RequestStop() and joins the thread. Idempotent.
  void Join();

  // Registers and segments (and with `with_instruction` the bytes at RIP)
  // and the last serial line. On the vCPU's thread, or after Join().
  std::string DumpState(bool with_instruction) override;

 private:
  Vcpu(std::unique_ptr<kvm::VcpuFd> fd, VcpuEnvironment env)
      : fd_(std::move(fd)), env_(std::move(env)) {}

  void Loop();
  // Parks until resumed or stopped; then hides the pause from the guest's TSC.
  void Park(std::unique_lock<std::mutex>& lock);

  // ExitVcpu
  uint32_t vcpu_id() const override { return fd_->id(); }
  bool TryAssist() override;

  std::unique_ptr<kvm::VcpuFd> fd_;
  VcpuEnvironment env_;
  MxcsrShadow mxcsr_;  // vCPU thread only
  std::thread thread_;

  mutable std::mutex mutex_;  // guards the three below
  std::condition_variable cv_;
  RunState state_ = RunState::kStopped;
  bool pause_requested_ = false;
  bool stop_requested_ = false;

  std::mutex handle_mutex_;  // keeps handle_ from being joined while signalled
  pthread_t handle_{};
};

}  // namespace vmm
