// libFuzzer's start-up hook for every fuzz target (tests/fuzz/CMakeLists.txt):
// the logs are switched off. Devices log each guest mistake (rate-limited),
// and a fuzzer makes nothing but mistakes; the output would cost more time
// than the code under test.
#include <spdlog/spdlog.h>

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}
