#include "vmm/suite/report.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace vmm::suite {
namespace {

constexpr size_t kStderrTailLines = 60;

std::string RunName(const CaseEntry& entry, const RunRecord& record, int repeat) {
  if (repeat <= 1 || record.run == 0) return entry.name;
  return fmt::format("{}#{}", entry.name, record.run);
}

std::string Ms(std::optional<double> ms) {
  if (!ms) return "-";
  return fmt::format("{:.1f}", *ms);
}

// Column order: the well-known events first, then phases by code, then the rest.
int EventRank(const std::string& name) {
  if (name == "kernel-loaded") return 0;
  if (name == "vm-created") return 1;
  if (name == "first-run") return 2;
  if (name.starts_with("phase-")) return 3;
  if (name == "first-serial-byte") return 4;
  if (name == "exit") return 6;
  return 5;
}

std::vector<std::string> EventColumns(const std::vector<RunRecord>& records) {
  std::set<std::string> seen;
  for (const RunRecord& record : records) {
    for (const BootEvent& event : record.trace) seen.insert(event.name);
  }
  std::vector<std::string> columns(seen.begin(), seen.end());
  std::stable_sort(columns.begin(), columns.end(), [](const std::string& a, const std::string& b) {
    return EventRank(a) < EventRank(b);
  });
  return columns;
}

std::optional<double> FindEvent(const RunRecord& record, const std::string& name) {
  for (const BootEvent& event : record.trace) {
    if (event.name == name) return event.ms;
  }
  return std::nullopt;
}

// Left-aligns the first `left` columns, right-aligns the rest.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows, size_t left) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < rows[r].size(); ++i) {
      if (i > 0) line += "  ";
      if (i < left) {
        line += fmt::format("{:<{}}", rows[r][i], widths[i]);
      } else {
        line += fmt::format("{:>{}}", rows[r][i], widths[i]);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t w : widths) total += w + 2;
      out += std::string(total > 2 ? total - 2 : 0, '-') + "\n";
    }
  }
  return out;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

std::string FormatRunLine(const CaseEntry& entry, const RunRecord& record, int repeat) {
  std::string line = fmt::format("{:<5} {:<24} {:>12} {:>9} ms", VerdictName(record.verdict.kind),
                                 RunName(entry, record, repeat), record.verdict.exit_text,
                                 fmt::format("{:.1f}", record.wall_ms));
  if (!record.verdict.passed()) line += "  " + record.verdict.Summary();
  return line;
}

std::string FormatTable(const std::vector<CaseEntry>& cases, const std::vector<RunRecord>& records,
                        int repeat) {
  std::vector<std::string> events = EventColumns(records);
  std::vector<std::vector<std::string>> rows;
  if (repeat <= 1) {
    std::vector<std::string> header = {"case", "verdict", "exit", "wall ms"};
    for (const std::string& event : events) header.push_back(BootEventLabel(event));
    header.push_back("1st match");
    header.push_back("last match");
    rows.push_back(header);
    for (const RunRecord& record : records) {
      std::vector<std::string> row = {cases[record.case_index].name,
                                      VerdictName(record.verdict.kind), record.verdict.exit_text,
                                      record.run == 0 ? "-" : Ms(record.wall_ms)};
      for (const std::string& event : events) row.push_back(Ms(FindEvent(record, event)));
      std::optional<double> first;
      std::optional<double> last;
      if (!record.matches.empty()) {
        first = record.matches.front().time_ms;
        last = record.matches.back().time_ms;
      }
      row.push_back(Ms(first));
      row.push_back(Ms(last));
      rows.push_back(std::move(row));
    }
    std::string table = RenderTable(rows, 3);
    return table +
           "times in ms: wall, 1st/last match from the vmm child's start (runner clock); event "
           "columns are vmm's --boot-trace, since vmm's main()\n";
  }

  std::vector<std::string> header = {"case",     "runs",     "passed",   "pass rate",
                                     "boot p50", "boot p95", "wall p50", "wall p95"};
  for (const std::string& event : events) header.push_back(BootEventLabel(event) + " p50");
  rows.push_back(header);
  std::map<size_t, std::vector<const RunRecord*>> by_case;
  for (const RunRecord& record : records) by_case[record.case_index].push_back(&record);
  for (const auto& [index, runs] : by_case) {
    if (runs.size() == 1 && runs[0]->run == 0) {
      std::vector<std::string> row = {cases[index].name, "0", "ERROR", "-", "-", "-", "-", "-"};
      row.resize(header.size(), "-");
      rows.push_back(std::move(row));
      continue;
    }
    size_t passed = 0;
    std::vector<double> boot;
    std::vector<double> wall;
    for (const RunRecord* run : runs) {
      if (run->verdict.passed()) ++passed;
      boot.push_back(run->boot_ms);
      wall.push_back(run->wall_ms);
    }
    std::vector<std::string> row = {cases[index].name,
                                    std::to_string(runs.size()),
                                    std::to_string(passed),
                                    fmt::format("{:.1f}%", 100.0 * static_cast<double>(passed) /
                                                               static_cast<double>(runs.size())),
                                    Ms(Percentile(boot, 50)),
                                    Ms(Percentile(boot, 95)),
                                    Ms(Percentile(wall, 50)),
                                    Ms(Percentile(wall, 95))};
    for (const std::string& event : events) {
      std::vector<double> values;
      for (const RunRecord* run : runs) {
        if (auto ms = FindEvent(*run, event)) values.push_back(*ms);
      }
      row.push_back(values.empty() ? "-" : Ms(Percentile(values, 50)));
    }
    rows.push_back(std::move(row));
  }
  return RenderTable(rows, 1) +
         "times in ms; boot = vmm child start to the last expected pattern (wall time when a "
         "case has none or they did not all match)\n";
}

