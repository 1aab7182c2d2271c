// GdbSession against the simulated target (fake_target.h), packet by packet.
#include "vmm/gdb/session.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>

#include "tests/unit/gdb/fake_target.h"
#include "vmm/gdb/registers.h"

namespace vmm::gdb {
namespace {

using testing::FakeTarget;

class GdbSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(2); }

  void Start(uint32_t cpus) {
    target_ = std::make_unique<FakeTarget>(cpus);
    target_->SetStopHandler([this](const StopEvent& e) {
      std::lock_guard lock(mutex_);
      stops_.push_back(e);
      cv_.notify_all();
    });
    session_ = std::make_unique<GdbSession>(*target_, [this](std::string_view b) { out_ += b; });
    ASSERT_TRUE(session_->Attach());
  }

  // What the session sent since the last call, as packets ('+' dropped).
  std::vector<std::string> Replies() {
    PacketReader reader;
    std::vector<RspEvent> events;
    reader.Feed(std::span(reinterpret_cast<const uint8_t*>(out_.data()), out_.size()), events);
    out_.clear();
    std::vector<std::string> packets;
    for (auto& e : events) {
      if (e.kind == RspEvent::Kind::kPacket) packets.push_back(e.payload);
    }
    return packets;
  }

  void SendRaw(std::string_view bytes) {
    session_->Receive(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }

  // One packet in, its one reply out.
  std::string Ask(std::string_view packet) {
    SendRaw(Frame(packet));
    auto replies = Replies();
    EXPECT_EQ(replies.size(), 1u) << packet;
    return replies.empty() ? "" : replies.back();
  }

  // Waits for the target's next stop, hands it to the session, returns the
  // stop reply.
  std::string WaitStop() {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !stops_.empty(); }));
    if (stops_.empty()) return "";
    StopEvent e = stops_.front();
    stops_.pop_front();
    lock.unlock();
    session_->OnStop(e);
    auto replies = Replies();
    return replies.empty() ? "" : replies.back();
  }

  std::unique_ptr<FakeTarget> target_;
  std::unique_ptr<GdbSession> session_;
  std::string out_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<StopEvent> stops_;
};

TEST_F(GdbSessionTest, AcksAndNacks) {
  SendRaw(Frame("?"));
  EXPECT_EQ(out_.substr(0, 1), "+");
  out_.clear();
  SendRaw("$?#00");  // bad checksum
  EXPECT_EQ(out_, "-");
  EXPECT_EQ(session_->counters().bad_checksums, 1u);
  out_.clear();
  // A nack makes the session resend its last packet, at most 3 times in a row.
  SendRaw("----");
  EXPECT_EQ(Replies().size(), 3u);
}

TEST_F(GdbSessionTest, NoAckMode) {
  EXPECT_EQ(Ask("QStartNoAckMode"), "OK");
  SendRaw(Frame("?"));
  EXPECT_EQ(out_.find('+'), std::string::npos);
  out_.clear();
  SendRaw("$?#00");  // no '-' either
  EXPECT_TRUE(out_.empty());
}

