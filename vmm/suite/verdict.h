// Judging one run of a case: how vmm ended plus what the serial output matched.
//
// Pure functions over plain data, so the rules are unit-tested without
// processes (tests/unit/suite/verdict_test.cc).
#pragma once

#include <string>
#include <vector>

#include "vmm/suite/case.h"
#include "vmm/suite/matcher.h"

namespace vmm::suite {

// How the vmm child ended, as the runner saw it.
struct Observation {
  enum class End {
    kExited,        // exited normally; `status` is its exit status
    kSignaled,      // died of signal `status` (a vmm crash)
    kWatchdog,      // still running at the watchdog deadline; the runner killed it
    kStoppedEarly,  // the runner killed it once the verdict was known (forbidden pattern)
    kSpawnFailed,   // could not be started at all; `detail` says why
  };
  End end = End::kExited;
  int status = 0;
  double watchdog_s = 0;  // the watchdog deadline, for the message
  std::string detail;
};

enum class VerdictKind { kPass, kFail, kError };

struct Verdict {
  VerdictKind kind = VerdictKind::kPass;
  std::vector<std::string> reasons;  // empty on a pass; most important first
  std::string exit_text;             // the table's "exit" column

  bool passed() const { return kind == VerdictKind::kPass; }
  std::string Summary() const;  // the reasons joined with "; "
};

const char* VerdictName(VerdictKind kind);  // "PASS", "FAIL", "ERROR"

// The "exit" column for an observation: "exit:0", "triple-fault", "signal:11",
// "killed", "-".
std::string DescribeEnd(const Observation& observation);

// Pass only when vmm ended as the case expects, every expected pattern
// matched in order, no forbidden pattern matched, and the screen check (if
// the case has one) found nothing: `screen` holds its failures, from
// CheckScreen (screen_check.h). `matcher` must be Finish()ed.
Verdict Decide(const CaseSpec& spec, const Observation& observation, const SerialMatcher& matcher,
               const std::vector<std::string>& screen = {});

}  // namespace vmm::suite
