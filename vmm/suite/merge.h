// `vmm suite merge A.xml B.xml ... --junit ALL.xml`: one JUnit report from the
// reports of the shards of a suite (docs/suite.md, "Sharding").
#pragma once

#include <string>
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

}  // namespace vmm::suite
