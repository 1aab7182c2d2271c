#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace vmm::kvm {
namespace {

// KVM API version this code is written against (Documentation/virt/kvm/api.rst §4.1).
constexpr int kKvmApiVersion = 12;

struct RequiredCap {
  long cap;
  const char* name;
};
// Capabilities vmm cannot run without.
constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
};

// The uapi headers declare the variable-length KVM structs with
// __DECLARE_FLEX_ARRAY, which in C++ (before Linux 6.5's fix) wraps the array
// in an empty struct: sizeof and the array's offset both come out 4 bytes
// larger than the kernel's, so the _IOW/_IOWR numbers are wrong (EINVAL) and
// the entries would land in the wrong place. These headers and numbers have
// the C layout (Documentation/virt/kvm/api.rst §4.46, §4.18, §4.3).
struct CpuidHeader {  // struct kvm_cpuid2, then kvm_cpuid_entry2[nent]
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs, then kvm_msr_entry[nmsrs]
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {  // struct kvm_msr_list, then uint32_t[nmsrs]
  uint32_t nmsrs;
};
constexpr unsigned long kGetSupportedCpuid =
    _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, sizeof(CpuidHeader));
constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, sizeof(CpuidHeader));
constexpr unsigned long kGetCpuid2 = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x91, sizeof(CpuidHeader));
constexpr unsigned long kGetMsrIndexList =
    _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, sizeof(MsrListHeader));
constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, sizeof(MsrsHeader));
constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, sizeof(MsrsHeader));

// A header followed by `count` items, laid out as the kernel expects.
template <typename Header, typename Item>
class VarStruct {
 public:
  explicit VarStruct(size_t count) : buffer_(sizeof(Header) + count * sizeof(Item)) {}
  Header* header() { return reinterpret_cast<Header*>(buffer_.data()); }
  Item* items() { return reinterpret_cast<Item*>(buffer_.data() + sizeof(Header)); }
  void* data() { return buffer_.data(); }

 private:
  std::vector<uint8_t> buffer_;
};

// ioctl that retries EINTR (except for KVM_RUN, handled by the caller).
template <typename Arg>
int Ioctl(int fd, unsigned long request, Arg arg) {
  int ret;
  do {
    ret = ::ioctl(fd, request, arg);
  } while (ret < 0 && errno == EINTR);
  return ret;
}

std::unexpected<base::Error> IoctlError(const char* name) {
  return base::MakeErrnoError(base::ErrorKind::kInternal, "{}", name);
}

}  // namespace

base::Result<std::unique_ptr<Kvm>> Kvm::Open(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) {
    return base::MakeErrnoError(base::ErrorKind::kUnavailable,
                                "cannot open {} (is the kvm module loaded and do you have access?)",
                                path);
  }
  std::unique_ptr<Kvm> kvm(new Kvm(base::UniqueFd(raw)));
  int version = ::ioctl(raw, KVM_GET_API_VERSION, 0);
  if (version != kKvmApiVersion) {
    return base::MakeError(base::ErrorKind::kUnavailable, "{}: KVM API version {} (expected {})",
                           path, version, kKvmApiVersion);
  }
  for (const auto& required : kRequiredCaps) {
    if (kvm->CheckExtension(required.cap) <= 0) {
      return base::MakeError(base::ErrorKind::kUnavailable,
                             "{}: required capability {} is not supported", path, required.name);
    }
  }
  int mmap_size = ::ioctl(raw, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size <= 0) return IoctlError("KVM_GET_VCPU_MMAP_SIZE");
  kvm->vcpu_mmap_size_ = static_cast<size_t>(mmap_size);
  return kvm;
}

int Kvm::CheckExtension(long capability) const {
  int ret = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return ret < 0 ? 0 : ret;
}

