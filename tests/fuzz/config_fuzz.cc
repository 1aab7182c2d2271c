// libFuzzer target for the JSON configuration (`vmm --config FILE`,
// vmm/config.h): a user's file is untrusted input. Whatever the text,
// ParseConfig returns a VmConfig or a kConfig error naming the file (and the
// field); it never throws (nlohmann-json's exceptions are caught at the call,
// docs/conventions.md) and what it accepts passes the checks the builder
// relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vmm/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = vmm::ParseConfig(text, "/nonexistent-fuzz-dir", "fuzz.json");
  if (config) {
    if (auto valid = vmm::ValidateConfig(*config); !valid && valid.error().message().empty()) {
      std::abort();
    }
  } else {
    if (config.error().ToString().find("fuzz.json") == std::string::npos) std::abort();
  }
  return 0;
}
