#include "vmm/vm.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
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
#include "vmm/console/console.h"
#include "vmm/guest_debug.h"
#include "vmm/insn_assist.h"
#include "vmm/insn_name.h"

namespace vmm {
namespace {

// Where KVM puts its private TSS and identity-map page on Intel hosts: just
// below the 4 GiB boundary, inside the MMIO hole (as Firecracker and QEMU).
constexpr uint64_t kKvmTssAddress = 0xfffbd000;
constexpr uint64_t kKvmIdentityMapAddress = 0xfffbc000;

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

kvm_segment ToKvm(const firmware::SegmentState& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

// VmHWM from /proc/self/status: the process's peak resident set.
uint64_t PeakRssKiB() {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    if (std::sscanf(line, "VmHWM: %lu kB", &kib) == 1) break;
  }
  std::fclose(status);
  return kib;
}

// Guest RAM pages resident in host memory (mincore), i.e. what the guest
// touched: the part of the RSS that is the guest's, not vmm's.
uint64_t GuestResidentKiB(const base::GuestMemory& memory) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uint64_t resident = 0;
  std::vector<unsigned char> pages;
  for (const auto& region : memory.regions()) {
    pages.resize((region.size + page - 1) / page);
    if (mincore(region.host, region.size, pages.data()) != 0) continue;
    for (unsigned char p : pages) resident += p & 1;
  }
  return resident * page / 1024;
}

}  // namespace

base::Result<std::unique_ptr<Vm>> Vm::Create(const VmConfig& config) {
  TRY(ValidateConfig(config));
  std::unique_ptr<Vm> vm(new Vm(config));
  vm->cpu_template_ = ResolveCpuTemplate(TRY(ParseCpuTemplate(config.cpu_template)));

  // Memory and kernel first: a bad image or a missing file is reported as
  // such (65/66) whether or not KVM is usable on this host.
  vm->memory_ = TRY(base::GuestMemory::Create(config.memory));
  firmware::BootConfig boot_config;
  boot_config.kernel_path = config.kernel;
  boot_config.initrd_paths = config.initrds;
  boot_config.cmdline = config.cmdline;
  TRY(vm->CreateVirtioDevices(boot_config.cmdline));
  boot_config.protocol = TRY(firmware::ParseBootProtocol(config.boot_protocol));
  boot_config.cpus = config.cpus;
  vm->boot_ = TRY(firmware::LoadKernel(*vm->memory_, boot_config));
  boot_trace::Mark("kernel-loaded");
  spdlog::info("kernel {}: {} ({})", config.kernel, vm->boot_.description,
               firmware::BootProtocolName(vm->boot_.protocol));

  TRY(vm->SetUpKvm());
  TRY(vm->WireDevices());
  TRY(vm->WireVirtio());
  for (uint32_t id = 0; id < config.cpus; ++id) {
    auto vcpu = std::make_unique<Vcpu>();
    vcpu->fd = TRY(vm->vm_fd_->CreateVcpu(id));
    TRY(vm->SetUpVcpu(*vcpu));
    vm->vcpus_.push_back(std::move(vcpu));
  }
  boot_trace::Mark("vm-created");
  return vm;
}

Vm::~Vm() {
  JoinVcpus();
  event_loop_.Stop();
  if (console_) console_->RestoreTerminal();
  if (virtio_console_backend_) virtio_console_backend_->RestoreTerminal();
}

base::Result<void> Vm::SetUpKvm() {
  // VMM_KVM_DEVICE overrides the device path (tests use it to check the
  // "KVM unavailable" path; users with a renamed node may too).
  const char* device = std::getenv("VMM_KVM_DEVICE");
  kvm_ = TRY(kvm::Kvm::Open(device != nullptr && *device != '\0' ? device : "/dev/kvm"));
  vm_fd_ = TRY(kvm_->CreateVm());
  TRY(vm_fd_->SetTssAddr(kKvmTssAddress));
  if (auto result = vm_fd_->SetIdentityMapAddr(kKvmIdentityMapAddress); !result) {
    // Only VMX without unrestricted guest needs it; not fatal elsewhere.
    spdlog::debug("{}", result.error().ToString());
  }
  TRY(vm_fd_->CreateIrqchip());
  TRY(vm_fd_->CreatePit2());
  uint32_t slot = 0;
  for (const auto& region : memory_->regions()) {
    TRY(vm_fd_->SetUserMemoryRegion(slot++, region.guest_phys, region.size, region.host));
  }
  return {};
}

