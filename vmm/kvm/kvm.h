// RAII owners of the KVM system, VM and vCPU file descriptors.
//
// Every failing ioctl becomes a vmm::Error naming the ioctl and carrying
// errno ("KVM_CREATE_VM: Cannot allocate memory"). /dev/kvm missing or
// unusable, a wrong API version and a missing capability are
// ErrorKind::kUnavailable (exit status 69).
//
// Threading: Kvm and VmFd are used on the main thread while the VM is built;
// afterwards VmFd's IRQ calls (SetIrqLine, irqfd/ioeventfd) are thread-safe
// (the kernel serialises them). A VcpuFd belongs to its vCPU thread, except
// Kick-related fields of kvm_run (immediate_exit) which other threads set.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vmm::kvm {

class VmFd;
class VcpuFd;

class Kvm {
 public:
  // Opens `path` (default /dev/kvm), checks KVM_GET_API_VERSION == 12 and the
  // capabilities vmm relies on.
  [[nodiscard]] static base::Result<std::unique_ptr<Kvm>> Open(
      const std::string& path = "/dev/kvm");

  int fd() const { return fd_.get(); }
  // KVM_CHECK_EXTENSION; 0 when absent.
  int CheckExtension(long capability) const;
  [[nodiscard]] base::Result<std::vector<kvm_cpuid_entry2>> GetSupportedCpuid() const;
  [[nodiscard]] base::Result<std::vector<uint32_t>> GetMsrIndexList() const;
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  [[nodiscard]] base::Result<std::unique_ptr<VmFd>> CreateVm() const;

 private:
  explicit Kvm(base::UniqueFd fd) : fd_(std::move(fd)) {}
  base::UniqueFd fd_;
  size_t vcpu_mmap_size_ = 0;
};

class VmFd {
 public:
  int fd() const { return fd_.get(); }
  [[nodiscard]] base::Result<void> SetUserMemoryRegion(uint32_t slot, uint64_t guest_phys,
                                                       uint64_t size, void* host);
  [[nodiscard]] base::Result<void> SetTssAddr(uint64_t address);
  [[nodiscard]] base::Result<void> SetIdentityMapAddr(uint64_t address);
  [[nodiscard]] base::Result<void> CreateIrqchip();
  [[nodiscard]] base::Result<void> CreatePit2();
  // KVM_IRQ_LINE: drive GSI `irq` to `level`. Thread-safe.
  [[nodiscard]] base::Result<void> SetIrqLine(uint32_t irq, bool level);
  // KVM_IRQFD: writes to `eventfd` inject GSI `gsi` (edge).
  [[nodiscard]] base::Result<void> RegisterIrqfd(int eventfd, uint32_t gsi);
  // KVM_IOEVENTFD: guest writes of `length` bytes (optionally matching
  // `datamatch`) to `address` signal `eventfd` without leaving the kernel.
  [[nodiscard]] base::Result<void> RegisterIoeventfd(int eventfd, uint64_t address, uint32_t length,
                                                     bool pio, std::optional<uint64_t> datamatch);
  [[nodiscard]] base::Result<std::unique_ptr<VcpuFd>> CreateVcpu(uint32_t id);
  // KVM_GET_CLOCK / KVM_SET_CLOCK: the kvmclock value guests read (ns).
  [[nodiscard]] base::Result<uint64_t> GetClock() const;
  [[nodiscard]] base::Result<void> SetClock(uint64_t nanoseconds);

 private:
  friend class Kvm;
  VmFd(base::UniqueFd fd, size_t mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(mmap_size) {}
  base::UniqueFd fd_;
  size_t vcpu_mmap_size_;
};

class VcpuFd {
 public:
  ~VcpuFd();
  VcpuFd(const VcpuFd&) = delete;
  VcpuFd& operator=(const VcpuFd&) = delete;

  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  kvm_run* run() const { return run_; }

  // KVM_RUN. Returns false (not an error) when interrupted by a signal
  // (EINTR) or by immediate_exit (EINTR as well).
  [[nodiscard]] base::Result<bool> Run();

  [[nodiscard]] base::Result<kvm_regs> GetRegs() const;
  [[nodiscard]] base::Result<void> SetRegs(const kvm_regs& regs);
  [[nodiscard]] base::Result<kvm_sregs> GetSregs() const;
  [[nodiscard]] base::Result<void> SetSregs(const kvm_sregs& sregs);
  [[nodiscard]] base::Result<kvm_fpu> GetFpu() const;
  [[nodiscard]] base::Result<void> SetFpu(const kvm_fpu& fpu);
  [[nodiscard]] base::Result<void> SetCpuid(const std::vector<kvm_cpuid_entry2>& entries);
  // KVM_GET_CPUID2: the table KVM holds for this vCPU (after its own fix-ups).
  [[nodiscard]] base::Result<std::vector<kvm_cpuid_entry2>> GetCpuid() const;
  // Sets (index, value) pairs; fails naming the first MSR KVM refused.
  [[nodiscard]] base::Result<void> SetMsrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs);
  [[nodiscard]] base::Result<uint64_t> GetMsr(uint32_t index) const;
  // KVM_VCPU_TSC_OFFSET (KVM_{GET,SET}_DEVICE_ATTR, Linux 5.16+): the value
  // KVM adds to the host TSC for this vCPU's rdtsc.
  [[nodiscard]] base::Result<int64_t> GetTscOffset() const;
  [[nodiscard]] base::Result<void> SetTscOffset(int64_t offset);
  // KVM_GET_TSC_KHZ.
  [[nodiscard]] base::Result<uint32_t> GetTscKhz() const;
  [[nodiscard]] base::Result<kvm_lapic_state> GetLapic() const;
  [[nodiscard]] base::Result<void> SetLapic(const kvm_lapic_state& lapic);
  // KVM_SET_MP_STATE, e.g. KVM_MP_STATE_RUNNABLE for an AP that starts
  // without INIT/SIPI.
  [[nodiscard]] base::Result<void> SetMpState(uint32_t state);
  // KVM_TRANSLATE: guest linear address -> guest physical, if mapped.
  [[nodiscard]] base::Result<std::optional<uint64_t>> Translate(uint64_t linear) const;

 private:
  friend class VmFd;
  VcpuFd(base::UniqueFd fd, uint32_t id, kvm_run* run, size_t mmap_size)
      : fd_(std::move(fd)), id_(id), run_(run), mmap_size_(mmap_size) {}
  base::UniqueFd fd_;
  uint32_t id_;
  kvm_run* run_;
  size_t mmap_size_;
};

}  // namespace vmm::kvm
