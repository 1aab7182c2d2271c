// A GdbTarget with simulated vCPUs, for testing the stub without /dev/kvm.
//
// Memory: kMemorySize bytes at guest-virtual kMemoryBase, nothing mapped
// elsewhere. Every "instruction" is one byte long and only moves RIP on;
// the one at kStoreAt also adds 1 to the 64-bit variable at kVariable (the
// store a watchpoint sees), the one at kLoopEnd jumps back to kLoopStart,
// and reaching kExitAt ends the guest with status kExitStatus. Running
// vCPUs execute in turns on one thread, about one instruction per
// microsecond each.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "vmm/gdb/target.h"

namespace vmm::gdb::testing {

class FakeTarget : public GdbTarget {
 public:
  static constexpr uint64_t kMemoryBase = 0x1000, kMemorySize = 0x10000;
  static constexpr uint64_t kLoopStart = 0x1000, kStoreAt = 0x1008, kLoopEnd = 0x1040;
  static constexpr uint64_t kExitAt = 0x1100;
  static constexpr uint64_t kVariable = 0x3000;
  static constexpr int kExitStatus = 7;
  static constexpr size_t kDebugSlots = 4;

  explicit FakeTarget(uint32_t cpus) : regs_(cpus), memory_(kMemorySize) {
    for (uint32_t i = 0; i < cpus; ++i) {
      regs_[i].rip = kLoopStart + i;
      regs_[i].gpr[0] = 0x1111 * (i + 1);
      regs_[i].cr0 = 0x80000011;
      regs_[i].cr3 = 0x9000;
      regs_[i].cr4 = 0x20;
      regs_[i].efer = 0x500;
      regs_[i].eflags = 0x2;
      regs_[i].segment[0] = 0x8;
    }
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeTarget() override {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  uint32_t cpu_count() const override { return static_cast<uint32_t>(regs_.size()); }

  void SetStopHandler(std::function<void(const StopEvent&)> handler) override {
    std::lock_guard lock(handler_mutex_);
    handler_ = std::move(handler);
  }

  base::Result<X86Registers> ReadRegisters(uint32_t cpu) override {
    std::lock_guard lock(mutex_);
    if (cpu >= regs_.size()) return base::MakeError(base::ErrorKind::kInternal, "no vCPU {}", cpu);
    return regs_[cpu];
  }
  base::Result<void> WriteRegisters(uint32_t cpu, const X86Registers& regs) override {
    std::lock_guard lock(mutex_);
    if (cpu >= regs_.size()) return base::MakeError(base::ErrorKind::kInternal, "no vCPU {}", cpu);
    regs_[cpu] = regs;
    return {};
  }
  base::Result<size_t> ReadMemory(uint32_t, uint64_t address, std::span<uint8_t> out) override {
    std::lock_guard lock(mutex_);
    const size_t n = Mapped(address, out.size());
    if (n) std::memcpy(out.data(), &memory_[address - kMemoryBase], n);
    return n;
  }
  base::Result<size_t> WriteMemory(uint32_t, uint64_t address,
                                   std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    const size_t n = Mapped(address, data.size());
    if (n) std::memcpy(&memory_[address - kMemoryBase], data.data(), n);
    return n;
  }

  base::Result<void> InsertBreakpoint(BreakKind kind, uint64_t address, uint64_t length) override {
    std::lock_guard lock(mutex_);
    if (kind == BreakKind::kSoftware) {
      software_.insert(address);
      return {};
    }
    if (kind != BreakKind::kHardware && length != 1 && length != 2 && length != 4 && length != 8) {
      return base::MakeError(base::ErrorKind::kUsage, "cannot watch {} bytes", length);
    }
    if (debug_.size() >= kDebugSlots) {
      return base::MakeError(base::ErrorKind::kUsage, "all {} debug registers are in use",
                             kDebugSlots);
    }
    debug_.push_back({kind, address, length});
    return {};
  }
  base::Result<void> RemoveBreakpoint(BreakKind kind, uint64_t address, uint64_t length) override {
    std::lock_guard lock(mutex_);
    if (kind == BreakKind::kSoftware) {
      software_.erase(address);
      return {};
    }
    auto it = std::find_if(debug_.begin(), debug_.end(), [&](const Debug& d) {
      return d.kind == kind && d.address == address &&
             (kind == BreakKind::kHardware || d.length == length);
    });
    if (it == debug_.end()) return base::MakeError(base::ErrorKind::kUsage, "no such breakpoint");
    debug_.erase(it);
    return {};
  }
  void RemoveAllBreakpoints() override {
    std::lock_guard lock(mutex_);
    software_.clear();
    debug_.clear();
  }

  base::Result<StopEvent> Halt() override {
    std::unique_lock lock(mutex_);
    if (running_) {
      running_ = false;
      halted_by_attach_ = true;
      cv_.notify_all();
    }
    ++halts_;
    return StopEvent{StopEvent::Reason::kInterrupt, 0};
  }
  base::Result<void> Resume(std::span<const ResumeMode> modes) override {
    std::lock_guard lock(mutex_);
    modes_.assign(modes.begin(), modes.end());
    running_ = true;
    ++resumes_;
    cv_.notify_all();
    return {};
  }
  void Interrupt() override {
    std::lock_guard lock(mutex_);
    interrupt_ = true;
    cv_.notify_all();
  }
  void Kill() override {
    std::lock_guard lock(mutex_);
    killed_ = true;
    running_ = false;
  }
  base::Result<std::string> Monitor(std::string_view command) override {
    std::lock_guard lock(mutex_);
    if (command == "regs") return std::string("rip=") + std::to_string(regs_[0].rip) + "\n";
    if (command.substr(0, 5) == "echo ") return std::string(command.substr(5)) + "\n";
    return base::MakeError(base::ErrorKind::kUsage, "unknown monitor command '{}'", command);
  }

  // For tests.
  bool killed() {
    std::lock_guard lock(mutex_);
    return killed_;
  }
  bool running() {
    std::lock_guard lock(mutex_);
    return running_;
  }
  size_t breakpoints() {
    std::lock_guard lock(mutex_);
    return software_.size() + debug_.size();
  }
  int resumes() {
    std::lock_guard lock(mutex_);
    return resumes_;
  }
  uint64_t variable() {
    std::lock_guard lock(mutex_);
    uint64_t v;
    std::memcpy(&v, &memory_[kVariable - kMemoryBase], sizeof v);
    return v;
  }

 private:
  struct Debug {
    BreakKind kind;
    uint64_t address, length;
  };

  size_t Mapped(uint64_t address, size_t n) const {
    if (address < kMemoryBase || address >= kMemoryBase + kMemorySize) return 0;
    return static_cast<size_t>(std::min<uint64_t>(n, kMemoryBase + kMemorySize - address));
  }

  // One instruction of `cpu`; a stop if it ended the run.
  std::optional<StopEvent> Step(uint32_t cpu, bool first) {
    X86Registers& r = regs_[cpu];
    if (!first) {
      if (software_.count(r.rip)) return StopEvent{StopEvent::Reason::kBreakpoint, cpu, r.rip};
      for (const Debug& d : debug_) {
        if (d.kind == BreakKind::kHardware && d.address == r.rip) {
          return StopEvent{StopEvent::Reason::kBreakpoint, cpu, r.rip, BreakKind::kHardware};
        }
      }
    }
    if (r.rip == kExitAt) {
      StopEvent e{StopEvent::Reason::kExited, cpu};
      e.exit_status = kExitStatus;
      return e;
    }
    if (r.rip == kStoreAt) {
      uint64_t v;
      std::memcpy(&v, &memory_[kVariable - kMemoryBase], sizeof v);
      ++v;
      std::memcpy(&memory_[kVariable - kMemoryBase], &v, sizeof v);
      r.rip = kStoreAt + 1;
      for (const Debug& d : debug_) {
        if ((d.kind == BreakKind::kWriteWatch || d.kind == BreakKind::kAccessWatch) &&
            kVariable < d.address + d.length && d.address < kVariable + 8) {
          return StopEvent{StopEvent::Reason::kWatchpoint, cpu, d.address, d.kind};
        }
      }
      return std::nullopt;
    }
    r.rip = r.rip == kLoopEnd ? kLoopStart : r.rip + 1;
    return std::nullopt;
  }

  void Loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return quit_ || running_; });
      if (quit_) return;
      std::vector<bool> first(regs_.size(), true);
      std::optional<StopEvent> stop;
      while (running_ && !stop && !quit_) {
        if (interrupt_) {
          interrupt_ = false;
          stop = StopEvent{StopEvent::Reason::kInterrupt, 0};
          break;
        }
        for (uint32_t cpu = 0; cpu < regs_.size() && !stop; ++cpu) {
          if (modes_[cpu] == ResumeMode::kStop) continue;
          stop = Step(cpu, first[cpu]);
          first[cpu] = false;
          if (!stop && modes_[cpu] == ResumeMode::kStep) {
            stop = StopEvent{StopEvent::Reason::kStep, cpu};
          }
        }
        if (!stop) {
          lock.unlock();
          std::this_thread::sleep_for(std::chrono::microseconds(1));
          lock.lock();
        }
      }
      if (quit_) return;
      if (!running_) continue;  // halted or killed
      running_ = false;
      interrupt_ = false;
      lock.unlock();
      {
        std::lock_guard handler_lock(handler_mutex_);
        if (handler_) handler_(*stop);
      }
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<X86Registers> regs_;
  std::vector<uint8_t> memory_;
  std::set<uint64_t> software_;
  std::vector<Debug> debug_;
  std::vector<ResumeMode> modes_;
  bool running_ = false, interrupt_ = false, quit_ = false, killed_ = false;
  bool halted_by_attach_ = false;
  int halts_ = 0, resumes_ = 0;
  std::thread thread_;

  std::mutex handler_mutex_;
  std::function<void(const StopEvent&)> handler_;
};

}  // namespace vmm::gdb::testing
