// A fixed-seed mutation run of a libFuzzer entry point, for where libFuzzer
// is unavailable (GCC; Debian 12's clang 14 cannot compile libstdc++ 12's
// <expected>): each seed once, then `runs` mutants of it with 1-8 edits each
// (a random byte, a bit flip, an interesting 64-bit value, a truncation).
// Edits favour the first `hot` bytes, where headers and rings live, and never
// touch the first `keep` bytes (e.g. a byte that selects the target). The run
// stops early at `deadline`, so a smoke stays fast under ASan too.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace fuzz_smoke {

struct MutationOptions {
  size_t hot = 0x300;
  size_t keep = 0;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Returns the number of inputs run (seeds included).
inline uint64_t RunMutations(const std::vector<std::vector<uint8_t>>& seeds, int runs,
                             const MutationOptions& options,
                             int (*target)(const uint8_t* data, size_t size)) {
  std::mt19937_64 rng(20261122);
  uint64_t count = 0;
  for (const auto& seed : seeds) {
    target(seed.data(), seed.size());
    ++count;
    for (int run = 0; run < runs; ++run) {
      if (run % 64 == 0 && std::chrono::steady_clock::now() > options.deadline) break;
      std::vector<uint8_t> input = seed;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && input.size() > options.keep; ++e) {
        const size_t limit =
            (rng() % 4 == 0) ? input.size() : std::min<size_t>(input.size(), options.hot);
        if (limit <= options.keep) break;
        const size_t at = options.keep + rng() % (limit - options.keep);
        switch (rng() % 4) {
          case 0:
            input[at] = static_cast<uint8_t>(rng());
            break;
          case 1:
            input[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
          case 2:
            if (at + 8 <= input.size()) {
              const uint64_t values[] = {0,          UINT64_MAX, 0x7fffffff, 0x80000000,
                                         0xffffffff, 0x100000,   rng(),      rng() % (1 << 20)};
              std::memcpy(input.data() + at, &values[rng() % 8], 8);
            }
            break;
          case 3:
            input.resize(options.keep + rng() % (input.size() - options.keep + 1));
            break;
        }
      }
      target(input.data(), input.size());
      ++count;
    }
  }
  return count;
}

}  // namespace fuzz_smoke
