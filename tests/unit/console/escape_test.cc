#include "vmm/console/escape.h"

#include <gtest/gtest.h>

namespace vmm {
namespace {

using Action = EscapeFilter::Action;

TEST(EscapeFilter, OrdinaryBytesAreForwarded) {
  EscapeFilter f;
  EXPECT_EQ(f.Feed('a'), Action::kForward);
  EXPECT_EQ(f.Feed('x'), Action::kForward);   // x without the prefix is just x
  EXPECT_EQ(f.Feed(0x03), Action::kForward);  // Ctrl-C goes to the guest
}

TEST(EscapeFilter, CtrlAThenXQuits) {
  EscapeFilter f;
  EXPECT_EQ(f.Feed(kEscapeChar), Action::kSwallow);
  EXPECT_TRUE(f.pending_escape());
  EXPECT_EQ(f.Feed('x'), Action::kQuit);
  EXPECT_FALSE(f.pending_escape());
}

TEST(EscapeFilter, CtrlAThenHOrQuestionMarkShowsHelp) {
  EscapeFilter f;
  f.Feed(kEscapeChar);
  EXPECT_EQ(f.Feed('h'), Action::kHelp);
  f.Feed(kEscapeChar);
  EXPECT_EQ(f.Feed('?'), Action::kHelp);
}

TEST(EscapeFilter, DoubleCtrlASendsOneLiteralCtrlA) {
  EscapeFilter f;
  EXPECT_EQ(f.Feed(kEscapeChar), Action::kSwallow);
  EXPECT_EQ(f.Feed(kEscapeChar), Action::kForward);
  // The state is back to normal: the next byte is plain.
  EXPECT_EQ(f.Feed('x'), Action::kForward);
}

TEST(EscapeFilter, UnknownCommandIsSwallowedAndResets) {
  EscapeFilter f;
  f.Feed(kEscapeChar);
  EXPECT_EQ(f.Feed('q'), Action::kSwallow);
  EXPECT_EQ(f.Feed('q'), Action::kForward);
}

TEST(EscapeFilter, HelpTextsNameTheKeys) {
  EXPECT_NE(EscapeHelpText(false).find("C-a x"), std::string_view::npos);
  EXPECT_NE(EscapeHelpText(true).find("detach"), std::string_view::npos);
}

}  // namespace
}  // namespace vmm
