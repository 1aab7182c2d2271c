#include "vmm/suite/verdict.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace vmm::suite {
namespace {

CaseSpec Spec(std::string outcome, std::vector<std::string> expect = {}) {
  CaseSpec spec;
  spec.name = "c";
  spec.kernel = "/k";
  spec.timeout_s = 2;
  spec.outcome = ParseOutcome(outcome).value();
  spec.expect = std::move(expect);
  return spec;
}

SerialMatcher Matched(const CaseSpec& spec, std::string_view serial) {
  SerialMatcher matcher = SerialMatcher::Create(spec.expect, {"panic"}).value();
  matcher.Feed(serial, 1);
  matcher.Finish(2);
  return matcher;
}

Observation Exited(int status) { return Observation{Observation::End::kExited, status, 7, ""}; }

TEST(Verdict, ExpectedExitAndAllPatternsPass) {
  CaseSpec spec = Spec("exit:3", {"ready"});
  Verdict verdict = Decide(spec, Exited(3), Matched(spec, "ready\n"));
  EXPECT_EQ(verdict.kind, VerdictKind::kPass);
  EXPECT_TRUE(verdict.reasons.empty());
  EXPECT_EQ(verdict.exit_text, "exit:3");
}

TEST(Verdict, WrongExitFails) {
  CaseSpec spec = Spec("exit:0", {"ready"});
  Verdict verdict = Decide(spec, Exited(80), Matched(spec, "ready\n"));
  EXPECT_EQ(verdict.kind, VerdictKind::kFail);
  EXPECT_EQ(verdict.Summary(), "expected exit:0, got triple-fault (vmm exit status 80)");
}

TEST(Verdict, TripleFaultTimeoutAndSetupErrorPassWhenExpected) {
  for (auto [outcome, status] : {std::pair{"triple-fault", 80},
                                 {"timeout", 82},
                                 {"setup-error:65", 65},
                                 {"setup-error:66", 66}}) {
    CaseSpec spec = Spec(outcome);
    EXPECT_TRUE(Decide(spec, Exited(status), Matched(spec, "")).passed()) << outcome;
  }
}

TEST(Verdict, TimeoutExpectedButGuestExitedFails) {
  CaseSpec spec = Spec("timeout");
  Verdict verdict = Decide(spec, Exited(0), Matched(spec, ""));
  EXPECT_EQ(verdict.Summary(), "expected timeout, got exit:0 (vmm exit status 0)");
}

TEST(Verdict, UnmatchedPatternNamesItsIndexAndText) {
  CaseSpec spec = Spec("exit:0", {"one", "two", "three"});
  Verdict verdict = Decide(spec, Exited(0), Matched(spec, "one\nzwei\n"));
  EXPECT_EQ(verdict.kind, VerdictKind::kFail);
  EXPECT_EQ(verdict.Summary(),
            "expect pattern 2 of 3 'two' never matched (2 serial lines read, after pattern 1 "
            "matched at line 1)");
}

TEST(Verdict, WrongExitAndUnmatchedPatternAreBothReported) {
  CaseSpec spec = Spec("exit:0", {"ready"});
  Verdict verdict = Decide(spec, Exited(46), Matched(spec, "boot\n"));
  ASSERT_EQ(verdict.reasons.size(), 2u);
  EXPECT_EQ(verdict.reasons[0], "expected exit:0, got exit:46 (vmm exit status 46)");
  EXPECT_EQ(verdict.reasons[1], "expect pattern 1 of 1 'ready' never matched (1 serial line read)");
}

TEST(Verdict, ForbiddenPatternFailsEvenWithGoodExit) {
  CaseSpec spec = Spec("exit:0");
  Verdict verdict = Decide(spec, Exited(0), Matched(spec, "ok\nkernel panic now\n"));
  EXPECT_EQ(verdict.Summary(), "forbidden pattern 'panic' matched at line 2: kernel panic now");
}

TEST(Verdict, StoppedEarlyBlamesOnlyTheForbiddenPattern) {
  CaseSpec spec = Spec("exit:0", {"ready"});
  Observation stopped{Observation::End::kStoppedEarly, 0, 7, ""};
  Verdict verdict = Decide(spec, stopped, Matched(spec, "panic\n"));
  ASSERT_EQ(verdict.reasons.size(), 1u);
  EXPECT_TRUE(verdict.reasons[0].starts_with("forbidden pattern 'panic'"));
  EXPECT_EQ(verdict.exit_text, "stopped");
}

TEST(Verdict, WatchdogKillFailsEvenWhenTimeoutExpected) {
  CaseSpec spec = Spec("timeout");
  Observation hung{Observation::End::kWatchdog, 0, 7, ""};
  Verdict verdict = Decide(spec, hung, Matched(spec, ""));
  EXPECT_EQ(verdict.kind, VerdictKind::kFail);
  EXPECT_EQ(verdict.Summary(),
            "expected timeout, but vmm was still running after 7.0 s (its --timeout was 2 s); "
            "killed by the suite watchdog");
  EXPECT_EQ(verdict.exit_text, "hung");
}

TEST(Verdict, VmmCrashFails) {
  CaseSpec spec = Spec("exit:0");
  Observation crashed{Observation::End::kSignaled, SIGSEGV, 7, ""};
  Verdict verdict = Decide(spec, crashed, Matched(spec, ""));
  EXPECT_EQ(verdict.kind, VerdictKind::kFail);
  EXPECT_TRUE(verdict.Summary().starts_with("expected exit:0, but vmm died of signal 11"));
  EXPECT_EQ(verdict.exit_text, "signal:11");
}

TEST(Verdict, SpawnFailureIsAnError) {
  CaseSpec spec = Spec("exit:0", {"x"});
  Observation failed{Observation::End::kSpawnFailed, 0, 7, "/no/vmm: No such file"};
  Verdict verdict = Decide(spec, failed, Matched(spec, ""));
  EXPECT_EQ(verdict.kind, VerdictKind::kError);
  EXPECT_EQ(verdict.Summary(), "could not start vmm: /no/vmm: No such file");
}

TEST(Verdict, ScreenFailuresFailTheRunAfterTheOtherReasons) {
  CaseSpec spec = Spec("exit:0", {"ready"});
  std::vector<std::string> screen = {
      "screen: probe 1 of 1: pixel (1, 2) is #000000, expected "
      "#ff0000"};
  Verdict verdict = Decide(spec, Exited(3), Matched(spec, "ready\n"), screen);
  EXPECT_EQ(verdict.kind, VerdictKind::kFail);
  ASSERT_EQ(verdict.reasons.size(), 2u);
  EXPECT_EQ(verdict.reasons[0], "expected exit:0, got exit:3 (vmm exit status 3)");
  EXPECT_EQ(verdict.reasons[1], screen[0]);
  EXPECT_TRUE(Decide(spec, Exited(0), Matched(spec, "ready\n"), {}).passed());
}

}  // namespace
}  // namespace vmm::suite