TEST_F(GdbSessionTest, SupportedAndStopReason) {
  const std::string supported = Ask("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
  EXPECT_NE(supported.find("PacketSize=4000"), std::string::npos);
  EXPECT_NE(supported.find("qXfer:features:read+"), std::string::npos);
  EXPECT_NE(supported.find("QStartNoAckMode+"), std::string::npos);
  EXPECT_EQ(Ask("?"), "T02thread:1;");
  EXPECT_EQ(Ask("qAttached"), "1");
  EXPECT_EQ(Ask("vMustReplyEmpty"), "");
  EXPECT_EQ(Ask("vCont?"), "vCont;c;C;s;S;t");
}

TEST_F(GdbSessionTest, TargetDescriptionInPieces) {
  std::string xml;
  for (uint64_t offset = 0;;) {
    const std::string reply = Ask(fmt::format("qXfer:features:read:target.xml:{:x},100", offset));
    ASSERT_FALSE(reply.empty());
    ASSERT_TRUE(reply[0] == 'm' || reply[0] == 'l') << reply;
    xml += reply.substr(1);
    offset += reply.size() - 1;
    if (reply[0] == 'l') break;
  }
  EXPECT_EQ(xml, TargetXml());
  EXPECT_EQ(Ask("qXfer:features:read:other.xml:0,100"), "E02");
  EXPECT_EQ(Ask("qXfer:features:read:target.xml:zz"), "E16");
}

TEST_F(GdbSessionTest, Threads) {
  EXPECT_EQ(Ask("qfThreadInfo"), "m1,2");
  EXPECT_EQ(Ask("qsThreadInfo"), "l");
  EXPECT_EQ(Ask("T2"), "OK");
  EXPECT_EQ(Ask("T3"), "E03");
  EXPECT_EQ(Ask("Hg2"), "OK");
  EXPECT_EQ(Ask("qC"), "QC2");
  // vCPU 1's rax (0x2222) through `p 0`.
  EXPECT_EQ(Ask("p0"), "2222000000000000");
  EXPECT_EQ(Ask("Hg3"), "E03");
  EXPECT_EQ(Ask("Hg-1"), "E16");
  EXPECT_EQ(Ask("qThreadExtraInfo,2"), ToHex(std::string_view("vCPU 1")));
}

TEST_F(GdbSessionTest, RegistersReadAndWrite) {
  const std::string g = Ask("g");
  X86Registers regs;
  ASSERT_TRUE(DecodeRegisters(g, regs));
  EXPECT_EQ(regs.cr3, 0x9000u);
  EXPECT_EQ(regs.rip, FakeTarget::kLoopStart);
  regs.gpr[3] = 0xdead;
  EXPECT_EQ(Ask("G" + EncodeRegisters(regs)), "OK");
  EXPECT_EQ(target_->ReadRegisters(0)->gpr[3], 0xdeadu);
  EXPECT_EQ(Ask("G00"), "E16");
  EXPECT_EQ(Ask("P10=0020000000000000"), "OK");  // rip
  EXPECT_EQ(target_->ReadRegisters(0)->rip, 0x2000u);
  EXPECT_EQ(Ask("P10=00"), "E16");
  EXPECT_EQ(Ask("p31"), "E16");               // 49: past the last
  EXPECT_EQ(Ask("p2d"), "0090000000000000");  // cr3
}

TEST_F(GdbSessionTest, MemoryReadWriteAndUnmapped) {
  EXPECT_EQ(Ask("M3000,4:11223344"), "OK");
  EXPECT_EQ(Ask("m3000,4"), "11223344");
  EXPECT_EQ(Ask("m90000,4"), "E0e");  // nothing mapped there
  // A read across the end of the mapping returns what is mapped.
  EXPECT_EQ(Ask("m10ffe,4").size(), 4u);
  // X: binary, with escapes ('}' 0x5d stands for 0x7d, '#').
  EXPECT_EQ(Ask("X3000,0:"), "OK");
  // Framed by hand: Frame() would escape the escape again.
  const std::string x = std::string("X3000,2:") + "}\x5d" + "A";
  uint8_t sum = 0;
  for (char c : x) sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(c));
  SendRaw(fmt::format("${}#{:02x}", x, sum));
  EXPECT_EQ(Replies(), std::vector<std::string>{"OK"});
  EXPECT_EQ(Ask("m3000,2"), "7d41");
  EXPECT_EQ(Ask("M3000,4:1122"), "E16");  // length mismatch
  EXPECT_EQ(Ask("M90000,1:00"), "E0e");
  EXPECT_EQ(Ask("mzz,4"), "E16");
  // A huge length is cut to what one reply holds.
  EXPECT_EQ(Ask("m1000,ffffffff").size(), kMaxPacket);
}

TEST_F(GdbSessionTest, BreakpointContinueStep) {
  EXPECT_EQ(Ask("Z0,1010,1"), "OK");
  SendRaw(Frame("c"));
  EXPECT_TRUE(Replies().empty());  // the reply comes with the stop
  const std::string stop = WaitStop();
  EXPECT_EQ(stop.substr(0, 3), "T05") << stop;
  const uint32_t cpu = static_cast<uint32_t>(stop.back() == ';' ? stop[stop.size() - 2] - '1' : 0);
  EXPECT_EQ(target_->ReadRegisters(cpu)->rip, 0x1010u);
  // Packets other than 0x03 are not expected while running; after the stop they are.
  EXPECT_EQ(Ask("z0,1010,1"), "OK");
  EXPECT_EQ(Ask(fmt::format("Hc{:x}", cpu + 1)), "OK");
  SendRaw(Frame("s"));
  EXPECT_EQ(WaitStop(), fmt::format("T05thread:{:x};", cpu + 1));
  EXPECT_EQ(target_->ReadRegisters(cpu)->rip, 0x1011u);
}

TEST_F(GdbSessionTest, SwbreakReportedWhenAnnounced) {
  Ask("qSupported:swbreak+;hwbreak+");
  EXPECT_EQ(Ask("Z0,1010,1"), "OK");
  SendRaw(Frame("vCont;c:1;t"));
  EXPECT_EQ(WaitStop(), "T05swbreak:;thread:1;");
  EXPECT_EQ(Ask("z0,1010,1"), "OK");
  EXPECT_EQ(Ask("Z1,1020,1"), "OK");
  SendRaw(Frame("vCont;c:1"));
  EXPECT_EQ(WaitStop(), "T05hwbreak:;thread:1;");
}