// Every device at its address, in one place (conventions.md: no hidden
// registration). Addresses and IRQs: firmware/layout.h, design.md.
base::Result<void> Vm::WireDevices() {
  auto irq4 = std::make_shared<KvmIrqLine>(*vm_fd_, base::kCom1Irq);
  serial_ = std::make_shared<devices::Serial>(
      irq4, [this](std::span<const uint8_t> bytes) { OnSerialOutput(bytes); });
  TRY(pio_bus_.Insert(serial_, base::kCom1Port, 8));

  auto exit_port = std::make_shared<devices::DebugExit>([this](uint32_t value) {
    if (config_.exit_code == "qemu") {  // isa-debug-exit: (v << 1) | 1, truncated as exit(3) does
      RequestStop(VmExit{static_cast<int>(((value << 1) | 1) & 0xff),
                         fmt::format("guest wrote {} to the exit port (--exit-code qemu)", value),
                         "", false});
      return;
    }
    VmExit exit;
    exit.status = static_cast<int>(value & 0xff);
    exit.reason = fmt::format("guest wrote {} to the exit port", value);
    if (value > 63) {
      exit.abnormal = true;
      exit.reason = fmt::format(
          "guest wrote {} to the exit port; statuses above 63 are reserved, exiting with 63",
          value);
      exit.status = 63;
    }
    RequestStop(std::move(exit));
  });
  TRY(pio_bus_.Insert(exit_port, base::kExitPort, 4));
  if (auto debugcon = TRY_CTX(devices::Debugcon::Create(config_.debugcon), "--debugcon")) {
    TRY(pio_bus_.Insert(debugcon, base::kDebugconPort, 1));
  }

  auto phase_port = std::make_shared<devices::BootPhasePort>(
      [](uint8_t code) { boot_trace::Mark(fmt::format("phase-{:#04x}", code)); });
  TRY(pio_bus_.Insert(phase_port, base::kBootPhasePort, 1));

  i8042_ = std::make_shared<devices::I8042>(
      [this] {
        RequestStop(VmExit{0, "guest reset the machine through the i8042", "", false});
      },
      std::make_shared<KvmIrqLine>(*vm_fd_, base::kI8042Irq));
  auto& i8042 = i8042_;
  TRY(pio_bus_.Insert(i8042, base::kI8042DataPort, 1));
  TRY(pio_bus_.Insert(i8042, base::kI8042CommandPort, 1));

  const uint64_t low = std::min(config_.memory, base::kMmioHoleStart);
  auto cmos = std::make_shared<devices::Cmos>(low, config_.memory - low);
  TRY(pio_bus_.Insert(cmos, base::kCmosPort, 2));

  auto spec = TRY(ParseSerialSpec(config_.serial));
  ConsoleOptions options;
  options.to_guest = [this](std::span<const uint8_t> bytes) { serial_->QueueInput(bytes); };
  options.guest_input_pending = [this] { return serial_->PendingInput(); };
  options.on_quit = [this] { RequestStop(VmExit{0, "console: quit (Ctrl-A x)", "", false}); };
  console_ = TRY(Console::Create(event_loop_.context(), spec, std::move(options)));
  return {};
}

namespace {

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

// Linux's virtio-mmio cmdline form allows IRQs routed by the MP table's ISA
// entries (pins 0-15): devices use IRQ 5..12.
constexpr size_t kMaxVirtioDevices = 8;

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

base::Result<void> Vm::CreateVirtioDevices(std::string& cmdline) {
  std::vector<std::pair<std::string, std::shared_ptr<devices::virtio::VirtioDevice>>> devices;
  for (const auto& disk : config_.disks) {
    auto block = devices::virtio::Block::Create(disk.path, disk.read_only);
    if (!block) return std::unexpected(block.error().WithContext("--disk"));
    devices.emplace_back("block", *block);
  }
  if (config_.rng) devices.emplace_back("rng", std::make_shared<devices::virtio::Rng>());
  auto console_spec = TRY_CTX(ParseSerialSpec(config_.console), "--console");
  if (console_spec.kind != SerialSpec::Kind::kNone) {
    // Output goes to the backend opened in WireVirtio(); called on the event
    // loop, after that.
    virtio_console_ =
        std::make_shared<devices::virtio::Console>([this](std::span<const uint8_t> bytes) {
          if (virtio_console_backend_) virtio_console_backend_->Output(bytes);
        });
    devices.emplace_back("console", virtio_console_);
  }
  if (devices.size() > kMaxVirtioDevices) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "{} virtio devices requested; at most {} are supported", devices.size(),
                           kMaxVirtioDevices);
  }
  for (size_t n = 0; n < devices.size(); ++n) {
    auto slot = std::make_unique<VirtioSlot>();
    slot->kind = devices[n].first;
    slot->device = devices[n].second;
    slot->base = base::kVirtioMmioBase + n * base::kVirtioMmioStride;
    slot->irq = base::kVirtioMmioFirstIrq + static_cast<uint32_t>(n);
    cmdline += (cmdline.empty() ? "" : " ") +
               devices::virtio::VirtioMmio::CommandLineWord(slot->base, slot->irq);
    virtio_.push_back(std::move(slot));
  }
  return {};
}

