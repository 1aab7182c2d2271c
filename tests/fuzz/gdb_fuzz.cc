// libFuzzer target for the GDB stub (vmm/gdb/): whatever bytes a client
// sends, GdbSession answers without crashing, never sends a reply longer
// than a packet may be, and keeps the target's contract (no Resume while
// running, registers written only with a whole register file). The target
// here is synchronous: a resume "stops" at once on the next input byte
// boundary, so every command path is reachable without threads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/gdb/rsp.h"
#include "vmm/gdb/session.h"

namespace {

using namespace vmm::gdb;

class SyncTarget : public GdbTarget {
 public:
  uint32_t cpu_count() const override { return 2; }
  void SetStopHandler(std::function<void(const StopEvent&)>) override {}
  base::Result<X86Registers> ReadRegisters(uint32_t cpu) override {
    if (cpu >= 2) std::abort();
    return regs_[cpu];
  }
  base::Result<void> WriteRegisters(uint32_t cpu, const X86Registers& regs) override {
    if (cpu >= 2) std::abort();
    regs_[cpu] = regs;
    return {};
  }
  base::Result<size_t> ReadMemory(uint32_t cpu, uint64_t address, std::span<uint8_t> out) override {
    if (cpu >= 2 || out.size() > kMaxPacket) std::abort();
    if (address < kBase || address >= kBase + sizeof memory_) return size_t{0};
    const size_t n = std::min<size_t>(out.size(), kBase + sizeof memory_ - address);
    std::memcpy(out.data(), memory_ + (address - kBase), n);
    return n;
  }
  base::Result<size_t> WriteMemory(uint32_t cpu, uint64_t address,
                                   std::span<const uint8_t> data) override {
    if (cpu >= 2) std::abort();
    if (address < kBase || address >= kBase + sizeof memory_) return size_t{0};
    const size_t n = std::min<size_t>(data.size(), kBase + sizeof memory_ - address);
    std::memcpy(memory_ + (address - kBase), data.data(), n);
    return n;
  }
  base::Result<void> InsertBreakpoint(BreakKind kind, uint64_t, uint64_t) override {
    if (static_cast<int>(kind) > 4) std::abort();
    if (kind != BreakKind::kSoftware && ++slots_ > 4) {
      --slots_;
      return base::MakeError(base::ErrorKind::kUsage, "all 4 debug registers are in use");
    }
    return {};
  }
  base::Result<void> RemoveBreakpoint(BreakKind kind, uint64_t, uint64_t) override {
    if (kind != BreakKind::kSoftware && slots_ > 0) --slots_;
    return {};
  }
  void RemoveAllBreakpoints() override { slots_ = 0; }
  base::Result<StopEvent> Halt() override { return StopEvent{}; }
  base::Result<void> Resume(std::span<const ResumeMode> modes) override {
    if (running_ || modes.size() != 2) std::abort();
    running_ = true;
    return {};
  }
  void Interrupt() override {}
  void Kill() override {}
  base::Result<std::string> Monitor(std::string_view command) override {
    return std::string(command.substr(0, 64)) + "\n";
  }

  bool running_ = false;

 private:
  static constexpr uint64_t kBase = 0x1000;
  X86Registers regs_[2];
  uint8_t memory_[4096] = {};
  int slots_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SyncTarget target;
  std::vector<std::string> sent;
  GdbSession session(target, [&](std::string_view bytes) {
    if (bytes.size() > kMaxPacket * 2 + 8) std::abort();  // escaped payload + framing
    sent.emplace_back(bytes);
  });
  if (!session.Attach()) std::abort();
  // Byte 0xff splits the input: after each piece, a running target stops.
  size_t start = 0;
  for (size_t i = 0; i <= size; ++i) {
    if (i < size && data[i] != 0xff) continue;
    session.Receive(std::span(data + start, i - start));
    start = i + 1;
    if (target.running_) {
      target.running_ = false;
      StopEvent stop;
      stop.reason = static_cast<StopEvent::Reason>(i % 4);
      stop.cpu = static_cast<uint32_t>(i % 2);
      session.OnStop(stop);
    }
    if (session.finished()) break;
  }
  session.OnDisconnect();
  return 0;
}
