// libFuzzer target for the control API's HTTP request parser and router:
// whatever a client sends, the server neither crashes nor holds more than
// its limits. Built with clang only (tests/console/CMakeLists.txt):
//   cmake -DCMAKE_CXX_COMPILER=clang++ -DVMM_FUZZ=ON ... && ./http_parser_fuzz
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmm/api/api_server.h"
#include "vmm/api/http.h"

namespace {

class NullVm : public vmm::VmControl {
 public:
  nlohmann::json Info() override { return {{"state", "Running"}}; }
  base::Result<void> Pause() override { return {}; }
  base::Result<void> Resume() override { return {}; }
  base::Result<void> Shutdown() override { return {}; }
  base::Result<void> Reset() override { return {}; }
  base::Result<void> SendCtrlAltDel() override { return {}; }
  nlohmann::json Metrics() override { return nlohmann::json::object(); }
  base::Result<std::vector<uint8_t>> ScreenshotPng() override {
    return std::vector<uint8_t>{0x89, 'P', 'N', 'G'};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size, so split reads get fuzzed too.
  size_t chunk = 1 + data[0] % 97;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  NullVm vm;
  vmm::ApiRouter router(vm);
  vmm::http::RequestParser parser;
  const vmm::http::Limits limits;
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    parser.Feed(input.substr(pos, chunk));
    vmm::http::RequestParser::Status s;
    while ((s = parser.Parse()) == vmm::http::RequestParser::Status::kComplete) {
      vmm::http::Response r = router.Handle(parser.TakeRequest());
      if (r.status < 200 || r.status > 599) abort();
      (void)r.Serialize();
    }
    if (parser.buffered() > limits.max_header_bytes + limits.max_body_bytes + 4096) abort();
    if (s == vmm::http::RequestParser::Status::kError) {
      if (parser.error_status() < 400) abort();
      break;
    }
  }
  return 0;
}
