#include "vmm/suite/boot_trace.h"

#include <cctype>
#include <charconv>

namespace vmm::suite {
namespace {

constexpr std::string_view kPrefix = "boot-trace: ";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::optional<BootEvent> ParseBootTraceLine(std::string_view line) {
  line = Trim(line);
  // Tolerate a logger prefix before the marker ("[info] boot-trace: ...").
  size_t at = line.find(kPrefix);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(at + kPrefix.size());
  if (!rest.ends_with(" ms")) return std::nullopt;
  rest.remove_suffix(3);
  size_t space = rest.rfind(' ');
  if (space == std::string_view::npos || space == 0) return std::nullopt;
  std::string_view name = Trim(rest.substr(0, space));
  std::string_view number = rest.substr(space + 1);
  if (name.empty() || name.find(' ') != std::string_view::npos) return std::nullopt;
  double ms = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), ms);
  if (ec != std::errc() || ptr != number.data() + number.size() || ms < 0) return std::nullopt;
  return BootEvent{std::string(name), ms};
}

std::string BootEventLabel(std::string_view event) {
  if (event == "phase-0x40") return "entry(0x40)";
  if (event == "phase-0x41") return "user(0x41)";
  if (event == "first-serial-byte") return "1st byte";
  if (event == "exit") return "vmm exit";
  return std::string(event);
}

void BootTraceParser::Feed(std::string_view bytes) {
  for (char c : bytes) {
    if (c != '\n') {
      if (line_.size() < 4096) line_.push_back(c);
      continue;
    }
    if (auto event = ParseBootTraceLine(line_)) Add(std::move(*event));
    line_.clear();
  }
}

void BootTraceParser::Add(BootEvent event) {
  const bool new_name = names_.find(event.name) == names_.end();
  if (events_.size() >= kMaxEvents && !(new_name && late_names_ < kMaxLateNames)) {
    ++dropped_;
    return;
  }
  if (events_.size() >= kMaxEvents) ++late_names_;
  if (new_name) names_.insert(event.name);
  events_.push_back(std::move(event));
}

void BootTraceParser::Finish() {
  if (line_.empty()) return;
  if (auto event = ParseBootTraceLine(line_)) Add(std::move(*event));
  line_.clear();
}

std::optional<double> BootTraceParser::Find(std::string_view name) const {
  for (const BootEvent& event : events_) {
    if (event.name == name) return event.ms;
  }
  return std::nullopt;
}

}  // namespace vmm::suite
