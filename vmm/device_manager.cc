#include "vmm/device_manager.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "base/layout.h"
#include "devices/legacy/boot_phase.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/debugcon.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"
#include "devices/virtio/block/block.h"
#include "devices/virtio/console/console.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/rng/rng.h"
#include "vmm/boot_trace.h"
#include "vmm/vnc/view.h"

namespace vmm {
namespace {

// Drives an ISA interrupt line of the in-kernel PIC/IOAPIC with KVM_IRQ_LINE.
class KvmIrqLine : public devices::IrqLine {
 public:
  KvmIrqLine(kvm::VmFd& vm, uint32_t irq) : vm_(vm), irq_(irq) {}
  void SetLevel(bool asserted) override {
    if (level_.exchange(asserted) == asserted) return;
    if (auto result = vm_.SetIrqLine(irq_, asserted); !result) {
      spdlog::error("irq {}: {}", irq_, result.error().ToString());
    }
  }

 private:
  kvm::VmFd& vm_;
  uint32_t irq_;
  std::atomic<bool> level_{false};
};

// The guest's interrupt for a virtio device: an irqfd, so raising it is one
// eventfd write from whichever thread completes the request (no vCPU exit,
// no ioctl). The transport calls SetLevel(true) once per interrupt event
// (devices/virtio/mmio.h), and KVM turns each eventfd write into one pulse
// on the GSI (edge per event, as Firecracker); SetLevel(false) is a no-op.
class IrqfdLine : public devices::IrqLine {
 public:
  explicit IrqfdLine(base::UniqueFd fd) : fd_(std::move(fd)) {}
  void SetLevel(bool asserted) override {
    if (!asserted) return;
    uint64_t one = 1;
    if (::write(fd_.get(), &one, sizeof(one)) < 0) {
      spdlog::warn("irqfd write: {}", std::strerror(errno));
    }
  }

 private:
  base::UniqueFd fd_;
};

void ArmNotifier(std::shared_ptr<devices::virtio::VirtioMmio> transport,
                 asio::posix::stream_descriptor& notifier, uint64_t& buffer, uint32_t queue) {
  notifier.async_read_some(
      asio::buffer(&buffer, sizeof(buffer)),
      [transport, &notifier, &buffer, queue](const std::error_code& ec, size_t) {
        if (ec) return;  // cancelled at shutdown
        transport->NotifyQueue(queue);
        ArmNotifier(transport, notifier, buffer, queue);
      });
}

}  // namespace

DeviceManager::DeviceManager(const VmConfig& config, asio::io_context& io, StopFn request_stop)
    : config_(config), io_(io), request_stop_(std::move(request_stop)) {}

DeviceManager::~DeviceManager() { RestoreTerminals(); }

base::Result<std::unique_ptr<DeviceManager>> DeviceManager::Create(const VmConfig& config,
                                                                   asio::io_context& io,
                                                                   StopFn request_stop) {
  std::unique_ptr<DeviceManager> manager(new DeviceManager(config, io, std::move(request_stop)));
  TRY(manager->CreateVirtioDevices());
  return manager;
}

base::Result<void> DeviceManager::CreateVirtioDevices() {
  std::vector<std::pair<std::string, std::shared_ptr<devices::virtio::VirtioDevice>>> devices;
  for (const auto& disk : config_.disks) {
    auto block = devices::virtio::Block::Create(disk.path, disk.read_only);
    if (!block) return std::unexpected(block.error().WithContext("--disk"));
    devices.emplace_back("block", *block);
  }
  if (config_.rng) devices.emplace_back("rng", std::make_shared<devices::virtio::Rng>());
  const SerialSpec& console_spec = config_.console;
  if (console_spec.kind != SerialSpec::Kind::kNone) {
    // Output goes to the backend opened in WireVirtio(); called on the device
    // event loop, after that.
    virtio_console_ =
        std::make_shared<devices::virtio::Console>([this](std::span<const uint8_t> bytes) {
          if (virtio_console_backend_) virtio_console_backend_->Output(bytes);
        });
    devices.emplace_back("console", virtio_console_);
  }
  if (devices.size() > allocator_.virtio_slots_left()) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "{} virtio devices requested; at most {} are supported", devices.size(),
                           allocator_.virtio_slots_left());
  }
  for (auto& [kind, device] : devices) {
    auto slot = std::make_unique<VirtioSlot>();
    slot->kind = kind;
    slot->device = std::move(device);
    slot->resources = TRY(allocator_.AllocateVirtioSlot());
    virtio_.push_back(std::move(slot));
  }
  return {};
}

std::string DeviceManager::CommandLineWords() const {
  std::string words;
  for (const auto& slot : virtio_) {
    words += (words.empty() ? "" : " ") + slot->resources.CommandLineWord();
  }
  return words;
}

std::vector<firmware::AcpiVirtioMmio> DeviceManager::AcpiVirtioDevices() const {
  std::vector<firmware::AcpiVirtioMmio> devices;
  for (const auto& slot : virtio_) {
    devices.push_back({slot->resources.base, slot->resources.size, slot->resources.irq});
  }
  return devices;
}

base::Result<void> DeviceManager::Wire(kvm::VmFd& vm, const base::GuestMemory& memory) {
  TRY(WireLegacy(vm));
  TRY(WireVirtio(vm, memory));
  return {};
}

