#include "vmm/suite/shard.h"

#include <algorithm>
#include <charconv>
#include <numeric>

namespace vmm::suite {
namespace {

bool ParsePositive(std::string_view text, int* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end && *value > 0;
}

}  // namespace

base::Result<Shard> ParseShard(std::string_view text) {
  size_t slash = text.find('/');
  Shard shard;
  if (slash == std::string_view::npos || !ParsePositive(text.substr(0, slash), &shard.index) ||
      !ParsePositive(text.substr(slash + 1), &shard.count)) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--shard '{}': expected I/N, two positive integers", text);
  }
  if (shard.count > kMaxShards) {
    return base::MakeError(base::ErrorKind::kUsage, "--shard '{}': N is at most {}", text,
                           kMaxShards);
  }
  if (shard.index > shard.count) {
    return base::MakeError(base::ErrorKind::kUsage, "--shard '{}': I must be between 1 and N",
                           text);
  }
  return shard;
}

std::vector<size_t> ShardCases(const std::vector<std::string>& names,
                               const std::vector<double>& recorded_ms, Shard shard) {
  const size_t n = names.size();
  std::vector<double> known;
  for (size_t i = 0; i < n; ++i) {
    if (i < recorded_ms.size() && recorded_ms[i] >= 0) known.push_back(recorded_ms[i]);
  }
  double fallback = 1.0;
  if (!known.empty()) {
    std::sort(known.begin(), known.end());
    fallback = known[known.size() / 2];
  }
  std::vector<double> weight(n);
  for (size_t i = 0; i < n; ++i) {
    weight[i] = (i < recorded_ms.size() && recorded_ms[i] >= 0) ? recorded_ms[i] : fallback;
  }

  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (weight[a] != weight[b]) return weight[a] > weight[b];
    if (names[a] != names[b]) return names[a] < names[b];
    return a < b;
  });

  const auto shards = static_cast<size_t>(shard.count);
  std::vector<double> load(shards, 0.0);
  std::vector<size_t> cases(shards, 0);
  std::vector<size_t> mine;
  for (size_t i : order) {
    size_t best = 0;
    for (size_t s = 1; s < shards; ++s) {
      if (load[s] < load[best] || (load[s] == load[best] && cases[s] < cases[best])) best = s;
    }
    load[best] += weight[i];
    ++cases[best];
    if (best == static_cast<size_t>(shard.index - 1)) mine.push_back(i);
  }
  std::sort(mine.begin(), mine.end());
  return mine;
}

}  // namespace vmm::suite
