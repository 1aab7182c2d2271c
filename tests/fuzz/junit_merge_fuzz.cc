// libFuzzer target for `vmm suite merge` (vmm/suite/merge.h, docs/suite.md
// "Sharding"): the JUnit files of a CI's shards, read with expat. Whatever
// the bytes, the merge either refuses them with status 65 and a message
// naming the input, or writes a report that itself merges again (it is
// well-formed XML) to the same counts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "vmm/suite/merge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  vmm::suite::MergeOutcome first = vmm::suite::MergeJUnitTexts({{"fuzz-report.xml", text}});
  if (first.status != 0) {
    if (first.status != 65 || first.error.find("fuzz-report.xml") == std::string::npos) {
      std::abort();
    }
    return 0;
  }
  vmm::suite::MergeOutcome again = vmm::suite::MergeJUnitTexts({{"merged.xml", first.xml}});
  if (again.status != 0 || again.tests != first.tests || again.failures != first.failures ||
      again.errors != first.errors) {
    std::abort();
  }
  return 0;
}
