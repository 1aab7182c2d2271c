// The VM's devices: the port and MMIO buses, the legacy PC devices (COM1,
// the exit and boot-phase ports, the i8042, CMOS) and the virtio-mmio
// devices with their transports, interrupt lines and queue notifiers, and
// the console backends (Firecracker's device_manager). Every device is put
// at its address here, in one place; addresses, ports and IRQs come from
// base/layout.h, virtio slots from the ResourceAllocator.
//
// Owned by the Vm. Create() and Wire() run on the main thread while the VM is
// built; afterwards the buses are read by the vCPU threads, queue
// notifications and console I/O run on the device event loop (`io`), and the
// counters (Metrics...) may be read from any thread.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "devices/bus.h"
#include "firmware/acpi.h"
#include "vmm/config.h"
#include "vmm/console/console.h"
#include "vmm/kvm/kvm.h"
#include "vmm/metrics.h"
#include "vmm/resource_allocator.h"
#include "vmm/vm_exit.h"

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

class DeviceManager {
 public:
  using StopFn = std::function<void(VmExit)>;

  // Creates the virtio devices from the config (--disk in order, then --rng,
  // then --console) and gives each its slot. Done before the kernel is
  // loaded, so that CommandLineWords() reach its command line.
  // `request_stop` is called when a device ends the VM (any thread).
  [[nodiscard]] static base::Result<std::unique_ptr<DeviceManager>> Create(const VmConfig& config,
                                                                           asio::io_context& io,
                                                                           StopFn request_stop);
  ~DeviceManager();

  // "virtio_mmio.device=..." for every virtio device, space-separated.
  std::string CommandLineWords() const;

  // Puts every device on its bus, with its interrupt (KVM_IRQ_LINE for the
  // legacy devices, irqfd for virtio) and ioeventfds, and opens the console
  // backends. `vm` and `memory` must outlive the DeviceManager.
  [[nodiscard]] base::Result<void> Wire(kvm::VmFd& vm, const base::GuestMemory& memory);

  const devices::Bus& pio_bus() const { return pio_bus_; }
  const devices::Bus& mmio_bus() const { return mmio_bus_; }

  // Per-device counters for GET /metrics and the exit summary.
  std::vector<VirtioDeviceMetrics> VirtioMetrics() const;
  // Every virtio-mmio device's window and IRQ, in creation order, for the
  // ACPI DSDT (firmware/acpi.h).
  std::vector<firmware::AcpiVirtioMmio> AcpiVirtioDevices() const;
  ConsoleStats serial_stats() const;
  std::string LastSerialLine() const;
  void SendCtrlAltDel();
  // A key from the live view (an X11 keysym, vmm/vnc/view.h) typed on the
  // i8042's keyboard; keys with no PS/2 key are dropped (debug log).
  void KeyEvent(uint32_t keysym, bool down);
  // Puts terminals back as they were. Idempotent, any thread.
  void RestoreTerminals();

 private:
  // One virtio-mmio device and its notification plumbing.
  struct VirtioSlot {
    std::string kind;  // "block", "rng", "console"
    std::shared_ptr<devices::virtio::VirtioDevice> device;
    std::shared_ptr<devices::virtio::VirtioMmio> transport;
    MmioSlot resources;
    // One ioeventfd per queue, read on the device event loop.
    std::vector<std::unique_ptr<asio::posix::stream_descriptor>> notifiers;
    std::vector<uint64_t> notify_buffers;
  };

  DeviceManager(const VmConfig& config, asio::io_context& io, StopFn request_stop);
  base::Result<void> CreateVirtioDevices();
  base::Result<void> WireLegacy(kvm::VmFd& vm);
  base::Result<void> WireVirtio(kvm::VmFd& vm, const base::GuestMemory& memory);
  void OnSerialOutput(std::span<const uint8_t> bytes);

  const VmConfig& config_;
  asio::io_context& io_;
  StopFn request_stop_;
  ResourceAllocator allocator_;
  devices::Bus pio_bus_{"pio"};
  devices::Bus mmio_bus_{"mmio"};
  std::shared_ptr<devices::Serial> serial_;
  std::shared_ptr<devices::I8042> i8042_;
  std::unique_ptr<Console> console_;
  std::vector<std::unique_ptr<VirtioSlot>> virtio_;
  // --console: the virtio-console device and its backend (same kinds as COM1).
  std::shared_ptr<devices::virtio::Console> virtio_console_;
  std::unique_ptr<Console> virtio_console_backend_;
  std::atomic<bool> first_serial_byte_seen_{false};
};

}  // namespace vmm
