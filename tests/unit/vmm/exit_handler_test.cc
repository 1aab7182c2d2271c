// HandleExit (vmm/exit_handler.h) with made-up kvm_run pages and fake
// devices on real buses: no /dev/kvm.
#include "vmm/exit_handler.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace vmm {
namespace {

// Records every access; reads return the offset plus the byte index.
class FakeDevice : public devices::BusDevice {
 public:
  std::string_view name() const override { return "fake"; }
  void Read(const devices::BusAccess& access, std::span<uint8_t> data) override {
    reads.push_back(access.address);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(access.offset + i);
  }
  void Write(const devices::BusAccess& access, std::span<const uint8_t> data) override {
    writes.push_back(access.address);
    written.insert(written.end(), data.begin(), data.end());
    vcpus.push_back(access.vcpu);
  }
  std::vector<uint64_t> reads, writes;
  std::vector<uint8_t> written;
  std::vector<uint32_t> vcpus;
};

class FakeVcpu : public ExitVcpu {
 public:
  uint32_t vcpu_id() const override { return 3; }
  bool TryAssist() override {
    ++assists;
    return assist_result;
  }
  std::string DumpState(bool with_instruction) override {
    dumps.push_back(with_instruction);
    return with_instruction ? "dump+insn" : "dump";
  }
  bool assist_result = false;
  int assists = 0;
  std::vector<bool> dumps;
};

class ExitHandlerTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kDataOffset = 2048;

  void SetUp() override {
    page_.assign(512, 0);
    ASSERT_TRUE(pio_.Insert(port_, 0x3f8, 8));
    ASSERT_TRUE(mmio_.Insert(mem_, 0xd0000000, 0x1000));
  }
  kvm_run& run() { return *reinterpret_cast<kvm_run*>(page_.data()); }
  uint8_t* io_data() { return reinterpret_cast<uint8_t*>(page_.data()) + kDataOffset; }
  void SetIo(uint8_t direction, uint16_t port, uint8_t size, uint32_t count) {
    run().exit_reason = KVM_EXIT_IO;
    run().io.direction = direction;
    run().io.port = port;
    run().io.size = size;
    run().io.count = count;
    run().io.data_offset = kDataOffset;
  }
  ExitAction Handle() { return HandleExit(run(), pio_, mmio_, vcpu_, counters_); }

  std::vector<uint64_t> page_;  // one 4 KiB kvm_run page
  devices::Bus pio_{"pio"};
  devices::Bus mmio_{"mmio"};
  std::shared_ptr<FakeDevice> port_ = std::make_shared<FakeDevice>();
  std::shared_ptr<FakeDevice> mem_ = std::make_shared<FakeDevice>();
  FakeVcpu vcpu_;
  ExitCounters counters_;
};

TEST_F(ExitHandlerTest, IoOutEverySizeWithCount) {
  for (uint8_t size : {uint8_t{1}, uint8_t{2}, uint8_t{4}}) {
    port_->writes.clear();
    port_->written.clear();
    SetIo(KVM_EXIT_IO_OUT, 0x3f8, size, 3);
    for (int i = 0; i < size * 3; ++i) io_data()[i] = static_cast<uint8_t>(0x10 + i);
    ExitAction action = Handle();
    EXPECT_EQ(action.kind, ExitAction::Kind::kHandled);
    EXPECT_FALSE(action.exit);
    ASSERT_EQ(port_->writes.size(), 3u) << int(size);
    ASSERT_EQ(port_->written.size(), size * 3u);
    for (int i = 0; i < size * 3; ++i) EXPECT_EQ(port_->written[i], 0x10 + i);
    EXPECT_EQ(port_->vcpus[0], 3u);
  }
  EXPECT_EQ(counters_.io.load(), 3u);
  EXPECT_EQ(counters_.unclaimed_pio.load(), 0u);
}

TEST_F(ExitHandlerTest, IoInEverySizeWithCount) {
  for (uint8_t size : {uint8_t{1}, uint8_t{2}, uint8_t{4}}) {
    port_->reads.clear();
    SetIo(KVM_EXIT_IO_IN, 0x3f9, size, 2);
    EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
    ASSERT_EQ(port_->reads.size(), 2u);
    for (int n = 0; n < 2; ++n) {
      for (int i = 0; i < size; ++i) EXPECT_EQ(io_data()[n * size + i], 1 + i);
    }
  }
}

TEST_F(ExitHandlerTest, UnclaimedPortReadsAllOnes) {
  SetIo(KVM_EXIT_IO_IN, 0x80, 4, 2);
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(io_data()[i], 0xff);
  EXPECT_EQ(counters_.unclaimed_pio.load(), 2u);
  SetIo(KVM_EXIT_IO_OUT, 0x80, 1, 1);
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  EXPECT_EQ(counters_.unclaimed_pio.load(), 3u);
}