base::Result<void> Vm::WireVirtio() {
  for (auto& slot : virtio_) {
    int irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (irq_fd < 0)
      return base::MakeErrnoError(base::ErrorKind::kInternal, "eventfd for virtio irq");
    base::UniqueFd irq_owner(irq_fd);
    TRY(vm_fd_->RegisterIrqfd(irq_fd, slot->irq));
    auto irq = std::make_shared<IrqfdLine>(std::move(irq_owner));
    auto post = [this](std::function<void()> task) {
      asio::post(event_loop_.context(), std::move(task));
    };
    slot->transport = devices::virtio::VirtioMmio::Create(slot->device, *memory_, irq, post);
    TRY(mmio_bus_.Insert(slot->transport, slot->base, devices::virtio::VirtioMmio::kSize));
    const size_t queues = slot->transport->queue_count();
    slot->notify_buffers.resize(queues);
    for (uint32_t q = 0; q < queues; ++q) {
      int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0)
        return base::MakeErrnoError(base::ErrorKind::kInternal, "eventfd for virtio queue");
      auto notifier = std::make_unique<asio::posix::stream_descriptor>(event_loop_.context(), fd);
      TRY(vm_fd_->RegisterIoeventfd(
          fd, slot->base + devices::virtio::VirtioMmio::kQueueNotifyOffset, 4, /*pio=*/false, q));
      ArmNotifier(slot->transport, *notifier, slot->notify_buffers[q], q);
      slot->notifiers.push_back(std::move(notifier));
    }
  }
  if (virtio_console_) {
    auto spec = TRY_CTX(ParseSerialSpec(config_.console), "--console");
    ConsoleOptions options;
    auto device = virtio_console_;
    options.to_guest = [device](std::span<const uint8_t> bytes) { device->QueueInput(bytes); };
    options.guest_input_pending = [device] { return device->PendingInput(); };
    options.on_quit = [this] {
      RequestStop(VmExit{0, "virtio console: quit (Ctrl-A x)", "", false});
    };
    virtio_console_backend_ =
        TRY_CTX(Console::Create(event_loop_.context(), spec, std::move(options)), "--console");
  }
  return {};
}

nlohmann::json Vm::VirtioMetrics() const {
  nlohmann::json list = nlohmann::json::array();
  for (size_t n = 0; n < virtio_.size(); ++n) {
    const VirtioSlot& slot = *virtio_[n];
    nlohmann::json entry = {{"index", n},
                            {"type", slot.kind},
                            {"mmio_base", fmt::format("{:#x}", slot.base)},
                            {"irq", slot.irq}};
    if (slot.transport) {
      const auto stats = slot.transport->stats();
      entry["notifications"] = stats.notifications;
      entry["interrupts"] = stats.interrupts;
      entry["interrupts_suppressed"] = stats.interrupts_suppressed;
      entry["guest_errors"] = stats.guest_errors;
      entry["rejected_chains"] = stats.rejected_chains;
      entry["stale_completions"] = stats.stale_completions;
      entry["resets"] = stats.resets;
      entry["needs_reset"] = stats.needs_reset;
      entry["status"] = stats.status;
    }
    const devices::virtio::DeviceCounters counters = slot.device->counters();
    entry["requests"] = counters.requests;
    entry["bytes_read"] = counters.bytes_read;
    entry["bytes_written"] = counters.bytes_written;
    entry["errors"] = counters.errors;
    for (const auto& [name, value] : counters.extra) entry[name] = value;
    list.push_back(std::move(entry));
  }
  return list;
}