std::string FormatFailure(const CaseEntry& entry, const RunRecord& record, int repeat) {
  std::string out =
      fmt::format("==== {} {} ", VerdictName(record.verdict.kind), RunName(entry, record, repeat));
  out += std::string(out.size() < 78 ? 78 - out.size() : 4, '=') + "\n";
  out += fmt::format("case file: {}\n", entry.file.string());
  if (record.run == 0) {
    out += fmt::format("why:       {}\n", record.verdict.Summary());
    return out;
  }
  std::string command;
  for (const std::string& arg : record.command) {
    if (!command.empty()) command += ' ';
    bool quote = arg.empty() || arg.find_first_of(" \t'\"$") != std::string::npos;
    command += quote ? "'" + arg + "'" : arg;
  }
  out += fmt::format("command:   {}\n", command);
  for (size_t i = 0; i < record.verdict.reasons.size(); ++i) {
    out += fmt::format("{}{}\n", i == 0 ? "why:       " : "           ", record.verdict.reasons[i]);
  }
  out += fmt::format("ended:     {} after {:.1f} ms\n", record.verdict.exit_text, record.wall_ms);
  out += fmt::format("serial (last {} of {} lines):\n", record.serial_tail.size(),
                     record.serial_lines);
  if (record.serial_tail.empty()) out += "  (no serial output)\n";
  for (const std::string& line : record.serial_tail) out += "  | " + line + "\n";
  std::vector<std::string> stderr_lines = SplitLines(record.stderr_text);
  size_t skip = stderr_lines.size() > kStderrTailLines ? stderr_lines.size() - kStderrTailLines : 0;
  out += fmt::format("vmm stderr (last {} of {} lines):\n", stderr_lines.size() - skip,
                     stderr_lines.size());
  if (stderr_lines.empty()) out += "  (empty)\n";
  for (size_t i = skip; i < stderr_lines.size(); ++i) out += "  ! " + stderr_lines[i] + "\n";
  if (!record.screen_images.empty()) {
    std::string images;
    for (const std::string& name : record.screen_images) {
      if (!images.empty()) images += ", ";
      images += (record.artifact_dir / name).string();
    }
    out += fmt::format("screen:    {}\n", images);
  }
  out += fmt::format("artifacts: {}\n", record.artifact_dir.string());
  return out;
}