base::Result<std::vector<kvm_cpuid_entry2>> Kvm::GetSupportedCpuid() const {
  // The kernel says E2BIG when the buffer is too small; grow and retry.
  for (uint32_t count = 128; count <= 4096; count *= 2) {
    VarStruct<CpuidHeader, kvm_cpuid_entry2> cpuid(count);
    cpuid.header()->nent = count;
    if (Ioctl(fd_.get(), kGetSupportedCpuid, cpuid.data()) == 0) {
      return std::vector<kvm_cpuid_entry2>(cpuid.items(), cpuid.items() + cpuid.header()->nent);
    }
    if (errno != E2BIG) return IoctlError("KVM_GET_SUPPORTED_CPUID");
  }
  return base::MakeError(base::ErrorKind::kInternal,
                         "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

base::Result<std::vector<uint32_t>> Kvm::GetMsrIndexList() const {
  MsrListHeader probe{0};
  if (Ioctl(fd_.get(), kGetMsrIndexList, &probe) < 0 && errno != E2BIG) {
    return IoctlError("KVM_GET_MSR_INDEX_LIST");
  }
  VarStruct<MsrListHeader, uint32_t> list(probe.nmsrs);
  list.header()->nmsrs = probe.nmsrs;
  if (Ioctl(fd_.get(), kGetMsrIndexList, list.data()) < 0) {
    return IoctlError("KVM_GET_MSR_INDEX_LIST");
  }
  return std::vector<uint32_t>(list.items(), list.items() + list.header()->nmsrs);
}

base::Result<std::unique_ptr<VmFd>> Kvm::CreateVm() const {
  int raw = Ioctl(fd_.get(), KVM_CREATE_VM, 0);
  if (raw < 0) return base::MakeErrnoError(base::ErrorKind::kUnavailable, "KVM_CREATE_VM");
  return std::unique_ptr<VmFd>(new VmFd(base::UniqueFd(raw), vcpu_mmap_size_));
}

base::Result<void> VmFd::SetUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size,
                                             void* host) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (Ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal,
                                "KVM_SET_USER_MEMORY_REGION (slot {}, {:#x}+{:#x})", slot,
                                guest_phys, size);
  }
  return {};
}

base::Result<void> VmFd::SetTssAddr(uint64_t address) {
  if (Ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(address)) < 0) {
    return IoctlError("KVM_SET_TSS_ADDR");
  }
  return {};
}

base::Result<void> VmFd::SetIdentityMapAddr(uint64_t address) {
  if (Ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &address) < 0) {
    return IoctlError("KVM_SET_IDENTITY_MAP_ADDR");
  }
  return {};
}

base::Result<void> VmFd::CreateIrqchip() {
  if (Ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) return IoctlError("KVM_CREATE_IRQCHIP");
  return {};
}

base::Result<void> VmFd::CreatePit2() {
  kvm_pit_config config{};
  // The in-kernel PIT also handles port 0x61 (speaker / channel-2 gate), which
  // guests use to calibrate their timers.
  config.flags = 0;
  if (Ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) return IoctlError("KVM_CREATE_PIT2");
  return {};
}

base::Result<void> VmFd::SetIrqLine(uint32_t irq, bool level) {
  kvm_irq_level irq_level{};
  irq_level.irq = irq;
  irq_level.level = level ? 1 : 0;
  if (Ioctl(fd_.get(), KVM_IRQ_LINE, &irq_level) < 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal, "KVM_IRQ_LINE (irq {})", irq);
  }
  return {};
}

base::Result<void> VmFd::RegisterIrqfd(int eventfd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  if (Ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal, "KVM_IRQFD (gsi {})", gsi);
  }
  return {};
}

base::Result<void> VmFd::RegisterIoeventfd(int eventfd, uint64_t address, uint32_t length, bool pio,
                                           std::optional<uint64_t> datamatch) {
  kvm_ioeventfd ioeventfd{};
  ioeventfd.addr = address;
  ioeventfd.len = length;
  ioeventfd.fd = eventfd;
  if (pio) ioeventfd.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    ioeventfd.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    ioeventfd.datamatch = *datamatch;
  }
  if (Ioctl(fd_.get(), KVM_IOEVENTFD, &ioeventfd) < 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal, "KVM_IOEVENTFD ({:#x}, {} bytes)",
                                address, length);
  }
  return {};
}

