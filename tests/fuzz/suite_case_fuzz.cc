// libFuzzer target for `vmm suite` case files (vmm/suite/case.h,
// docs/suite.md "Case files"): JSON a user writes. Whatever the text,
// ParseCase returns a CaseSpec or a kConfig error naming the case file; it
// never throws, and what it accepts can be turned into a vmm command line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "vmm/suite/case.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const vmm::suite::PathContext paths{"/nonexistent-fuzz-build", "/nonexistent-fuzz-source"};
  auto spec = vmm::suite::ParseCase(text, "/nonexistent-fuzz-cases/fuzz-case.json", paths);
  if (spec) {
    if (spec->name.empty()) std::abort();
    const auto argv = vmm::suite::BuildVmmCommand(*spec, "vmm");
    if (argv.empty() || argv[0] != "vmm") std::abort();
  } else if (spec.error().ToString().find("fuzz-case.json") == std::string::npos) {
    std::abort();
  }
  return 0;
}
