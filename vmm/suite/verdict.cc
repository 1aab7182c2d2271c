#include "vmm/suite/verdict.h"

#include <fmt/format.h>

#include <cstring>

namespace vmm::suite {

std::string Verdict::Summary() const {
  std::string out;
  for (const std::string& reason : reasons) {
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

const char* VerdictName(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::kPass:
      return "PASS";
    case VerdictKind::kFail:
      return "FAIL";
    case VerdictKind::kError:
      return "ERROR";
  }
  return "?";
}

std::string DescribeEnd(const Observation& observation) {
  switch (observation.end) {
    case Observation::End::kExited:
      return DescribeStatus(observation.status);
    case Observation::End::kSignaled:
      return fmt::format("signal:{}", observation.status);
    case Observation::End::kWatchdog:
      return "hung";
    case Observation::End::kStoppedEarly:
      return "stopped";
    case Observation::End::kSpawnFailed:
      return "-";
  }
  return "?";
}

Verdict Decide(const CaseSpec& spec, const Observation& observation, const SerialMatcher& matcher,
               const std::vector<std::string>& screen) {
  Verdict verdict;
  verdict.exit_text = DescribeEnd(observation);
  if (observation.end == Observation::End::kSpawnFailed) {
    verdict.kind = VerdictKind::kError;
    verdict.reasons.push_back(fmt::format("could not start vmm: {}", observation.detail));
    return verdict;
  }

  if (const auto& hit = matcher.forbidden()) {
    verdict.reasons.push_back(fmt::format("forbidden pattern '{}' matched at line {}: {}",
                                          matcher.forbid_pattern(hit->pattern), hit->line,
                                          hit->text));
  }

  switch (observation.end) {
    case Observation::End::kExited:
      if (observation.status != spec.outcome.status) {
        verdict.reasons.push_back(
            fmt::format("expected {}, got {} (vmm exit status {})", spec.outcome.ToString(),
                        DescribeStatus(observation.status), observation.status));
      }
      break;
    case Observation::End::kSignaled:
      verdict.reasons.push_back(fmt::format("expected {}, but vmm died of signal {} ({})",
                                            spec.outcome.ToString(), observation.status,
                                            strsignal(observation.status)));
      break;
    case Observation::End::kWatchdog:
      verdict.reasons.push_back(fmt::format(
          "expected {}, but vmm was still running after {:.1f} s (its --timeout was {:g} s); "
          "killed by the suite watchdog",
          spec.outcome.ToString(), observation.watchdog_s, spec.timeout_s));
      break;
    case Observation::End::kStoppedEarly:
    case Observation::End::kSpawnFailed:
      break;
  }

  // Only the first unmatched pattern matters: later ones were never tried.
  // A run stopped early for a forbidden pattern is not blamed for patterns
  // it had no chance to print.
  if (!matcher.all_matched() && observation.end != Observation::End::kStoppedEarly) {
    size_t k = matcher.matched_count();
    std::string after = k == 0 ? std::string("")
                               : fmt::format(", after pattern {} matched at line {}", k,
                                             matcher.hits().back().line);
    verdict.reasons.push_back(
        fmt::format("expect pattern {} of {} '{}' never matched ({} serial "
                    "line{} read{})",
                    k + 1, matcher.expect_count(), matcher.pattern(k), matcher.line_count(),
                    matcher.line_count() == 1 ? "" : "s", after));
  }
  verdict.reasons.insert(verdict.reasons.end(), screen.begin(), screen.end());
  verdict.kind = verdict.reasons.empty() ? VerdictKind::kPass : VerdictKind::kFail;
  return verdict;
}

}  // namespace vmm::suite