namespace {

// After KVM_SET_CPUID2 on vCPU 0: reads the table back and says where KVM
// did not take the template (FindCpuidOverrides). A warning when the user
// chose the template, an info line under `auto`. At --log-level debug it
// also prints the feature leaves as set and as held.
void CheckCpuidTaken(const kvm::VcpuFd& fd, const std::vector<kvm_cpuid_entry2>& set,
                     std::string_view template_name, bool chosen) {
  auto held = fd.GetCpuid();
  if (!held) {
    spdlog::debug("{}", held.error().message());
    return;
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    for (const auto& entry : set) {
      if (entry.function != 0x1 && entry.function != 0x7 && entry.function != 0xd &&
          entry.function != 0x80000001) {
        continue;
      }
      for (const auto& h : *held) {
        if (h.function != entry.function || h.index != entry.index) continue;
        spdlog::debug(
            "cpuid {:#x}.{}: set {:08x} {:08x} {:08x} {:08x}, KVM holds {:08x} {:08x} "
            "{:08x} {:08x}",
            entry.function, entry.index, entry.eax, entry.ebx, entry.ecx, entry.edx, h.eax, h.ebx,
            h.ecx, h.edx);
      }
    }
  }
  const auto overrides = FindCpuidOverrides(set, *held);
  if (overrides.empty()) return;
  std::string list;
  for (const auto& o : overrides) {
    list += fmt::format("{}leaf {:#x}.{} e{}x +{:#010x}", list.empty() ? "" : ", ", o.function,
                        o.index, o.reg, o.added_bits);
  }
  spdlog::log(chosen ? spdlog::level::warn : spdlog::level::info,
              "KVM did not take CPU template '{}' as given: it adds feature bits the template "
              "leaves out ({}), and the guest sees them (docs/linux.md, \"CPUID on this host\")",
              template_name, list);
}

}  // namespace

base::Result<void> Vm::SetUpVcpu(Vcpu& vcpu) {
  kvm::VcpuFd& fd = *vcpu.fd;
  auto cpuid = TRY(kvm_->GetSupportedCpuid());
  ApplyCpuTemplate(cpu_template_, fd.id(), config_.cpus, cpuid);
  TRY(fd.SetCpuid(cpuid));
  if (fd.id() == 0) {
    CheckCpuidTaken(fd, cpuid, CpuTemplateName(cpu_template_), config_.cpu_template != "auto");
  }
  TRY(fd.SetMsrs(BootMsrs()));

  // x87/SSE state as after FNINIT and power-on MXCSR (Intel SDM Vol. 1 §8.1.5, §10.2.3).
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  TRY(fd.SetFpu(fpu));

  // LAPIC: LINT0 = ExtINT (the 8259's virtual wire), LINT1 = NMI, as the MP
  // spec's virtual-wire mode expects (MP 1.4 §3.6.2.2).
  auto lapic = TRY(fd.GetLapic());
  auto set_lvt = [&](size_t offset, uint32_t delivery_mode) {
    uint32_t value;
    std::memcpy(&value, &lapic.regs[offset], 4);
    value = (value & ~0x700u) | (delivery_mode << 8);
    std::memcpy(&lapic.regs[offset], &value, 4);
  };
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryExtInt = 7, kDeliveryNmi = 4;
  set_lvt(kLvtLint0, kDeliveryExtInt);
  set_lvt(kLvtLint1, kDeliveryNmi);
  TRY(fd.SetLapic(lapic));

  if (fd.id() != 0) return {};  // APs wait for INIT/SIPI in the in-kernel LAPIC.

  const firmware::CpuBootState& cpu = boot_.cpu;
  kvm_regs regs{};
  regs.rip = cpu.rip;
  regs.rsp = cpu.rsp;
  regs.rbp = cpu.rsp;
  regs.rflags = cpu.rflags;
  regs.rax = cpu.rax;
  regs.rbx = cpu.rbx;
  regs.rsi = cpu.rsi;
  regs.rdi = cpu.rdi;
  TRY(fd.SetRegs(regs));

  kvm_sregs sregs = TRY(fd.GetSregs());
  sregs.cs = ToKvm(cpu.cs);
  sregs.ds = ToKvm(cpu.ds);
  sregs.es = ToKvm(cpu.es);
  sregs.fs = ToKvm(cpu.fs);
  sregs.gs = ToKvm(cpu.gs);
  sregs.ss = ToKvm(cpu.ss);
  sregs.tr = ToKvm(cpu.tr);
  sregs.ldt = ToKvm(cpu.ldt);
  sregs.gdt.base = cpu.gdt.base;
  sregs.gdt.limit = cpu.gdt.limit;
  sregs.idt.base = cpu.idt.base;
  sregs.idt.limit = cpu.idt.limit;
  sregs.cr0 = cpu.cr0;
  sregs.cr3 = cpu.cr3;
  sregs.cr4 = cpu.cr4;
  sregs.efer = cpu.efer;
  TRY(fd.SetSregs(sregs));
  return {};
}

