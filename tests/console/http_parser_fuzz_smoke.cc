// A driver for http_parser_fuzz.cc's LLVMFuzzerTestOneInput where libFuzzer
// is unavailable (GCC; Debian 12's clang 14 cannot compile libstdc++ 12's
// <expected>). It mutates valid API requests with a fixed seed and feeds them
// through the target (which aborts on a broken invariant). Arguments: files
// to run once each (a corpus or a crash reproducer); without arguments, the
// mutation run.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc > 1) {
    for (int i = 1; i < argc; ++i) {
      std::ifstream in(argv[i], std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "%s: cannot read\n", argv[i]);
        return 66;
      }
      std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(data.data(), data.size());
    }
    return 0;
  }
  const std::string seeds[] = {
      "GET /vm HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "PUT /vm/state HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"state\":\"Paused\"}",
      "PUT /actions HTTP/1.1\r\nContent-Length: 21\r\nExpect: 100-continue\r\n\r\n"
      "{\"action\":\"Shutdown\"}GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "PUT /vm/state HTTP/1.1\r\nContent-Length: 30\r\n\r\n{\"state\":[1,{\"a\":null}],\"x\":2}",
  };
  std::mt19937 rng(1234);
  size_t runs = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string s = seeds[rng() % std::size(seeds)];
    const int mutations = static_cast<int>(rng() % 6);
    for (int m = 0; m < mutations; ++m) {
      const size_t at = rng() % (s.size() + 1);
      switch (rng() % 5) {
        case 0:
          s.insert(at, 1, static_cast<char>(rng() % 256));
          break;
        case 1:
          if (at < s.size()) s.erase(at, 1);
          break;
        case 2:
          if (at < s.size()) s[at] = static_cast<char>(rng() % 256);
          break;
        case 3:
          s.insert(at, std::string(rng() % 20000, static_cast<char>('A' + rng() % 26)));
          break;
        default:
          s.insert(at, seeds[rng() % std::size(seeds)]);
      }
    }
    std::string data(1, static_cast<char>(rng()));  // the first byte picks the read size
    data += s;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    ++runs;
  }
  std::printf("http_parser_fuzz_smoke: %zu inputs, no invariant broken\n", runs);
  return 0;
}
