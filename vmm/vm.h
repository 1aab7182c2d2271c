// One virtual machine: built from a VmConfig, run until it ends.
//
// Vm is the builder and the owner (Firecracker's builder.rs + vstate/vm.rs):
// Create() maps guest memory, loads the kernel (firmware::LoadKernel), opens
// KVM, creates the in-kernel irqchip and PIT, wires every device to its
// address in one function (WireDevices), and sets up the vCPUs. Run() starts
// the event loop and one thread per vCPU and blocks until the VM ends.
//
// Threads: the main thread calls Create() and Run(); each vCPU thread runs
// VcpuLoop(); the event-loop thread runs timers, signals and console I/O.
// RequestStop() may be called from any of them; the first request wins.
// Lock order: pause_mutex_ before kick_mutex_; exit_mutex_ and kick_mutex_ are
// otherwise leaf locks.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "devices/bus.h"
#include "firmware/boot.h"
#include "vmm/api/api_server.h"
#include "vmm/api/vm_control.h"
#include "vmm/config.h"
#include "vmm/console/console.h"
#include "vmm/cpu_template.h"
#include "vmm/event_loop.h"
#include "vmm/kvm/kvm.h"

namespace devices {
class I8042;
class Serial;
namespace virtio {
class Console;
class VirtioDevice;
class VirtioMmio;
}  // namespace virtio
}  // namespace devices

namespace vmm {

// Exit statuses beyond the guest's own 0..63 (design.md, "Exit status").
inline constexpr int kExitTripleFault = 80;
inline constexpr int kExitKvmFailure = 81;
inline constexpr int kExitTimeout = 82;
inline constexpr int kExitSigint = 130;   // 128 + SIGINT, shell convention
inline constexpr int kExitSigterm = 143;  // 128 + SIGTERM

struct VmExit {
  int status = 0;
  std::string reason;     // one line for stderr
  std::string details;    // register dump etc. (may be empty)
  bool abnormal = false;  // print reason on stderr
};

class Vm : public VmControl {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<Vm>> Create(const VmConfig& config);
  ~Vm();

  // Runs the VM to its end; returns the exit (status, reason, dump).
  VmExit Run();

  // Ends the VM with `exit` unless an exit was already requested. Any thread.
  void RequestStop(VmExit exit);

  const base::GuestMemory& memory() const { return *memory_; }
  const VmConfig& config() const { return config_; }
  CpuTemplate cpu_template() const { return cpu_template_; }

  // VmControl (the control API; called on the event-loop thread).
  nlohmann::json Info() override;
  [[nodiscard]] base::Result<void> Pause() override;
  [[nodiscard]] base::Result<void> Resume() override;
  [[nodiscard]] base::Result<void> Shutdown() override;
  [[nodiscard]] base::Result<void> Reset() override;
  [[nodiscard]] base::Result<void> SendCtrlAltDel() override;
  nlohmann::json Metrics() override;

 private:
  struct Vcpu {
    std::unique_ptr<kvm::VcpuFd> fd;
    std::thread thread;
    std::atomic<pthread_t> handle{};
  };

  explicit Vm(VmConfig config) : config_(std::move(config)) {}

  base::Result<void> SetUpKvm();
  base::Result<void> WireDevices();
  // virtio devices from the config (--disk, --rng, --console): created
  // before the kernel is loaded so that their virtio_mmio.device= words
  // reach its command line (device n: disks in order, then rng, then
  // console); put on the MMIO bus with ioeventfd/irqfd by WireVirtio(),
  // which also opens the virtio-console's backend.
  base::Result<void> CreateVirtioDevices(std::string& cmdline);
  base::Result<void> WireVirtio();
  // Per-device counters for GET /metrics and the exit summary.
  nlohmann::json VirtioMetrics() const;
  base::Result<void> SetUpVcpu(Vcpu& vcpu);
  void VcpuLoop(Vcpu& vcpu);
  // Handles one KVM exit; returns false when the vCPU must stop.
  bool HandleExit(Vcpu& vcpu);
  void ParkWhilePaused(Vcpu& vcpu);
  void HandleIo(Vcpu& vcpu);
  void HandleMmio(Vcpu& vcpu);
  std::string DumpState(const Vcpu& vcpu, bool with_instruction) const;
  void KickAll();
  // Stops and joins every vCPU thread. Main thread only; idempotent.
  void JoinVcpus();
  void OnSerialOutput(std::span<const uint8_t> bytes);
  std::string LastSerialLine() const;

  VmConfig config_;
  CpuTemplate cpu_template_ = CpuTemplate::kAuto;
  std::unique_ptr<base::GuestMemory> memory_;
  firmware::BootInfo boot_;
  std::unique_ptr<kvm::Kvm> kvm_;
  std::unique_ptr<kvm::VmFd> vm_fd_;
  // Declared before everything that posts work to it (console, API server),
  // so that it is destroyed after them.
  EventLoop event_loop_;
  devices::Bus pio_bus_{"pio"};
  devices::Bus mmio_bus_{"mmio"};
  std::shared_ptr<devices::Serial> serial_;
  std::shared_ptr<devices::I8042> i8042_;
  // One virtio-mmio device and its notification plumbing.
  struct VirtioSlot {
    std::string kind;  // "block", "rng", "console"
    std::shared_ptr<devices::virtio::VirtioDevice> device;
    std::shared_ptr<devices::virtio::VirtioMmio> transport;
    uint64_t base = 0;
    uint32_t irq = 0;
    // One ioeventfd per queue, read on the event loop.
    std::vector<std::unique_ptr<asio::posix::stream_descriptor>> notifiers;
    std::vector<uint64_t> notify_buffers;
  };
  std::vector<std::unique_ptr<VirtioSlot>> virtio_;
  std::unique_ptr<Console> console_;
  // --console: the virtio-console device and its backend (same kinds as COM1).
  std::shared_ptr<devices::virtio::Console> virtio_console_;
  std::unique_ptr<Console> virtio_console_backend_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;

  std::unique_ptr<ApiServer> api_server_;
  std::chrono::steady_clock::time_point started_at_{};
  std::atomic<bool> started_{false};

  // Pause: vCPU threads park on pause_cv_ while paused_ is set.
  std::atomic<bool> paused_{false};
  std::mutex pause_mutex_;
  std::condition_variable pause_cv_;
  std::optional<uint64_t> paused_clock_;  // kvmclock at Pause(), under pause_mutex_

  std::mutex kick_mutex_;  // leaf lock: guards Vcpu::handle against join
  std::atomic<bool> stopping_{false};
  std::mutex exit_mutex_;
  std::condition_variable exit_cv_;
  std::optional<VmExit> exit_;

  std::atomic<bool> first_serial_byte_seen_{false};

  // Exit counters by reason (for logs and the control API).
  std::atomic<uint64_t> exits_io_{0}, exits_mmio_{0}, exits_other_{0};
  std::atomic<uint64_t> unclaimed_pio_{0}, unclaimed_mmio_{0};
};

}  // namespace vmm