VmExit Vm::Run() {
  InstallKickHandler();
  event_loop_.Start();

  // Timeout and SIGINT/SIGTERM are handled on the event loop.
  std::optional<asio::steady_timer> timer;
  if (config_.timeout_seconds > 0) {
    timer.emplace(event_loop_.context());
    timer->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config_.timeout_seconds)));
    timer->async_wait([this](const std::error_code& ec) {
      if (ec) return;
      RequestStop(VmExit{
          kExitTimeout,
          fmt::format("timeout: the guest was still running after {} s", config_.timeout_seconds),
          "", true});
    });
  }
  asio::signal_set signals(event_loop_.context(), SIGINT, SIGTERM);
  signals.async_wait([this](const std::error_code& ec, int signo) {
    if (ec) return;
    RequestStop(VmExit{signo == SIGINT ? kExitSigint : kExitSigterm,
                       fmt::format("stopped by {}", signo == SIGINT ? "SIGINT" : "SIGTERM"), "",
                       true});
  });

  if (!config_.api_sock.empty()) {
    auto server = ApiServer::Create(event_loop_.context(), config_.api_sock, *this);
    if (!server) {
      return VmExit{server.error().exit_status(),
                    fmt::format("--api-sock: {}", server.error().ToString()), "", true};
    }
    api_server_ = std::move(*server);
  }
  started_at_ = std::chrono::steady_clock::now();
  started_ = true;
  for (auto& vcpu : vcpus_) {
    Vcpu* raw = vcpu.get();
    vcpu->thread = std::thread([this, raw] { VcpuLoop(*raw); });
  }

  VmExit result;
  {
    std::unique_lock lock(exit_mutex_);
    exit_cv_.wait(lock, [this] { return exit_.has_value(); });
    result = *exit_;
  }
  boot_trace::Mark("exit");
  JoinVcpus();
  if (result.status == kExitTimeout && !vcpus_.empty()) {
    // Where the guest was when time ran out: the vCPU threads are gone, so
    // the main thread may read their registers.
    result.details = DumpState(*vcpus_[0], true);
  }
  asio::post(event_loop_.context(), [&] {
    std::error_code ignored;
    signals.cancel(ignored);
    if (timer) timer->cancel();
  });
  event_loop_.Stop();
  api_server_.reset();
  if (console_) console_->RestoreTerminal();
  if (virtio_console_backend_) virtio_console_backend_->RestoreTerminal();
  if (spdlog::should_log(spdlog::level::info)) {
    spdlog::info("memory: peak RSS {} KiB, guest RAM resident {} KiB", PeakRssKiB(),
                 GuestResidentKiB(*memory_));
    for (const auto& entry : VirtioMetrics()) {
      spdlog::info(
          "virtio {} {} (irq {}): notifications {} requests {} bytes_read {} bytes_written {} "
          "interrupts {} suppressed {} errors {} rejected_chains {} guest_errors {} needs_reset {}",
          entry["index"].get<size_t>(), entry["type"].get<std::string>(),
          entry["irq"].get<uint32_t>(), entry["notifications"].get<uint64_t>(),
          entry["requests"].get<uint64_t>(), entry["bytes_read"].get<uint64_t>(),
          entry["bytes_written"].get<uint64_t>(), entry["interrupts"].get<uint64_t>(),
          entry["interrupts_suppressed"].get<uint64_t>(), entry["errors"].get<uint64_t>(),
          entry["rejected_chains"].get<uint64_t>(), entry["guest_errors"].get<uint64_t>(),
          entry["needs_reset"].get<bool>());
    }
  }
  spdlog::debug("exits: io {} mmio {} other {}; unclaimed pio {} mmio {}", exits_io_.load(),
                exits_mmio_.load(), exits_other_.load(), unclaimed_pio_.load(),
                unclaimed_mmio_.load());
  return result;
}

