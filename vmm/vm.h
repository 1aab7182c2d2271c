// One virtual machine: built from a VmConfig by BuildVm() (vmm/builder.h),
// run until it ends by Run(). The Vm owns everything the VM is made of —
// guest memory, the KVM fds, the DeviceManager (buses and devices,
// vmm/device_manager.h), the vCPUs (vmm/vcpu.h), the two event loops and the
// control API server — and implements VmControl.
//
// Threads:
//   main thread     Create() and Run(); waits for the exit, then tears down.
//   vCPU threads    one per vCPU (Vcpu): KVM_RUN and exit handling; they
//                   block SIGINT/SIGTERM.
//   device thread   device_loop_: virtio queue notifications (ioeventfd),
//                   device completions and the console backends' I/O.
//   control thread  control_loop_: the --timeout timer, SIGINT/SIGTERM and
//                   the control API (VmControl calls). Nothing the guest
//                   does runs here, so a guest flooding a device cannot keep
//                   a stop from being requested.
//   watchdog        armed by Run() once a stop is requested: if tearing down
//                   (joining the vCPU and device threads) takes more than
//                   kStopGrace, it restores the terminals, reports the exit
//                   and ends the process with the requested status.
// RequestStop() may be called from any of them; the first request wins.
//
// Lock order: pause_mutex_ before a Vcpu's locks (vmm/vcpu.h); exit_mutex_
// is a leaf lock (RequestStop() releases it before telling the vCPUs).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/boot.h"
#include "vmm/api/api_server.h"
#include "vmm/api/vm_control.h"
#include "vmm/config.h"
#include "vmm/cpu_template.h"
#include "vmm/device_manager.h"
#include "vmm/event_loop.h"
#include "vmm/framebuffer.h"
#include "vmm/kvm/kvm.h"
#include "vmm/metrics.h"
#include "vmm/vcpu.h"
#include "vmm/vm_exit.h"
#include "vmm/vnc/view.h"

namespace vmm {

class Vm : public VmControl {
 public:
  // How long tearing down may take after a stop request before the watchdog
  // ends the process.
  static constexpr std::chrono::milliseconds kStopGrace{2000};
  // How long Pause() waits for every vCPU to acknowledge.
  static constexpr std::chrono::milliseconds kPauseTimeout{1000};

  // BuildVm(config) (vmm/builder.h).
  [[nodiscard]] static base::Result<std::unique_ptr<Vm>> Create(const VmConfig& config);
  ~Vm() override;

  // Runs the VM to its end; returns the exit (status, reason, dump).
  VmExit Run();

  // Ends the VM with `exit` unless an exit was already requested. Any thread.
  void RequestStop(VmExit exit);

  const base::GuestMemory& memory() const { return *memory_; }
  const VmConfig& config() const { return config_; }
  CpuTemplate cpu_template() const { return cpu_template_; }
  // What the boot protocol prepared (firmware/boot.h): the protocol used, its description.
  const firmware::BootInfo& boot_info() const { return boot_; }
  // The framebuffer's memory; null when the guest has none.
  const FramebufferMemory* framebuffer() const { return framebuffer_.get(); }
  // A PNG of the screen to `path` (docs/framebuffer.md). kConfig when the
  // guest has no framebuffer; kNoInput when the file cannot be written.
  [[nodiscard]] base::Result<void> Screenshot(const std::string& path) const;

  // VmControl (the control API; called on the control thread). Pause()
  // returns once every vCPU has parked.
  nlohmann::json Info() override;
  [[nodiscard]] base::Result<void> Pause() override;
  [[nodiscard]] base::Result<void> Resume() override;
  [[nodiscard]] base::Result<void> Shutdown() override;
  [[nodiscard]] base::Result<void> Reset() override;
  [[nodiscard]] base::Result<void> SendCtrlAltDel() override;
  nlohmann::json Metrics() override;
  base::Result<std::vector<uint8_t>> ScreenshotPng() override;

 private:
  friend base::Result<std::unique_ptr<Vm>> BuildVm(const VmConfig& config);

  explicit Vm(VmConfig config) : config_(std::move(config)) {}

  // The --timeout timer, the signal handler and the API server.
  base::Result<void> SetUpControl();
  // Stops and joins every vCPU thread. Main thread only; idempotent.
  void JoinVcpus();
  VmMetrics CollectMetrics() const;

  VmConfig config_;
  CpuTemplate cpu_template_ = CpuTemplate::kAuto;
  std::unique_ptr<base::GuestMemory> memory_;
  firmware::BootInfo boot_;
  std::unique_ptr<kvm::Kvm> kvm_;
  std::unique_ptr<kvm::VmFd> vm_fd_;
  std::unique_ptr<FramebufferMemory> framebuffer_;
  // Declared before everything that posts work to them (devices, consoles,
  // API server), so that they are destroyed after them.
  EventLoop device_loop_;
  EventLoop control_loop_;
  // On control_loop_ (vmm/vm.cc SetUpControl).
  std::optional<asio::steady_timer> timer_;
  std::optional<asio::signal_set> signals_;
  ExitCounters counters_;
  std::unique_ptr<DeviceManager> devices_;
  // --vnc: the live view; after devices_ (its keys go to the i8042), so
  // destroyed first, once the device loop has stopped.
  std::unique_ptr<VncView> vnc_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;

  std::unique_ptr<ApiServer> api_server_;
  std::chrono::steady_clock::time_point started_at_{};
  std::atomic<bool> started_{false};

  std::mutex pause_mutex_;  // serializes Pause()/Resume()
  std::atomic<bool> paused_{false};
  std::optional<uint64_t> paused_clock_;  // kvmclock at Pause(), under pause_mutex_

  std::atomic<bool> stopping_{false};
  std::mutex exit_mutex_;
  std::condition_variable exit_cv_;
  std::optional<VmExit> exit_;
};

}  // namespace vmm
