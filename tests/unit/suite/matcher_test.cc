#include "vmm/suite/matcher.h"

#include <gtest/gtest.h>

namespace vmm::suite {
namespace {

SerialMatcher Make(std::vector<std::string> expect, std::vector<std::string> forbid = {}) {
  base::Result<SerialMatcher> matcher = SerialMatcher::Create(expect, forbid);
  EXPECT_TRUE(matcher.has_value());
  return std::move(*matcher);
}

TEST(SerialMatcher, PatternSplitAcrossTwoReadsMatches) {
  SerialMatcher matcher = Make({"^vmm guest kernel 0\\.1 ready$"});

  matcher.Feed("[boot] entry\nvmm guest ker", 1.0);
  EXPECT_EQ(matcher.matched_count(), 0u);
  matcher.Feed("nel 0.1 ready\nmore\n", 2.5);

  ASSERT_TRUE(matcher.all_matched());
  EXPECT_EQ(matcher.hits()[0].line, 2u);
  EXPECT_DOUBLE_EQ(matcher.hits()[0].time_ms, 2.5);
}

TEST(SerialMatcher, OneByteAtATimeMatches) {
  SerialMatcher matcher = Make({"hello world", "bye"});
  std::string text = "hello world\nbye\n";

  for (char c : text) matcher.Feed(std::string_view(&c, 1), 0);

  EXPECT_TRUE(matcher.all_matched());
  EXPECT_EQ(matcher.line_count(), 2u);
}

TEST(SerialMatcher, AnsiEscapesAreIgnored) {
  SerialMatcher matcher = Make({"^ok: all green$", "^title done$"});

  matcher.Feed("\x1b[1;32mok: \x1b[0mall \x1b[", 0);  // CSI split across reads
  matcher.Feed("33mgreen\x1b[0m\n", 0);
  matcher.Feed("\x1b]0;window title\x07title \x1b(Bdone\x1b[K\n", 0);  // OSC, charset, EL

  EXPECT_TRUE(matcher.all_matched());
  EXPECT_EQ(matcher.tail()[0], "ok: all green");
  EXPECT_EQ(matcher.tail()[1], "title done");
}

TEST(SerialMatcher, CrlfLineEndsAreNormalized) {
  SerialMatcher matcher = Make({"^first$", "^second$"});

  matcher.Feed("first\r", 0);
  matcher.Feed("\nsecond\r\n", 0);

  EXPECT_TRUE(matcher.all_matched());
  EXPECT_EQ(matcher.line_count(), 2u);
  EXPECT_EQ(matcher.tail()[1], "second");
}

TEST(SerialMatcher, PatternsMatchInOrderOnly) {
  SerialMatcher matcher = Make({"second", "first"});

  matcher.Feed("first\nsecond\n", 0);

  EXPECT_EQ(matcher.matched_count(), 1u);
  EXPECT_FALSE(matcher.all_matched());
}

TEST(SerialMatcher, SeveralPatternsMayMatchOneLineInOrder) {
  SerialMatcher matcher = Make({"a", "b", "a"});

  matcher.Feed("a b\n", 0);
  EXPECT_EQ(matcher.matched_count(), 2u);  // the second "a" must come after "b"
  matcher.Feed("a\n", 0);

  EXPECT_TRUE(matcher.all_matched());
  EXPECT_EQ(matcher.hits()[1].line, 1u);
  EXPECT_EQ(matcher.hits()[2].line, 2u);
}

TEST(SerialMatcher, UnterminatedLastLineMatchesAtFinish) {
  SerialMatcher matcher = Make({"^shell> $"});

  matcher.Feed("boot\nshell> ", 0);
  EXPECT_FALSE(matcher.all_matched());
  matcher.Finish(9);

  EXPECT_TRUE(matcher.all_matched());
  EXPECT_EQ(matcher.hits()[0].line, 2u);
}

TEST(SerialMatcher, PromptWithoutNewlineIsSeenAsPartialLine) {
  SerialMatcher matcher = Make({"^vmm> $"});

  matcher.Feed("[shell] ready\nvmm> ", 0);

  EXPECT_TRUE(matcher.NextMatchesPartialLine());
  EXPECT_EQ(matcher.matched_count(), 0u);  // not consumed
}

TEST(SerialMatcher, ForbiddenPatternReportsLineAndText) {
  SerialMatcher matcher = Make({"never"}, {"panic|BUG|Oops"});

  matcher.Feed("fine\nstill fine\n[panic] BUG at x\n", 0);

  ASSERT_TRUE(matcher.forbidden().has_value());
  EXPECT_EQ(matcher.forbidden()->line, 3u);
  EXPECT_EQ(matcher.forbidden()->text, "[panic] BUG at x");
  EXPECT_EQ(matcher.forbid_pattern(matcher.forbidden()->pattern), "panic|BUG|Oops");
}

TEST(SerialMatcher, TailKeepsTheLastFortyLines) {
  SerialMatcher matcher = Make({});

  for (int i = 1; i <= 100; ++i) matcher.Feed("line " + std::to_string(i) + "\n", 0);

  ASSERT_EQ(matcher.tail().size(), SerialMatcher::kTailLines);
  EXPECT_EQ(matcher.tail().front(), "line 61");
  EXPECT_EQ(matcher.tail().back(), "line 100");
  EXPECT_EQ(matcher.line_count(), 100u);
}

TEST(SerialMatcher, ControlBytesAreDroppedTabsKept) {
  SerialMatcher matcher = Make({"^a\tb$"});

  matcher.Feed(std::string("a\t\0\x7f\bb\n", 7), 0);

  EXPECT_TRUE(matcher.all_matched());
}

TEST(SerialMatcher, EndlessLineIsCutAtMaxLine) {
  SerialMatcher matcher = Make({"^x+$", "^tail$"});

  matcher.Feed(std::string(SerialMatcher::kMaxLine * 2 + 10, 'x'), 0);
  matcher.Feed("\ntail\n", 0);

  EXPECT_EQ(matcher.line_count(), 4u);
  EXPECT_EQ(matcher.tail()[0].size(), SerialMatcher::kMaxLine);
  EXPECT_EQ(matcher.tail()[2].size(), 10u);
  EXPECT_TRUE(matcher.all_matched());
}

TEST(SerialMatcher, EmptyPatternListIsAllMatched) {
  SerialMatcher matcher = Make({});
  EXPECT_TRUE(matcher.all_matched());
}

TEST(SerialMatcher, BadRegexIsAnError) {
  EXPECT_FALSE(SerialMatcher::Create({"(unclosed"}, {}).has_value());
  EXPECT_FALSE(CheckPattern("[z-a]").has_value());
  EXPECT_TRUE(CheckPattern("\\d+ MiB").has_value());
}

TEST(AnsiStripper, OscEndedByStringTerminatorIsRemoved) {
  AnsiStripper stripper;
  EXPECT_EQ(stripper.Feed("a\x1b]2;t\x1b"), "a");
  EXPECT_EQ(stripper.Feed("\\b"), "b");
}

// Found by the suite_case fuzz target (docs/security.md, "Fuzzing"): a
// 20-digit count overflowed inside libstdc++'s regex compiler (undefined
// behaviour), and nested counts made a pattern of a few bytes compile to
// millions of states.
TEST(CheckPattern, HugeRepetitionCountIsRefusedBeforeStdRegexReadsIt) {
  const std::string pattern = "x{0" + std::string(100, '2') + ",2}";
  base::Result<void> checked = CheckPattern(pattern);
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().kind(), base::ErrorKind::kConfig);
  EXPECT_NE(checked.error().message().find("repetition count over 100000 is above 1000"),
            std::string::npos)
      << checked.error().message();
  // Unclosed, it is still read as a count by libstdc++: refused the same way.
  EXPECT_FALSE(CheckPattern("a{99999999999999999999").has_value());
}

TEST(CheckPattern, NestedRepetitionsMultiplyingPastTheLimitAreRefused) {
  base::Result<void> checked = CheckPattern("((a{1000}){1000}){1000}");
  ASSERT_FALSE(checked.has_value());
  EXPECT_NE(checked.error().message().find("multiply to more than 100000"), std::string::npos)
      << checked.error().message();
}

TEST(CheckPattern, OrdinaryRepetitionsAndLiteralBracesPass) {
  EXPECT_TRUE(CheckPattern("^[0-9]{1,3}\\.[0-9]{2}$").has_value());
  EXPECT_TRUE(CheckPattern("a{1000}").has_value());
  EXPECT_TRUE(CheckPattern("[{]99999999999").has_value());     // '{' in a class is a literal
  EXPECT_TRUE(CheckPattern("\\{99999999999\\}").has_value());  // so is an escaped one
}

}  // namespace
}  // namespace vmm::suite