TEST_F(GdbSessionTest, WatchpointsAndTheFifthSlot) {
  EXPECT_EQ(Ask("Z2,3000,8"), "OK");
  SendRaw(Frame("c"));
  const std::string stop = WaitStop();
  EXPECT_EQ(stop.substr(0, 14), "T05watch:3000;") << stop;
  EXPECT_EQ(target_->variable(), 1u);
  EXPECT_EQ(Ask("Z1,1020,1"), "OK");
  EXPECT_EQ(Ask("Z3,3008,4"), "OK");
  EXPECT_EQ(Ask("Z4,3010,2"), "OK");
  EXPECT_EQ(Ask("Z2,3020,8"), "E1c");  // ENOSPC: four debug registers
  EXPECT_EQ(Ask("Z2,3020,3"), "E1c");
  EXPECT_EQ(Ask("Z5,3020,3"), "");  // not a type gdb knows
  EXPECT_EQ(Ask("Z0"), "E16");
}

TEST_F(GdbSessionTest, InterruptWhileRunning) {
  SendRaw(Frame("c"));
  SendRaw("\x03");
  EXPECT_EQ(WaitStop().substr(0, 3), "T02");
  EXPECT_EQ(session_->counters().interrupts, 1u);
}

TEST_F(GdbSessionTest, PacketsWhileRunningAreRefused) {
  SendRaw(Frame("c"));
  EXPECT_EQ(Ask("g"), "E10");  // EBUSY
  SendRaw("\x03");
  WaitStop();
  EXPECT_NE(Ask("g"), "E10");
}

TEST_F(GdbSessionTest, ExitWhileRunningIsReported) {
  EXPECT_EQ(Ask("P10=0011000000000000"), "OK");  // rip = kExitAt
  SendRaw(Frame("vCont;c:1"));
  EXPECT_EQ(WaitStop(), "W07");
  EXPECT_TRUE(session_->finished());
}

TEST_F(GdbSessionTest, MonitorCommands) {
  SendRaw(Frame("qRcmd," + ToHex(std::string_view("echo hi"))));
  auto replies = Replies();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0], "O" + ToHex(std::string_view("hi\n")));
  EXPECT_EQ(replies[1], "OK");
  SendRaw(Frame("qRcmd," + ToHex(std::string_view("nonsense"))));
  replies = Replies();
  ASSERT_EQ(replies.size(), 2u);
  auto text = FromHex(replies[0].substr(1));
  ASSERT_TRUE(text);
  EXPECT_NE(std::string(text->begin(), text->end()).find("unknown monitor command"),
            std::string::npos);
  EXPECT_EQ(Ask("qRcmd,zz"), "E16");
}

TEST_F(GdbSessionTest, DetachRemovesBreakpointsAndRuns) {
  EXPECT_EQ(Ask("Z0,1010,1"), "OK");
  EXPECT_EQ(Ask("Z2,3000,8"), "OK");
  EXPECT_EQ(Ask("D"), "OK");
  EXPECT_TRUE(session_->finished());
  EXPECT_EQ(target_->breakpoints(), 0u);
  EXPECT_TRUE(target_->running());
}

TEST_F(GdbSessionTest, DisconnectLetsTheGuestRun) {
  EXPECT_EQ(Ask("Z0,1010,1"), "OK");
  session_->OnDisconnect();
  EXPECT_EQ(target_->breakpoints(), 0u);
  EXPECT_TRUE(target_->running());
}

TEST_F(GdbSessionTest, Kill) {
  SendRaw(Frame("k"));
  EXPECT_TRUE(Replies().empty());
  EXPECT_TRUE(target_->killed());
  EXPECT_TRUE(session_->finished());
}

TEST_F(GdbSessionTest, NothingToRunIsRefused) {
  EXPECT_EQ(Ask("vCont;t"), "E16");
  EXPECT_EQ(Ask("vCont;x"), "E16");
  EXPECT_EQ(Ask("vCont;c:9"), "E03");
  EXPECT_EQ(Ask("vCont;"), "E16");
}

TEST_F(GdbSessionTest, UnknownPacketsGetTheEmptyReply) {
  EXPECT_EQ(Ask("!"), "");
  EXPECT_EQ(Ask("qTStatus"), "");
  EXPECT_EQ(Ask("bc"), "");
  EXPECT_EQ(session_->counters().unsupported, 3u);
}

}  // namespace
}  // namespace vmm::gdb