void Vm::RequestStop(VmExit exit) {
  {
    std::lock_guard lock(exit_mutex_);
    if (exit_) return;
    exit_ = std::move(exit);
  }
  stopping_ = true;
  exit_cv_.notify_all();
  { std::lock_guard lock(pause_mutex_); }
  pause_cv_.notify_all();
  KickAll();
}

void Vm::KickAll() {
  // kick_mutex_ keeps a thread from being joined (its pthread_t freed) while
  // we signal it; JoinVcpus() clears the handle under the same lock.
  std::lock_guard lock(kick_mutex_);
  for (auto& vcpu : vcpus_) {
    if (!vcpu->fd) continue;
    __atomic_store_n(&vcpu->fd->run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_t handle = vcpu->handle.load();
    if (handle != pthread_t{}) pthread_kill(handle, kKickSignal);
  }
}

void Vm::JoinVcpus() {
  stopping_ = true;
  KickAll();
  for (auto& vcpu : vcpus_) {
    if (!vcpu->thread.joinable()) continue;
    {
      std::lock_guard lock(kick_mutex_);
      vcpu->handle.store(pthread_t{});
    }
    vcpu->thread.join();
  }
}

void Vm::VcpuLoop(Vcpu& vcpu) {
  vcpu.handle.store(pthread_self());
  // Block SIGINT/SIGTERM here so they reach the event loop's handler thread;
  // the kick signal stays deliverable.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  if (vcpu.fd->id() == 0) boot_trace::Mark("first-run");
  kvm_run* run = vcpu.fd->run();
  while (!stopping_.load()) {
    auto ran = vcpu.fd->Run();
    if (!ran) {
      RequestStop(VmExit{kExitKvmFailure, ran.error().ToString(), DumpState(vcpu, false), true});
      return;
    }
    if (!*ran) {  // EINTR: a kick; re-check the stop and pause flags.
      __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
      if (paused_.load()) ParkWhilePaused(vcpu);
      continue;
    }
    if (!HandleExit(vcpu)) return;
  }
}

// While paused the guest's time must stand still (as seen by the guest): the
// vCPU's TSC offset is moved back by the length of the pause (in TSC cycles)
// when it resumes, and kvmclock is frozen in Pause()/Resume(). Without
// KVM_VCPU_TSC_OFFSET (Linux < 5.16) the guest's TSC jumps; that is logged.
void Vm::ParkWhilePaused(Vcpu& vcpu) {
  const auto parked_at = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(pause_mutex_);
    pause_cv_.wait(lock, [this] { return !paused_.load() || stopping_.load(); });
  }
  if (stopping_.load()) return;
  auto offset = vcpu.fd->GetTscOffset();
  auto khz = vcpu.fd->GetTscKhz();
  if (!offset || !khz) {
    spdlog::warn("vcpu {}: cannot hide the pause from the guest's TSC: {}", vcpu.fd->id(),
                 (!offset ? offset.error() : khz.error()).ToString());
    return;
  }
  const double paused_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - parked_at).count();
  const auto cycles = static_cast<int64_t>(paused_s * 1000.0 * static_cast<double>(*khz));
  if (auto set = vcpu.fd->SetTscOffset(*offset - cycles); !set) {
    spdlog::warn("vcpu {}: {}", vcpu.fd->id(), set.error().ToString());
  }
}

