// Parser for vmm's --boot-trace lines on stderr.
//
// With --boot-trace vmm writes lines "boot-trace: <event> <ms> ms" to stderr,
// the time being milliseconds since vmm's main() (e.g. "boot-trace:
// phase-0x40 2.500 ms" for a write of 0x40 to the boot-phase port 0x80). The
// parser takes stderr in arbitrary chunks and keeps every event in order.
// Lines that are not trace lines are ignored here (the runner keeps the whole
// stderr for forensics). Owned by one runner job on the runner's thread.
#pragma once

#include <optional>
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
  void Feed(std::string_view bytes);
  void Finish();

  const std::vector<BootEvent>& events() const { return events_; }
  // The first occurrence of `name`, if any.
  std::optional<double> Find(std::string_view name) const;

 private:
  std::string line_;
  std::vector<BootEvent> events_;
};

}  // namespace vmm::suite