base::Result<std::unique_ptr<VcpuFd>> VmFd::CreateVcpu(uint32_t id) {
  int raw = Ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (raw < 0)
    return base::MakeErrnoError(base::ErrorKind::kInternal, "KVM_CREATE_VCPU (vcpu {})", id);
  base::UniqueFd fd(raw);
  void* run = mmap(nullptr, vcpu_mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0);
  if (run == MAP_FAILED)
    return base::MakeErrnoError(base::ErrorKind::kInternal, "mmap of kvm_run (vcpu {})", id);
  return std::unique_ptr<VcpuFd>(
      new VcpuFd(std::move(fd), id, static_cast<kvm_run*>(run), vcpu_mmap_size_));
}

VcpuFd::~VcpuFd() {
  if (run_ != nullptr) munmap(run_, mmap_size_);
}

base::Result<bool> VcpuFd::Run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    if (errno == EINTR || errno == EAGAIN) return false;
    return base::MakeErrnoError(base::ErrorKind::kInternal, "KVM_RUN (vcpu {})", id_);
  }
  return true;
}

base::Result<kvm_regs> VcpuFd::GetRegs() const {
  kvm_regs regs{};
  if (Ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0) return IoctlError("KVM_GET_REGS");
  return regs;
}

base::Result<void> VcpuFd::SetRegs(const kvm_regs& regs) {
  if (Ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0) return IoctlError("KVM_SET_REGS");
  return {};
}

base::Result<kvm_sregs> VcpuFd::GetSregs() const {
  kvm_sregs sregs{};
  if (Ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0) return IoctlError("KVM_GET_SREGS");
  return sregs;
}

base::Result<void> VcpuFd::SetSregs(const kvm_sregs& sregs) {
  if (Ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0) return IoctlError("KVM_SET_SREGS");
  return {};
}

base::Result<kvm_fpu> VcpuFd::GetFpu() const {
  kvm_fpu fpu{};
  if (Ioctl(fd_.get(), KVM_GET_FPU, &fpu) < 0) return IoctlError("KVM_GET_FPU");
  return fpu;
}

base::Result<void> VcpuFd::SetFpu(const kvm_fpu& fpu) {
  if (Ioctl(fd_.get(), KVM_SET_FPU, &fpu) < 0) return IoctlError("KVM_SET_FPU");
  return {};
}

base::Result<void> VcpuFd::SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  VarStruct<CpuidHeader, kvm_cpuid_entry2> cpuid(entries.size());
  cpuid.header()->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(cpuid.items(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (Ioctl(fd_.get(), kSetCpuid2, cpuid.data()) < 0) return IoctlError("KVM_SET_CPUID2");
  return {};
}

base::Result<std::vector<kvm_cpuid_entry2>> VcpuFd::GetCpuid() const {
  constexpr size_t kMaxEntries = 256;
  VarStruct<CpuidHeader, kvm_cpuid_entry2> cpuid(kMaxEntries);
  cpuid.header()->nent = kMaxEntries;
  if (Ioctl(fd_.get(), kGetCpuid2, cpuid.data()) < 0) return IoctlError("KVM_GET_CPUID2");
  const kvm_cpuid_entry2* items = cpuid.items();
  return std::vector<kvm_cpuid_entry2>(items, items + cpuid.header()->nent);
}

base::Result<void> VcpuFd::SetMsrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs) {
  VarStruct<MsrsHeader, kvm_msr_entry> list(msrs.size());
  list.header()->nmsrs = static_cast<uint32_t>(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    list.items()[i] = kvm_msr_entry{};
    list.items()[i].index = msrs[i].first;
    list.items()[i].data = msrs[i].second;
  }
  int set = Ioctl(fd_.get(), kSetMsrs, list.data());
  if (set < 0) return IoctlError("KVM_SET_MSRS");
  if (static_cast<size_t>(set) != msrs.size()) {
    return base::MakeError(base::ErrorKind::kInternal, "KVM_SET_MSRS: MSR {:#x} was refused",
                           msrs[static_cast<size_t>(set)].first);
  }
  return {};
}