TEST_F(ExitHandlerTest, MmioReadAndWrite) {
  run().exit_reason = KVM_EXIT_MMIO;
  run().mmio.phys_addr = 0xd0000070;
  run().mmio.len = 4;
  run().mmio.is_write = 1;
  std::memcpy(run().mmio.data, "\x01\x02\x03\x04", 4);
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  EXPECT_EQ(mem_->writes, std::vector<uint64_t>{0xd0000070});
  EXPECT_EQ(mem_->written, (std::vector<uint8_t>{1, 2, 3, 4}));

  run().mmio.is_write = 0;
  run().mmio.phys_addr = 0xd0000010;
  run().mmio.len = 2;
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  EXPECT_EQ(run().mmio.data[0], 0x10);
  EXPECT_EQ(run().mmio.data[1], 0x11);

  run().mmio.phys_addr = 0xe0000000;  // nobody
  run().mmio.len = 8;
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(run().mmio.data[i], 0xff);
  run().mmio.is_write = 1;
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  EXPECT_EQ(counters_.mmio.load(), 4u);
  EXPECT_EQ(counters_.unclaimed_mmio.load(), 2u);
}

TEST_F(ExitHandlerTest, IntrIsRetried) {
  run().exit_reason = KVM_EXIT_INTR;
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kRetry);
}

TEST_F(ExitHandlerTest, HaltStopsWithZero) {
  run().exit_reason = KVM_EXIT_HLT;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, 0);
  EXPECT_FALSE(action.exit->abnormal);
  EXPECT_EQ(action.exit->reason, "guest halted");
}

TEST_F(ExitHandlerTest, ShutdownIsATripleFault) {
  run().exit_reason = KVM_EXIT_SHUTDOWN;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, kExitTripleFault);
  EXPECT_EQ(action.exit->status, 80);
  EXPECT_TRUE(action.exit->abnormal);
  EXPECT_EQ(action.exit->reason, "guest triple-faulted (KVM shutdown exit) on vcpu 3");
  EXPECT_EQ(action.exit->details, "dump");
}

TEST_F(ExitHandlerTest, FailEntryIs81) {
  run().exit_reason = KVM_EXIT_FAIL_ENTRY;
  run().fail_entry.hardware_entry_failure_reason = 0x21;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, 81);
  EXPECT_EQ(action.exit->reason, "KVM could not enter the guest on vcpu 3 (hardware reason 0x21)");
}

TEST_F(ExitHandlerTest, InternalErrorTriesAssistThenStops) {
  run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
  run().internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
  vcpu_.assist_result = true;
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  EXPECT_EQ(vcpu_.assists, 1);

  vcpu_.assist_result = false;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, 81);
  EXPECT_EQ(action.exit->reason, "KVM could not emulate an instruction on vcpu 3");
  EXPECT_EQ(action.exit->details, "dump+insn");

  run().internal.suberror = 2;
  action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->reason, "KVM internal error (suberror 2) on vcpu 3");
}

TEST_F(ExitHandlerTest, DebugExitGoesBackToTheGuestOrStops) {
  run().exit_reason = KVM_EXIT_DEBUG;
  vcpu_.assist_result = true;
  EXPECT_EQ(Handle().kind, ExitAction::Kind::kHandled);
  vcpu_.assist_result = false;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, 81);
  EXPECT_EQ(action.exit->reason, "KVM internal error (suberror 0) on vcpu 3");
}

TEST_F(ExitHandlerTest, SystemEvents) {
  run().exit_reason = KVM_EXIT_SYSTEM_EVENT;
  run().system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, 0);
  EXPECT_EQ(action.exit->reason, "guest powered off");

  run().system_event.type = KVM_SYSTEM_EVENT_RESET;
  action = Handle();
  EXPECT_EQ(action.exit->status, 0);
  EXPECT_EQ(action.exit->reason, "guest reset the machine");

  run().system_event.type = KVM_SYSTEM_EVENT_CRASH;
  action = Handle();
  EXPECT_EQ(action.exit->status, 81);
  EXPECT_TRUE(action.exit->abnormal);
  EXPECT_EQ(action.exit->reason,
            fmt::format("guest system event {} (crash)", static_cast<int>(KVM_SYSTEM_EVENT_CRASH)));
}

TEST_F(ExitHandlerTest, UnknownReasonStopsWith81) {
  run().exit_reason = 9999;
  ExitAction action = Handle();
  ASSERT_EQ(action.kind, ExitAction::Kind::kStop);
  EXPECT_EQ(action.exit->status, 81);
  EXPECT_EQ(action.exit->reason, "unexpected KVM exit reason 9999 on vcpu 3");
  EXPECT_EQ(counters_.other.load(), 1u);
}

TEST(VmExit, NamedConstructors) {
  EXPECT_EQ(VmExit::GuestStatus(7).status, 7);
  EXPECT_FALSE(VmExit::GuestStatus(7).abnormal);
  EXPECT_EQ(VmExit::GuestStatus(64).status, 63);
  EXPECT_TRUE(VmExit::GuestStatus(64).abnormal);
  EXPECT_EQ(VmExit::Timeout(1.5).status, kExitTimeout);
  EXPECT_EQ(VmExit::Timeout(1.5).reason, "timeout: the guest was still running after 1.5 s");
  EXPECT_EQ(VmExit::Signal(SIGINT).status, 130);
  EXPECT_EQ(VmExit::Signal(SIGTERM).status, 143);
  EXPECT_EQ(VmExit::Signal(SIGTERM).reason, "stopped by SIGTERM");
  EXPECT_EQ(VmExit::TripleFault("r", "d").status, 80);
  EXPECT_EQ(VmExit::KvmFailure("r", "d").details, "d");
  EXPECT_EQ(VmExit::Clean("bye").status, 0);
}

}  // namespace
}  // namespace vmm
