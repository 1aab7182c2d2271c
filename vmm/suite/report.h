// What the suite prints and writes: per-run lines, the final table, failure
// forensics, timings.json and JUnit XML. Pure formatting over RunRecords.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/suite/runner.h"

namespace vmm::suite {

// Nearest-rank percentile (p in (0, 100]) of `values`; 0 when empty.
double Percentile(std::vector<double> values, double p);

// "PASS  banner                 41.2 ms" / "FAIL  exit-3#2  ...  <why>".
std::string FormatRunLine(const CaseEntry& entry, const RunRecord& record, int repeat);

// The final table. With repeat == 1: case, verdict, exit, wall, one column
// per boot-trace event seen, first and last matched pattern. With repeat > 1:
// case, runs, passed, pass rate, boot and wall p50/p95, p50 of each event.
std::string FormatTable(const std::vector<CaseEntry>& cases, const std::vector<RunRecord>& records,
                        int repeat);

// Failure forensics for one failed run: why, the serial tail, vmm's stderr,
// the artifact folder.
std::string FormatFailure(const CaseEntry& entry, const RunRecord& record, int repeat);

// The timings.json written next to a run's serial.log.
nlohmann::json TimingsJson(const CaseEntry& entry, const RunRecord& record);

// Escapes text for XML character data and attribute values and drops the
// characters XML 1.0 cannot carry (control bytes other than TAB, LF, CR;
// invalid UTF-8 becomes U+FFFD).
std::string XmlEscape(std::string_view text);

// JUnit XML (the schema Jenkins, GitLab and GitHub readers accept): one
// <testsuite> with one <testcase> per run; <failure> for a failed run,
// <error> for a malformed case or a vmm that could not start.
std::string JUnitXml(const std::vector<CaseEntry>& cases, const std::vector<RunRecord>& records,
                     int repeat, double total_s, std::string_view timestamp);

}  // namespace vmm::suite