bool Vm::HandleExit(Vcpu& vcpu) {
  kvm_run* run = vcpu.fd->run();
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      exits_io_.fetch_add(1, std::memory_order_relaxed);
      HandleIo(vcpu);
      return true;
    case KVM_EXIT_MMIO:
      exits_mmio_.fetch_add(1, std::memory_order_relaxed);
      HandleMmio(vcpu);
      return true;
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_HLT:
      // With the in-kernel LAPIC, HLT is handled in KVM; an exit here means
      // the guest halted for good.
      RequestStop(VmExit{0, "guest halted", "", false});
      return false;
    case KVM_EXIT_SHUTDOWN:
      RequestStop(
          VmExit{kExitTripleFault,
                 fmt::format("guest triple-faulted (KVM shutdown exit) on vcpu {}", vcpu.fd->id()),
                 DumpState(vcpu, false), true});
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      RequestStop(VmExit{kExitKvmFailure,
                         fmt::format("KVM could not enter the guest on vcpu {} (hardware reason "
                                     "{:#x})",
                                     vcpu.fd->id(), run->fail_entry.hardware_entry_failure_reason),
                         DumpState(vcpu, false), true});
      return false;
    case KVM_EXIT_DEBUG:  // a ring-0 int3 goes back to the guest as #BP (vmm/guest_debug.h)
    case KVM_EXIT_INTERNAL_ERROR: {
      if (auto handed_back = ReinjectInt3(*vcpu.fd, *memory_); handed_back && *handed_back) {
        return true;
      }
      // An instruction KVM could not emulate but vmm can (vmm/insn_assist.h).
      if (auto completed = CompleteUnemulatedInstruction(*vcpu.fd, *memory_); !completed) {
        spdlog::warn("vcpu {}: {}", vcpu.fd->id(), completed.error().message());
      } else if (*completed) {
        return true;
      }
      const bool emulation = run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
                             run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION;
      RequestStop(VmExit{
          kExitKvmFailure,
          emulation ? fmt::format("KVM could not emulate an instruction on vcpu {}", vcpu.fd->id())
                    : fmt::format("KVM internal error (suberror {}) on vcpu {}",
                                  run->internal.suberror, vcpu.fd->id()),
          DumpState(vcpu, true), true});
      return false;
    }
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          RequestStop(VmExit{0, "guest powered off", "", false});
          break;
        case KVM_SYSTEM_EVENT_RESET:
          RequestStop(VmExit{0, "guest reset the machine", "", false});
          break;
        default:
          RequestStop(VmExit{kExitKvmFailure,
                             fmt::format("guest system event {} (crash)", run->system_event.type),
                             DumpState(vcpu, false), true});
      }
      return false;
    default:
      exits_other_.fetch_add(1, std::memory_order_relaxed);
      RequestStop(VmExit{
          kExitKvmFailure,
          fmt::format("unexpected KVM exit reason {} on vcpu {}", run->exit_reason, vcpu.fd->id()),
          DumpState(vcpu, false), true});
      return false;
  }
}

void Vm::HandleIo(Vcpu& vcpu) {
  kvm_run* run = vcpu.fd->run();
  auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const size_t size = run->io.size;
  for (uint32_t i = 0; i < run->io.count; ++i) {
    std::span<uint8_t> data(base + i * size, size);
    if (run->io.direction == KVM_EXIT_IO_OUT) {
      if (!pio_bus_.Write(run->io.port, data, vcpu.fd->id())) {
        unclaimed_pio_.fetch_add(1, std::memory_order_relaxed);
      }
    } else if (!pio_bus_.Read(run->io.port, data, vcpu.fd->id())) {
      unclaimed_pio_.fetch_add(1, std::memory_order_relaxed);
      std::memset(data.data(), 0xff, size);  // floating ISA bus reads all ones
    }
  }
}

void Vm::HandleMmio(Vcpu& vcpu) {
  kvm_run* run = vcpu.fd->run();
  const uint32_t len = std::min<uint32_t>(run->mmio.len, sizeof(run->mmio.data));
  std::span<uint8_t> data(run->mmio.data, len);
  if (run->mmio.is_write) {
    if (!mmio_bus_.Write(run->mmio.phys_addr, data, vcpu.fd->id())) {
      unclaimed_mmio_.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (!mmio_bus_.Read(run->mmio.phys_addr, data, vcpu.fd->id())) {
    unclaimed_mmio_.fetch_add(1, std::memory_order_relaxed);
    std::memset(data.data(), 0xff, len);
  }
}

std::string Vm::DumpState(const Vcpu& vcpu, bool with_instruction) const {
  std::string out;
  auto regs = vcpu.fd->GetRegs();
  auto sregs = vcpu.fd->GetSregs();
  if (!regs || !sregs) {
    return fmt::format("(registers unavailable: {})",
                       (!regs ? regs.error() : sregs.error()).ToString());
  }
  const kvm_regs& r = *regs;
  const kvm_sregs& s = *sregs;
  out += fmt::format("vcpu {} registers:\n", vcpu.fd->id());
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
    const kvm_run* run = vcpu.fd->run();
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
        run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
      count = std::min<size_t>(run->emulation_failure.insn_size, sizeof(bytes));
      std::memcpy(bytes, run->emulation_failure.insn_bytes, count);
    } else {
      const uint64_t linear = s.cs.base + r.rip;
      for (count = 0; count < sizeof(bytes); ++count) {
        auto phys = vcpu.fd->Translate(linear + count);
        if (!phys || !*phys) break;
        auto byte = memory_->ReadObj<uint8_t>(**phys);
        if (!byte) break;
        bytes[count] = *byte;
      }
    }
    std::span<const uint8_t> insn(bytes, count);
    std::string name = DescribeInstruction(insn);
    out += fmt::format("  instruction at RIP: {}{}\n", count ? HexBytes(insn) : "(unreadable)",
                       name.empty() ? "" : fmt::format("  ({})", name));
  }
  out += fmt::format("last serial line: \"{}\"\n", LastSerialLine());
  return out;
}