nlohmann::json TimingsJson(const CaseEntry& entry, const RunRecord& record) {
  using nlohmann::json;
  auto optional_ms = [](std::optional<double> ms) -> json {
    return ms ? json(*ms) : json(nullptr);
  };
  json matches = json::array();
  for (size_t i = 0; i < record.matches.size(); ++i) {
    matches.push_back({{"pattern", entry.spec ? entry.spec->expect[i] : ""},
                       {"line", record.matches[i].line},
                       {"ms", record.matches[i].time_ms}});
  }
  json trace = json::object();
  for (const BootEvent& event : record.trace) {
    if (!trace.contains(event.name)) trace[event.name] = event.ms;
  }
  json doc = {
      {"case", entry.name},
      {"file", entry.file.string()},
      {"run", record.run},
      {"verdict", VerdictName(record.verdict.kind)},
      {"reasons", record.verdict.reasons},
      {"exit", record.verdict.exit_text},
      {"command", record.command},
      {"start_ms", record.start_ms},
      {"end_ms", record.end_ms},
      {"wall_ms", record.wall_ms},
      {"boot_ms", record.boot_ms},
      {"first_serial_byte_ms", optional_ms(record.first_byte_ms)},
      {"serial_lines", record.serial_lines},
      {"matches", matches},
      {"boot_trace", trace},
      {"screen_images", record.screen_images},
  };
  if (record.observation.end == Observation::End::kExited) {
    doc["exit_status"] = record.observation.status;
  } else {
    doc["exit_status"] = nullptr;
  }
  return doc;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '&':
          out += "&amp;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        case '\t':
        case '\n':
          out.push_back(static_cast<char>(c));
          break;
        case '\r':
          out += "&#13;";
          break;
        default:
          if (c >= 0x20 && c != 0x7f) out.push_back(static_cast<char>(c));
          break;  // XML 1.0 §2.2: other C0 controls are not characters
      }
      continue;
    }
    // Decode one UTF-8 sequence; anything malformed becomes U+FFFD.
    size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    uint32_t cp = 0;
    bool ok = length != 0 && i + length <= text.size();
    if (ok) {
      cp = c & (0x7f >> length);
      for (size_t k = 1; k < length; ++k) {
        auto next = static_cast<unsigned char>(text[i + k]);
        if ((next & 0xc0) != 0x80) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (next & 0x3f);
      }
    }
    bool valid = ok && !(length == 3 && cp < 0x800) && !(length == 4 && cp < 0x10000) &&
                 cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe && cp != 0xffff;
    if (valid) {
      AppendUtf8(out, cp);
      i += length;
    } else {
      AppendUtf8(out, 0xfffd);
      i += 1;
    }
  }
  return out;
}

std::string JUnitXml(const std::vector<CaseEntry>& cases, const std::vector<RunRecord>& records,
                     int repeat, double total_s, std::string_view timestamp) {
  size_t failures = 0;
  size_t errors = 0;
  for (const RunRecord& record : records) {
    if (record.verdict.kind == VerdictKind::kFail) ++failures;
    if (record.verdict.kind == VerdictKind::kError) ++errors;
  }
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"vmm suite\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
      "time=\"{:.3f}\">\n",
      records.size(), failures, errors, total_s);
  out += fmt::format(
      "  <testsuite name=\"boot\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
      "skipped=\"0\" time=\"{:.3f}\" timestamp=\"{}\" hostname=\"{}\">\n",
      records.size(), failures, errors, total_s, XmlEscape(timestamp), XmlEscape(host));
  for (const RunRecord& record : records) {
    const CaseEntry& entry = cases[record.case_index];
    out +=
        fmt::format("    <testcase name=\"{}\" classname=\"boot\" time=\"{:.3f}\" file=\"{}\">\n",
                    XmlEscape(RunName(entry, record, repeat)), record.wall_ms / 1000.0,
                    XmlEscape(entry.file.string()));
    if (!record.verdict.passed()) {
      const char* element = record.verdict.kind == VerdictKind::kError ? "error" : "failure";
      out += fmt::format("      <{} message=\"{}\" type=\"{}\">{}</{}>\n", element,
                         XmlEscape(record.verdict.Summary()), XmlEscape(record.verdict.exit_text),
                         XmlEscape(FormatFailure(entry, record, repeat)), element);
    }
    if (record.run != 0) {
      std::string serial;
      for (const std::string& line : record.serial_tail) serial += line + "\n";
      out += fmt::format("      <system-out>{}</system-out>\n", XmlEscape(serial));
      if (!record.stderr_text.empty()) {
        out += fmt::format("      <system-err>{}</system-err>\n", XmlEscape(record.stderr_text));
      }
    }
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace vmm::suite
