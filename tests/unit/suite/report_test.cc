#include "vmm/suite/report.h"

#include <gtest/gtest.h>

#include "vmm/suite/boot_trace.h"

namespace vmm::suite {
namespace {

// Issue 16: a guest that loops on port 0x80 must not make the suite keep
// every event. The first occurrence of each name (what the table and
// Find() use) survives, and so does the exit.
TEST(BootTrace, EventsAreCappedButFirstOccurrencesKept) {
  BootTraceParser parser;
  std::string chunk;
  for (int i = 0; i < 100000; ++i) {
    chunk += fmt::format("boot-trace: phase-0x{:02x} {}.000 ms\n", i % 3 == 0 ? 0x40 : 0x10, i);
    if (i == 50000) chunk += "boot-trace: phase-0x41 50000.500 ms\n";
  }
  chunk += "boot-trace: exit 100001.000 ms\n";
  parser.Feed(chunk);
  parser.Finish();
  EXPECT_LE(parser.events().size(), BootTraceParser::kMaxEvents + BootTraceParser::kMaxLateNames);
  EXPECT_EQ(parser.Find("phase-0x40"), 0.0);
  EXPECT_EQ(parser.Find("phase-0x41"), 50000.5);
  EXPECT_EQ(parser.Find("exit"), 100001.0);
  EXPECT_EQ(parser.dropped(), 100002u - parser.events().size());  // 100000 + 0x41 + exit
}

TEST(BootTrace, TraceLinesParse) {
  std::optional<BootEvent> event = ParseBootTraceLine("boot-trace: phase-0x40 2.500 ms");
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->name, "phase-0x40");
  EXPECT_DOUBLE_EQ(event->ms, 2.5);
  EXPECT_TRUE(ParseBootTraceLine("[info] boot-trace: exit 5.020 ms").has_value());
}

TEST(BootTrace, OtherLinesAreIgnored) {
  EXPECT_FALSE(ParseBootTraceLine("vmm: guest triple-faulted").has_value());
  EXPECT_FALSE(ParseBootTraceLine("boot-trace: exit 5.020").has_value());
  EXPECT_FALSE(ParseBootTraceLine("boot-trace: exit abc ms").has_value());
  EXPECT_FALSE(ParseBootTraceLine("boot-trace: two words 1.0 ms").has_value());
  EXPECT_FALSE(ParseBootTraceLine("boot-trace:  1.0 ms").has_value());
}

TEST(BootTrace, ParserHandlesLinesSplitAcrossReads) {
  BootTraceParser parser;
  parser.Feed("noise\nboot-trace: vm-cre");
  parser.Feed("ated 1.234 ms\nboot-trace: first-run 2.001 ms");
  parser.Finish();

  ASSERT_EQ(parser.events().size(), 2u);
  EXPECT_EQ(parser.events()[0].name, "vm-created");
  EXPECT_DOUBLE_EQ(parser.Find("first-run").value(), 2.001);
  EXPECT_FALSE(parser.Find("exit").has_value());
}

TEST(Report, PercentileIsNearestRank) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);
  EXPECT_DOUBLE_EQ(Percentile(values, 50), 50);
  EXPECT_DOUBLE_EQ(Percentile(values, 95), 95);
  EXPECT_DOUBLE_EQ(Percentile({7}, 95), 7);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
  EXPECT_DOUBLE_EQ(Percentile({1, 2}, 50), 1);
}