void Vm::OnSerialOutput(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  if (!first_serial_byte_seen_.exchange(true)) boot_trace::Mark("first-serial-byte");
  console_->Output(bytes);
}

nlohmann::json Vm::Info() {
  const char* state = "NotStarted";
  if (stopping_.load()) {
    state = "Stopping";
  } else if (started_.load()) {
    state = paused_.load() ? "Paused" : "Running";
  }
  double uptime =
      started_.load()
          ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count()
          : 0.0;
  ConsoleStats stats = console_->stats();
  return nlohmann::json{
      {"state", state},
      {"vcpus", config_.cpus},
      {"memory_bytes", config_.memory},
      {"uptime_seconds", uptime},
      {"kernel", config_.kernel},
      {"boot_protocol", firmware::BootProtocolName(boot_.protocol)},
      {"cpu_template", std::string(CpuTemplateName(cpu_template_))},
      {"exits",
       {{"io", exits_io_.load()}, {"mmio", exits_mmio_.load()}, {"other", exits_other_.load()}}},
      {"serial", {{"bytes_in", stats.bytes_in}, {"bytes_out", stats.bytes_out}}},
  };
}

base::Result<void> Vm::Pause() {
  std::lock_guard lock(pause_mutex_);
  if (paused_.load()) return {};
  if (auto clock = vm_fd_->GetClock(); clock) paused_clock_ = *clock;
  paused_ = true;
  KickAll();
  return {};
}

base::Result<void> Vm::Resume() {
  {
    std::lock_guard lock(pause_mutex_);
    if (!paused_.load()) return {};
    if (paused_clock_) {
      if (auto set = vm_fd_->SetClock(*paused_clock_); !set) {
        spdlog::warn("restoring kvmclock after a pause: {}", set.error().ToString());
      }
      paused_clock_.reset();
    }
    paused_ = false;
  }
  pause_cv_.notify_all();
  return {};
}

base::Result<void> Vm::Shutdown() {
  RequestStop(VmExit{0, "shut down through the control API", "", false});
  return {};
}

base::Result<void> Vm::Reset() {
  // design.md: a machine reset ends vmm with status 0, as the i8042 path does.
  RequestStop(VmExit{0, "reset through the control API", "", false});
  return {};
}

base::Result<void> Vm::SendCtrlAltDel() {
  // As Firecracker: the key presses reach the guest through the i8042; a
  // guest with a keyboard driver reboots (and its i8042 reset ends vmm).
  i8042_->InjectCtrlAltDel();
  return {};
}

nlohmann::json Vm::Metrics() {
  ConsoleStats stats = console_->stats();
  return nlohmann::json{
      {"vm",
       {{"exits_io", exits_io_.load()},
        {"exits_mmio", exits_mmio_.load()},
        {"exits_other", exits_other_.load()},
        {"unclaimed_pio", unclaimed_pio_.load()},
        {"unclaimed_mmio", unclaimed_mmio_.load()}}},
      {"serial",
       {{"bytes_out", stats.bytes_out},
        {"bytes_in", stats.bytes_in},
        {"bytes_dropped", stats.bytes_dropped},
        {"clients", stats.clients},
        {"clients_total", stats.clients_total}}},
      {"virtio", VirtioMetrics()},
  };
}

std::string Vm::LastSerialLine() const { return console_->LastLine(); }

}  // namespace vmm