base::Result<void> DeviceManager::WireLegacy(kvm::VmFd& vm) {
  auto irq4 = std::make_shared<KvmIrqLine>(vm, base::kCom1Irq);
  serial_ = std::make_shared<devices::Serial>(
      irq4, [this](std::span<const uint8_t> bytes) { OnSerialOutput(bytes); });
  TRY(pio_bus_.Insert(serial_, base::kCom1Port, 8));

  const ExitCodeMode exit_code = config_.exit_code;
  auto exit_port = std::make_shared<devices::DebugExit>([this, exit_code](uint32_t value) {
    request_stop_(exit_code == ExitCodeMode::kQemu ? VmExit::QemuGuestStatus(value)
                                                   : VmExit::GuestStatus(value));
  });
  TRY(pio_bus_.Insert(exit_port, base::kExitPort, 4));
  if (auto debugcon = TRY_CTX(devices::Debugcon::Create(config_.debugcon), "--debugcon")) {
    TRY(pio_bus_.Insert(debugcon, base::kDebugconPort, 1));
  }

  auto phase_port = std::make_shared<devices::BootPhasePort>(
      [](uint8_t code) { boot_trace::Mark(fmt::format("phase-{:#04x}", code)); });
  TRY(pio_bus_.Insert(phase_port, base::kBootPhasePort, 1));

  i8042_ = std::make_shared<devices::I8042>(
      [this] { request_stop_(VmExit::Clean("guest reset the machine through the i8042")); },
      std::make_shared<KvmIrqLine>(vm, base::kI8042Irq));
  TRY(pio_bus_.Insert(i8042_, base::kI8042DataPort, 1));
  TRY(pio_bus_.Insert(i8042_, base::kI8042CommandPort, 1));

  const uint64_t low = std::min(config_.memory, base::kMmioHoleStart);
  auto cmos = std::make_shared<devices::Cmos>(low, config_.memory - low);
  TRY(pio_bus_.Insert(cmos, base::kCmosPort, 2));

  const SerialSpec& spec = config_.serial;
  ConsoleOptions options;
  options.to_guest = [this](std::span<const uint8_t> bytes) { serial_->QueueInput(bytes); };
  options.guest_input_pending = [this] { return serial_->PendingInput(); };
  options.on_quit = [this] { request_stop_(VmExit::Clean("console: quit (Ctrl-A x)")); };
  console_ = TRY(Console::Create(io_, spec, std::move(options)));
  return {};
}

base::Result<void> DeviceManager::WireVirtio(kvm::VmFd& vm, const base::GuestMemory& memory) {
  for (auto& slot : virtio_) {
    const MmioSlot& at = slot->resources;
    int irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (irq_fd < 0)
      return base::MakeErrnoError(base::ErrorKind::kInternal, "eventfd for virtio irq");
    base::UniqueFd irq_owner(irq_fd);
    TRY(vm.RegisterIrqfd(irq_fd, at.irq));
    auto irq = std::make_shared<IrqfdLine>(std::move(irq_owner));
    auto post = [this](std::function<void()> task) { asio::post(io_, std::move(task)); };
    slot->transport = devices::virtio::VirtioMmio::Create(slot->device, memory, irq, post);
    TRY(mmio_bus_.Insert(slot->transport, at.base, devices::virtio::VirtioMmio::kSize));
    const size_t queues = slot->transport->queue_count();
    slot->notify_buffers.resize(queues);
    for (uint32_t q = 0; q < queues; ++q) {
      int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0)
        return base::MakeErrnoError(base::ErrorKind::kInternal, "eventfd for virtio queue");
      auto notifier = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
      TRY(vm.RegisterIoeventfd(fd, at.base + devices::virtio::VirtioMmio::kQueueNotifyOffset, 4,
                               /*pio=*/false, q));
      ArmNotifier(slot->transport, *notifier, slot->notify_buffers[q], q);
      slot->notifiers.push_back(std::move(notifier));
    }
  }
  if (virtio_console_) {
    const SerialSpec& spec = config_.console;
    ConsoleOptions options;
    auto device = virtio_console_;
    options.to_guest = [device](std::span<const uint8_t> bytes) { device->QueueInput(bytes); };
    options.guest_input_pending = [device] { return device->PendingInput(); };
    options.on_quit = [this] { request_stop_(VmExit::Clean("virtio console: quit (Ctrl-A x)")); };
    virtio_console_backend_ = TRY_CTX(Console::Create(io_, spec, std::move(options)), "--console");
  }
  return {};
}

std::vector<VirtioDeviceMetrics> DeviceManager::VirtioMetrics() const {
  std::vector<VirtioDeviceMetrics> list;
  for (size_t n = 0; n < virtio_.size(); ++n) {
    const VirtioSlot& slot = *virtio_[n];
    VirtioDeviceMetrics entry;
    entry.index = n;
    entry.type = slot.kind;
    entry.mmio_base = slot.resources.base;
    entry.irq = slot.resources.irq;
    if (slot.transport) entry.transport = slot.transport->stats();
    entry.counters = slot.device->counters();
    list.push_back(std::move(entry));
  }
  return list;
}

ConsoleStats DeviceManager::serial_stats() const {
  return console_ ? console_->stats() : ConsoleStats{};
}

std::string DeviceManager::LastSerialLine() const {
  return console_ ? console_->LastLine() : std::string();
}

void DeviceManager::SendCtrlAltDel() {
  if (i8042_) i8042_->InjectCtrlAltDel();
}

void DeviceManager::KeyEvent(uint32_t keysym, bool down) {
  if (!i8042_) return;
  if (auto key = Ps2KeyForKeysym(keysym)) {
    i8042_->InjectKey(*key, down);
  } else {
    spdlog::debug("vnc: keysym {:#x} has no PS/2 key; dropped", keysym);
  }
}

void DeviceManager::RestoreTerminals() {
  if (console_) console_->RestoreTerminal();
  if (virtio_console_backend_) virtio_console_backend_->RestoreTerminal();
}

void DeviceManager::OnSerialOutput(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  if (!first_serial_byte_seen_.exchange(true)) boot_trace::Mark("first-serial-byte");
  console_->Output(bytes);
}

}  // namespace vmm