TEST(Report, XmlEscapeMakesAnyBytesValidXmlText) {
  EXPECT_EQ(XmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(XmlEscape("\x1b[31mred\x1b[0m\r\n"), "[31mred[0m&#13;\n");
  EXPECT_EQ(XmlEscape("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(XmlEscape("bad \xff\xc3"), "bad \xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(XmlEscape("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
}

class JUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaseEntry good;
    good.file = "/cases/good.json";
    good.name = "good";
    good.spec = CaseSpec{};
    good.spec->name = "good";
    CaseEntry bad = good;
    bad.file = "/cases/bad.json";
    bad.name = "bad";
    bad.spec->name = "bad";
    CaseEntry broken;
    broken.file = "/cases/broken.json";
    broken.name = "broken";
    broken.error = "/cases/broken.json: field 'cpus': must be an integer";
    cases_ = {good, bad, broken};

    RunRecord pass;
    pass.case_index = 0;
    pass.run = 1;
    pass.wall_ms = 1500;
    pass.serial_tail = {"hello \x1b[1m<world>\x1b[0m"};
    pass.verdict.exit_text = "exit:0";
    RunRecord fail;
    fail.case_index = 1;
    fail.run = 1;
    fail.verdict.kind = VerdictKind::kFail;
    fail.verdict.reasons = {"expect pattern 1 of 1 'a&b' never matched"};
    fail.verdict.exit_text = "exit:0";
    RunRecord error;
    error.case_index = 2;
    error.verdict.kind = VerdictKind::kError;
    error.verdict.reasons = {broken.error};
    records_ = {pass, fail, error};
  }

  std::vector<CaseEntry> cases_;
  std::vector<RunRecord> records_;
};

TEST_F(JUnitTest, CountsAndElementsMatchTheRuns) {
  std::string xml = JUnitXml(cases_, records_, 1, 2.5, "2026-11-22T04:00:00");

  EXPECT_TRUE(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
  EXPECT_NE(xml.find("tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"0\" time=\"2.500\" "
                     "timestamp=\"2026-11-22T04:00:00\""),
            std::string::npos);
  EXPECT_NE(xml.find("<testcase name=\"good\" classname=\"boot\" time=\"1.500\""),
            std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"expect pattern 1 of 1 &apos;a&amp;b&apos; never "
                     "matched\" type=\"exit:0\">"),
            std::string::npos);
  EXPECT_NE(xml.find("<error message=\"/cases/broken.json: field &apos;cpus&apos;"),
            std::string::npos);
  EXPECT_NE(xml.find("<system-out>hello [1m&lt;world&gt;[0m\n</system-out>"), std::string::npos);
  EXPECT_EQ(xml.find('\x1b'), std::string::npos);
  EXPECT_TRUE(xml.ends_with("</testsuite>\n</testsuites>\n"));
}

TEST_F(JUnitTest, RepeatedRunsAreNamedByRun) {
  records_[0].run = 2;
  std::string xml = JUnitXml(cases_, records_, 5, 1, "t");
  EXPECT_NE(xml.find("<testcase name=\"good#2\""), std::string::npos);
}

TEST_F(JUnitTest, FailureReportShowsWhyTailAndArtifacts) {
  records_[1].serial_tail = {"line 1", "line 2"};
  records_[1].serial_lines = 2;
  records_[1].stderr_text = "vmm: RIP=0x1234\n";
  records_[1].artifact_dir = "/out/bad";
  records_[1].command = {"/bin/vmm", "--cmdline", "a b"};

  std::string text = FormatFailure(cases_[1], records_[1], 1);

  EXPECT_NE(text.find("why:       expect pattern 1 of 1 'a&b' never matched"), std::string::npos);
  EXPECT_NE(text.find("command:   /bin/vmm --cmdline 'a b'"), std::string::npos);
  EXPECT_NE(text.find("serial (last 2 of 2 lines):\n  | line 1\n  | line 2\n"), std::string::npos);
  EXPECT_NE(text.find("  ! vmm: RIP=0x1234\n"), std::string::npos);
  EXPECT_NE(text.find("artifacts: /out/bad\n"), std::string::npos);
  EXPECT_EQ(text.find("screen:    "), std::string::npos);
}

TEST_F(JUnitTest, FailureReportAndTimingsNameTheScreenImages) {
  records_[1].verdict.reasons = {"screen: probe 1 of 1: pixel (1, 2) is #000000, expected #ff0000"};
  records_[1].artifact_dir = "/out/bad";
  records_[1].screen_images = {"screen.png", "screen-diff.png"};

  std::string text = FormatFailure(cases_[1], records_[1], 1);
  nlohmann::json timings = TimingsJson(cases_[1], records_[1]);
  std::string xml = JUnitXml(cases_, records_, 1, 1, "t");

  EXPECT_NE(
      text.find("why:       screen: probe 1 of 1: pixel (1, 2) is #000000, expected #ff0000\n"),
      std::string::npos);
  EXPECT_NE(text.find("screen:    /out/bad/screen.png, /out/bad/screen-diff.png\nartifacts: "),
            std::string::npos);
  EXPECT_EQ(timings["screen_images"], (nlohmann::json{"screen.png", "screen-diff.png"}));
  EXPECT_EQ(timings["reasons"][0], records_[1].verdict.reasons[0]);
  EXPECT_NE(xml.find("<failure message=\"screen: probe 1 of 1: pixel (1, 2) is #000000, expected "
                     "#ff0000\""),
            std::string::npos);
}

TEST_F(JUnitTest, TableHasPhaseColumnsAndRepeatStatistics) {
  records_[0].trace = {{"vm-created", 1.0}, {"phase-0x40", 2.0}};
  std::string table = FormatTable(cases_, records_, 1);
  EXPECT_NE(table.find("entry(0x40)"), std::string::npos);
  EXPECT_NE(table.find("vm-created"), std::string::npos);

  std::string repeated = FormatTable(cases_, records_, 3);
  EXPECT_NE(repeated.find("pass rate"), std::string::npos);
  EXPECT_NE(repeated.find("100.0%"), std::string::npos);
  EXPECT_NE(repeated.find("0.0%"), std::string::npos);
}

}  // namespace
}  // namespace vmm::suite
