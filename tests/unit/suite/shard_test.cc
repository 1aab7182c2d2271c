// vmm suite --shard: parsing I/N and the deterministic split (vmm/suite/shard.h).
#include "vmm/suite/shard.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace vmm::suite {
namespace {

std::vector<std::string> Names(size_t n) {
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back("case-" + std::to_string(100 + i));
  return names;
}

TEST(Shard, ParsesIOverN) {
  base::Result<Shard> shard = ParseShard("2/3");
  ASSERT_TRUE(shard);
  EXPECT_EQ(shard->index, 2);
  EXPECT_EQ(shard->count, 3);
}

TEST(Shard, MalformedTextIsAUsageErrorNamingIt) {
  for (const char* text : {"", "3", "/3", "1/", "0/3", "4/3", "-1/3", "1/0", "a/b", "1/3x", "1//3",
                           "1/1001", "99999999999/3"}) {
    base::Result<Shard> shard = ParseShard(text);
    ASSERT_FALSE(shard) << text;
    EXPECT_EQ(shard.error().kind(), base::ErrorKind::kUsage) << text;
    EXPECT_NE(shard.error().message().find(std::string("'") + text + "'"), std::string::npos)
        << shard.error().message();
  }
}

TEST(Shard, EveryCaseIsInExactlyOneShard) {
  for (size_t n : {0u, 1u, 2u, 7u, 31u}) {
    for (int count : {1, 2, 3, 5, 40}) {
      std::vector<std::string> names = Names(n);
      std::vector<double> times(n, -1.0);
      for (size_t i = 0; i < n; i += 3) times[i] = static_cast<double>(i * 37 % 11);
      std::multiset<size_t> seen;
      for (int index = 1; index <= count; ++index) {
        for (size_t i : ShardCases(names, times, Shard{index, count})) seen.insert(i);
      }
      ASSERT_EQ(seen.size(), n) << n << " cases, " << count << " shards";
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen.count(i), 1u) << i;
    }
  }
}

TEST(Shard, WithoutRecordedTimesTheSplitIsByNameRoundRobin) {
  std::vector<std::string> names = {"d", "a", "c", "b", "e"};
  std::vector<double> none(names.size(), -1.0);
  // Sorted by name: a b c d e -> shards 1 2 3 1 2.
  EXPECT_EQ(ShardCases(names, none, Shard{1, 3}), (std::vector<size_t>{0, 1}));  // d, a
  EXPECT_EQ(ShardCases(names, none, Shard{2, 3}), (std::vector<size_t>{3, 4}));  // b, e
  EXPECT_EQ(ShardCases(names, none, Shard{3, 3}), (std::vector<size_t>{2}));     // c
}

TEST(Shard, RecordedTimesBalanceTheShards) {
  // One long case and four short ones: the long one gets a shard to itself.
  std::vector<std::string> names = {"long", "s1", "s2", "s3", "s4"};
  std::vector<double> times = {4000, 1000, 1000, 1000, 1000};
  EXPECT_EQ(ShardCases(names, times, Shard{1, 2}), (std::vector<size_t>{0}));
  EXPECT_EQ(ShardCases(names, times, Shard{2, 2}), (std::vector<size_t>{1, 2, 3, 4}));
}

TEST(Shard, TheSplitDoesNotDependOnInputOrder) {
  std::vector<std::string> names = {"a", "b", "c", "d"};
  std::vector<double> times = {5, 5, 1, -1};
  std::vector<std::string> reversed = {"d", "c", "b", "a"};
  std::vector<double> reversed_times = {-1, 1, 5, 5};
  for (int index = 1; index <= 2; ++index) {
    std::set<std::string> forward;
    for (size_t i : ShardCases(names, times, Shard{index, 2})) forward.insert(names[i]);
    std::set<std::string> backward;
    for (size_t i : ShardCases(reversed, reversed_times, Shard{index, 2})) {
      backward.insert(reversed[i]);
    }
    EXPECT_EQ(forward, backward) << "shard " << index;
  }
}

}  // namespace
}  // namespace vmm::suite
