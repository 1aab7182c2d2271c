// Parser for vmm's --boot-trace lines on stderr.
//
// With --boot-trace vmm writes lines "boot-trace: <event> <ms> ms" to stderr,
// the time being milliseconds since vmm's main() (e.g. "boot-trace:
// phase-0x40 2.500 ms" for a write of 0x40 to the boot-phase port 0x80). The
// parser takes stderr in arbitrary chunks and keeps the events in order, up
// to kMaxEvents; past that only the first occurrence of an event name not
// seen yet is kept (a guest looping on port 0x80 writes ~26 000 trace lines
// a second, and the suite must not grow without bound), and the rest are
// counted in dropped().
// Lines that are not trace lines are ignored here (the runner keeps the whole
// stderr for forensics). Owned by one runner job on the runner's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vmm::suite {

struct BootEvent {
  std::string name;  // "vm-created", "phase-0x40", "first-serial-byte", "exit", ...
  double ms = 0;     // since vmm's main()
};

// Parses one line (without its newline); nullopt unless it is a trace line.
std::optional<BootEvent> ParseBootTraceLine(std::string_view line);

// The table's column name for an event: "phase-0x40" -> "entry(0x40)",
// "phase-0x41" -> "user(0x41)", "first-serial-byte" -> "1st byte", "exit" ->
// "vmm exit", others unchanged.
std::string BootEventLabel(std::string_view event);

class BootTraceParser {
 public:
  static constexpr size_t kMaxEvents = 1024;
  // Distinct names kept past kMaxEvents (256 phase values, vmm's own few).
  static constexpr size_t kMaxLateNames = 512;

  void Feed(std::string_view bytes);
  void Finish();

  const std::vector<BootEvent>& events() const { return events_; }
  // The first occurrence of `name`, if any.
  std::optional<double> Find(std::string_view name) const;
  // Trace events not kept (see above).
  uint64_t dropped() const { return dropped_; }

 private:
  void Add(BootEvent event);

  std::string line_;
  std::vector<BootEvent> events_;
  std::set<std::string, std::less<>> names_;
  size_t late_names_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace vmm::suite
