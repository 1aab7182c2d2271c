// `vmm suite merge A.xml B.xml ... --junit ALL.xml`: one JUnit report from the
// reports of the shards of a suite (docs/suite.md, "Sharding").
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace vmm::suite {

// Reads every input with expat (JUnit XML as `vmm suite --junit` writes it: a
// <testsuites> or a single <testsuite>), and writes one <testsuites> holding
// one <testsuite name="boot"> with every <testcase> of the inputs, in input
// order, its counts recomputed from the test cases and its time the inputs'
// sum. A test case that two inputs both hold (the same classname and name)
// is an error: the shards overlapped.
//
// Exit status: 0 written; 64 no input or no --junit; 65 an input is not XML,
// not JUnit, or overlaps another (the message names the file and line or
// case); 66 an input cannot be read; 73 the output cannot be written.
int MergeJUnit(const std::vector<std::string>& inputs, const std::string& output);

// An input larger than this is refused (65): a shard's report is kilobytes.
constexpr size_t kMaxReportBytes = size_t{256} << 20;

// The merge itself, on texts in memory ({name, text} pairs; the name stands
// for the file in messages). status is 0 with xml set, or 65 with error set.
struct MergeOutcome {
  int status = 0;
  std::string error;
  std::string xml;
  size_t tests = 0;
  size_t failures = 0;
  size_t errors = 0;
};
MergeOutcome MergeJUnitTexts(const std::vector<std::pair<std::string, std::string>>& reports);

}  // namespace vmm::suite
