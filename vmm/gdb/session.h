// One gdb client's conversation with a GdbTarget (docs/gdb.md): the packet
// commands of the GDB remote serial protocol in all-stop mode, without
// sockets. The server (vmm/gdb/server.h) feeds it the client's bytes and
// the target's stops, and writes what it sends.
//
// Threads are vCPUs: thread id N is vCPU N-1 (gdb's ids start at 1).
//
// Not thread-safe: every call on the server's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/gdb/rsp.h"
#include "vmm/gdb/target.h"

namespace vmm::gdb {

struct SessionCounters {
  uint64_t packets = 0;        // good packets handled
  uint64_t bad_checksums = 0;  // answered with `-`
  uint64_t overlong = 0;       // longer than kMaxPacket, dropped
  uint64_t unsupported = 0;    // answered with the empty reply
  uint64_t errors = 0;         // answered with Exx
  uint64_t interrupts = 0;     // 0x03 bytes
};

class GdbSession {
 public:
  // `send` writes bytes to the client.
  GdbSession(GdbTarget& target, std::function<void(std::string_view)> send);

  // Halts the target (it may be running) so that `?` can answer. Called once,
  // when the client connects.
  [[nodiscard]] base::Result<void> Attach();
  // Bytes the client sent.
  void Receive(std::span<const uint8_t> bytes);
  // A stop the target reported (posted to the server's thread).
  void OnStop(const StopEvent& event);
  // The client is gone: breakpoints are removed and the guest runs on.
  void OnDisconnect();

  // After `D`, `k`, or the guest's exit: the server closes the connection
  // once what was sent is written.
  bool finished() const { return finished_; }
  const SessionCounters& counters() const { return counters_; }

 private:
  void HandlePacket(std::string_view packet);
  // The reply to one packet; nullopt when none is sent now (a resume: the
  // stop reply comes later; `k`).
  std::optional<std::string> Dispatch(std::string_view packet);
  void SendPacket(std::string_view payload);

  std::string StopReply(const StopEvent& event) const;
  std::string Query(std::string_view packet);
  std::string Supported(std::string_view features);
  std::string ReadFeatures(std::string_view annex_and_range);
  std::string MonitorCommand(std::string_view hex_command);
  std::string ReadRegisters();
  std::string WriteRegisters(std::string_view hex);
  std::string ReadRegister(std::string_view args);
  std::string WriteRegister(std::string_view args);
  std::string ReadMemory(std::string_view args);
  std::string WriteMemory(std::string_view args, bool binary);
  std::string Breakpoint(std::string_view args, bool insert);
  std::string SetThread(std::string_view args);
  std::string ThreadAlive(std::string_view args);
  std::optional<std::string> Continue(std::string_view args, bool step);
  std::optional<std::string> VCont(std::string_view actions);
  std::optional<std::string> ResumeWith(const std::vector<ResumeMode>& modes);
  std::string Detach();
  std::string Error(int code);

  // Thread ids <-> vCPUs. nullopt for an id that names no vCPU; `all` is -1.
  std::optional<int64_t> ParseThreadId(std::string_view text) const;
  uint32_t RegisterCpu() const;

  GdbTarget& target_;
  std::function<void(std::string_view)> send_;
  PacketReader reader_;
  SessionCounters counters_;

  bool ack_mode_ = true;
  bool swbreak_feature_ = false;  // the client announced swbreak+
  bool hwbreak_feature_ = false;
  bool running_ = false;  // resumed; a stop reply is owed
  bool finished_ = false;
  bool exited_ = false;
  StopEvent last_stop_;
  std::string last_packet_;  // resent on `-`
  int resends_ = 0;
  // Hg (registers, memory) and Hc (step/continue) selections: a vCPU, or
  // -1 for all (Hc only).
  int64_t g_thread_ = 0;
  int64_t c_thread_ = -1;
};

}  // namespace vmm::gdb
