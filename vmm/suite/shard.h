// `vmm suite --shard I/N`: one deterministic part of the selected cases, so
// that the jobs of a CI matrix each run 1/N of the suite (docs/suite.md,
// "Sharding").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vmm::suite {

struct Shard {
  int index = 1;  // 1-based, as the user writes it
  int count = 1;
};

// "I/N" with 1 <= I <= N <= kMaxShards; the error names the text and the rule.
constexpr int kMaxShards = 1000;
base::Result<Shard> ParseShard(std::string_view text);

// The cases shard `shard` runs, as indices into `names` in ascending order.
// `recorded_ms[i]` is case i's wall time from an earlier run, or a negative
// number when there is none. Cases are dealt out longest first (ties by
// name) to the shard with the least time so far (ties: fewer cases, then the
// lower shard); a case with no recorded time counts as the median of those
// with one (1 ms when none has one), so without records the split is by name,
// round robin. The same names and times give the same split on every machine,
// and the shards together hold every case exactly once.
std::vector<size_t> ShardCases(const std::vector<std::string>& names,
                               const std::vector<double>& recorded_ms, Shard shard);

}  // namespace vmm::suite
