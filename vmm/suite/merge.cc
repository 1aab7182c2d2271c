#include "vmm/suite/merge.h"

#include <expat.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include "vmm/suite/report.h"

namespace vmm::suite {
namespace {

constexpr int kExitUsage = 64;
constexpr int kExitDataError = 65;
constexpr int kExitNoInput = 66;
constexpr int kExitCantCreate = 73;

// What the merge keeps of all the inputs.
struct Merged {
  std::string testcases;  // every <testcase> element, serialized again
  size_t tests = 0;
  size_t failures = 0;
  size_t errors = 0;
  size_t skipped = 0;
  double time_s = 0;
  std::string timestamp;  // the earliest
  std::set<std::string> hosts;
  std::map<std::pair<std::string, std::string>, std::string> seen;  // (classname, name) -> file
};

// One input's parse (expat calls back into it).
struct Reader {
  XML_Parser parser = nullptr;
  const std::string* path = nullptr;
  Merged* merged = nullptr;
  int depth = 0;        // of the element being read; 1 is the root
  int suite_depth = 0;  // the depth of <testsuite> elements in this file
  int case_depth = 0;   // while inside a <testcase>, its depth
  std::string error;    // set: stop, and report this
};

const char* Find(const XML_Char** attributes, std::string_view name) {
  for (size_t i = 0; attributes[i] != nullptr; i += 2) {
    if (name == attributes[i]) return attributes[i + 1];
  }
  return nullptr;
}

void Fail(Reader* reader, std::string message) {
  if (reader->error.empty()) reader->error = std::move(message);
  XML_StopParser(reader->parser, XML_FALSE);
}

void OnStart(void* data, const XML_Char* element, const XML_Char** attributes) {
  auto* reader = static_cast<Reader*>(data);
  Merged* merged = reader->merged;
  std::string_view name = element;
  ++reader->depth;
  unsigned long line = XML_GetCurrentLineNumber(reader->parser);
  if (reader->depth == 1) {
    if (name == "testsuites") {
      reader->suite_depth = 2;
    } else if (name == "testsuite") {
      reader->suite_depth = 1;
    } else {
      Fail(reader, fmt::format("{}: not a JUnit report (the root element is <{}>, not "
                               "<testsuites> or <testsuite>)",
                               *reader->path, name));
      return;
    }
  }
  if (reader->case_depth == 0 && reader->depth == reader->suite_depth && name == "testsuite") {
    if (const char* time = Find(attributes, "time")) merged->time_s += std::strtod(time, nullptr);
    const char* stamp = Find(attributes, "timestamp");
    if (stamp != nullptr && *stamp != '\0' &&
        (merged->timestamp.empty() || std::string_view(stamp) < merged->timestamp)) {
      merged->timestamp = stamp;
    }
    if (const char* host = Find(attributes, "hostname"); host != nullptr && *host != '\0') {
      merged->hosts.insert(host);
    }
    return;
  }
  if (reader->case_depth == 0 && reader->depth == reader->suite_depth + 1 && name == "testcase") {
    const char* case_name = Find(attributes, "name");
    if (case_name == nullptr || *case_name == '\0') {
      Fail(reader, fmt::format("{}:{}: a <testcase> without a name", *reader->path, line));
      return;
    }
    const char* classname = Find(attributes, "classname");
    auto key =
        std::make_pair(std::string(classname != nullptr ? classname : ""), std::string(case_name));
    if (auto [it, inserted] = merged->seen.emplace(key, *reader->path); !inserted) {
      Fail(reader, fmt::format("{}:{}: test case '{}' is also in {}: the shards overlap",
                               *reader->path, line, case_name, it->second));
      return;
    }
    reader->case_depth = reader->depth;
    ++merged->tests;
    merged->testcases += "    ";
  }
  if (reader->case_depth == 0) return;  // outside test cases: not kept
  if (reader->depth == reader->case_depth + 1) {
    if (name == "failure") ++merged->failures;
    if (name == "error") ++merged->errors;
    if (name == "skipped") ++merged->skipped;
  }
  merged->testcases += "<" + XmlEscape(name);
  for (size_t i = 0; attributes[i] != nullptr; i += 2) {
    merged->testcases +=
        fmt::format(" {}=\"{}\"", XmlEscape(attributes[i]), XmlEscape(attributes[i + 1]));
  }
  merged->testcases += ">";
}

void OnEnd(void* data, const XML_Char* element) {
  auto* reader = static_cast<Reader*>(data);
  if (reader->case_depth != 0) {
    reader->merged->testcases += "</" + XmlEscape(element) + ">";
    if (reader->depth == reader->case_depth) {
      reader->merged->testcases += "\n";
      reader->case_depth = 0;
    }
  }
  --reader->depth;
}

void OnText(void* data, const XML_Char* text, int length) {
  auto* reader = static_cast<Reader*>(data);
  if (reader->case_depth == 0 || length <= 0) return;
  reader->merged->testcases += XmlEscape(std::string_view(text, static_cast<size_t>(length)));
}

// Parses one report's text into `merged`: 0, or kExitDataError with the
// message in *error.
int ParseReport(std::string_view text, const std::string& path, Merged* merged,
                std::string* error) {
  std::unique_ptr<XML_ParserStruct, void (*)(XML_Parser)> parser(XML_ParserCreate("UTF-8"),
                                                                 &XML_ParserFree);
  if (!parser) {
    *error = "out of memory";
    return kExitDataError;
  }
  Reader reader;
  reader.parser = parser.get();
  reader.path = &path;
  reader.merged = merged;
  XML_SetUserData(parser.get(), &reader);
  XML_SetElementHandler(parser.get(), &OnStart, &OnEnd);
  XML_SetCharacterDataHandler(parser.get(), &OnText);
  // In pieces: XML_Parse takes an int length.
  constexpr size_t kPiece = 1 << 20;
  do {
    size_t n = std::min(kPiece, text.size());
    bool last = n == text.size();
    if (XML_Parse(parser.get(), text.data(), static_cast<int>(n), last ? XML_TRUE : XML_FALSE) !=
        XML_STATUS_OK) {
      *error = !reader.error.empty()
                   ? reader.error
                   : fmt::format("{}:{}: not XML: {}", path, XML_GetCurrentLineNumber(parser.get()),
                                 XML_ErrorString(XML_GetErrorCode(parser.get())));
      return kExitDataError;
    }
    text.remove_prefix(n);
    if (last) break;
  } while (true);
  return 0;
}

std::string Serialize(const Merged& merged) {
  std::string hosts;
  for (const std::string& host : merged.hosts) hosts += (hosts.empty() ? "" : ",") + host;
  std::string text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  text += fmt::format(
      "<testsuites name=\"vmm suite\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
      "time=\"{:.3f}\">\n",
      merged.tests, merged.failures, merged.errors, merged.time_s);
  text += fmt::format(
      "  <testsuite name=\"boot\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" "
      "time=\"{:.3f}\" timestamp=\"{}\" hostname=\"{}\">\n",
      merged.tests, merged.failures, merged.errors, merged.skipped, merged.time_s,
      XmlEscape(merged.timestamp), XmlEscape(hosts));
  text += merged.testcases;
  text += "  </testsuite>\n</testsuites>\n";
  return text;
}

}  // namespace

MergeOutcome MergeJUnitTexts(const std::vector<std::pair<std::string, std::string>>& reports) {
  Merged merged;
  MergeOutcome outcome;
  for (const auto& [name, text] : reports) {
    outcome.status = ParseReport(text, name, &merged, &outcome.error);
    if (outcome.status != 0) return outcome;
  }
  outcome.xml = Serialize(merged);
  outcome.tests = merged.tests;
  outcome.failures = merged.failures;
  outcome.errors = merged.errors;
  return outcome;
}

int MergeJUnit(const std::vector<std::string>& inputs, const std::string& output) {
  if (inputs.empty()) {
    fmt::print(stderr, "vmm suite merge: no input report\n");
    return kExitUsage;
  }
  if (output.empty()) {
    fmt::print(stderr,
               "vmm suite merge: --junit FILE is required (where the merged report goes)\n");
    return kExitUsage;
  }
  std::vector<std::pair<std::string, std::string>> reports;
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    std::error_code ec;
    if (!in.is_open() || std::filesystem::is_directory(path, ec)) {
      fmt::print(stderr, "vmm suite merge: cannot read {}\n", path);
      return kExitNoInput;
    }
    std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxReportBytes) {
      fmt::print(stderr, "vmm suite merge: {}: larger than {} MiB\n", path, kMaxReportBytes >> 20);
      return kExitDataError;
    }
    std::string text;
    char buffer[64 * 1024];
    while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
      text.append(buffer, static_cast<size_t>(in.gcount()));
      if (text.size() > kMaxReportBytes) {  // a pipe or a file that grows
        fmt::print(stderr, "vmm suite merge: {}: larger than {} MiB\n", path,
                   kMaxReportBytes >> 20);
        return kExitDataError;
      }
    }
    if (in.bad()) {
      fmt::print(stderr, "vmm suite merge: cannot read {}\n", path);
      return kExitNoInput;
    }
    reports.emplace_back(path, std::move(text));
  }
  MergeOutcome merged = MergeJUnitTexts(reports);
  if (merged.status != 0) {
    fmt::print(stderr, "vmm suite merge: {}\n", merged.error);
    return merged.status;
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(output.c_str(), "wb"),
                                                      &std::fclose);
  bool written =
      out && std::fwrite(merged.xml.data(), 1, merged.xml.size(), out.get()) == merged.xml.size() &&
      std::fflush(out.get()) == 0;
  if (!written) {
    fmt::print(stderr, "vmm suite merge: cannot write {}\n", output);
    return kExitCantCreate;
  }
  fmt::print("vmm suite merge: {} report{}, {} test case{} ({} failed, {} errors) into {}\n",
             inputs.size(), inputs.size() == 1 ? "" : "s", merged.tests,
             merged.tests == 1 ? "" : "s", merged.failures, merged.errors, output);
  return 0;
}

}  // namespace vmm::suite