base::Result<uint64_t> VcpuFd::GetMsr(uint32_t index) const {
  VarStruct<MsrsHeader, kvm_msr_entry> list(1);
  list.header()->nmsrs = 1;
  list.items()[0] = kvm_msr_entry{};
  list.items()[0].index = index;
  int got = Ioctl(fd_.get(), kGetMsrs, list.data());
  if (got < 0) return IoctlError("KVM_GET_MSRS");
  if (got != 1)
    return base::MakeError(base::ErrorKind::kInternal, "KVM_GET_MSRS: MSR {:#x} refused", index);
  return list.items()[0].data;
}

base::Result<int64_t> VcpuFd::GetTscOffset() const {
  int64_t offset = 0;
  kvm_device_attr attr{};
  attr.group = KVM_VCPU_TSC_CTRL;
  attr.attr = KVM_VCPU_TSC_OFFSET;
  attr.addr = reinterpret_cast<uint64_t>(&offset);
  if (Ioctl(fd_.get(), KVM_GET_DEVICE_ATTR, &attr) < 0) {
    return IoctlError("KVM_GET_DEVICE_ATTR (KVM_VCPU_TSC_OFFSET)");
  }
  return offset;
}

base::Result<void> VcpuFd::SetTscOffset(int64_t offset) {
  kvm_device_attr attr{};
  attr.group = KVM_VCPU_TSC_CTRL;
  attr.attr = KVM_VCPU_TSC_OFFSET;
  attr.addr = reinterpret_cast<uint64_t>(&offset);
  if (Ioctl(fd_.get(), KVM_SET_DEVICE_ATTR, &attr) < 0) {
    return IoctlError("KVM_SET_DEVICE_ATTR (KVM_VCPU_TSC_OFFSET)");
  }
  return {};
}

base::Result<uint32_t> VcpuFd::GetTscKhz() const {
  int khz = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (khz <= 0) return IoctlError("KVM_GET_TSC_KHZ");
  return static_cast<uint32_t>(khz);
}

base::Result<uint64_t> VmFd::GetClock() const {
  kvm_clock_data clock{};
  if (Ioctl(fd_.get(), KVM_GET_CLOCK, &clock) < 0) return IoctlError("KVM_GET_CLOCK");
  return static_cast<uint64_t>(clock.clock);
}

base::Result<void> VmFd::SetClock(uint64_t nanoseconds) {
  kvm_clock_data clock{};
  clock.clock = nanoseconds;
  if (Ioctl(fd_.get(), KVM_SET_CLOCK, &clock) < 0) return IoctlError("KVM_SET_CLOCK");
  return {};
}

base::Result<kvm_lapic_state> VcpuFd::GetLapic() const {
  kvm_lapic_state lapic{};
  if (Ioctl(fd_.get(), KVM_GET_LAPIC, &lapic) < 0) return IoctlError("KVM_GET_LAPIC");
  return lapic;
}

base::Result<void> VcpuFd::SetLapic(const kvm_lapic_state& lapic) {
  if (Ioctl(fd_.get(), KVM_SET_LAPIC, &lapic) < 0) return IoctlError("KVM_SET_LAPIC");
  return {};
}

base::Result<void> VcpuFd::SetMpState(uint32_t state) {
  kvm_mp_state mp_state{state};
  if (Ioctl(fd_.get(), KVM_SET_MP_STATE, &mp_state) < 0) return IoctlError("KVM_SET_MP_STATE");
  return {};
}

base::Result<std::optional<uint64_t>> VcpuFd::Translate(uint64_t linear) const {
  kvm_translation translation{};
  translation.linear_address = linear;
  if (Ioctl(fd_.get(), KVM_TRANSLATE, &translation) < 0) return IoctlError("KVM_TRANSLATE");
  if (!translation.valid) return std::optional<uint64_t>();
  return std::optional<uint64_t>(translation.physical_address);
}

}  // namespace vmm::kvm
