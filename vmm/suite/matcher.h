// Streaming matcher for a guest's serial output.
//
// Bytes arrive in arbitrary chunks from the vmm child's stdout. The matcher
// cleans them (drops ANSI escape sequences, CR of CRLF and other control
// bytes, keeping TAB), splits lines, and tests each complete line against the
// forbidden patterns and then the next expected pattern (in order; several
// expected patterns may match one after another on the same line). The last
// unterminated line is tested at Finish(). Line numbers are 1-based. A line
// longer than kMaxLine bytes is cut there.
//
// Patterns are ECMAScript regular expressions (std::regex), searched anywhere
// in a line. Owned and called by one runner job on the runner's thread.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vmm::suite {

// Compiles `pattern` as the matcher would; kConfig with the regex error on failure.
[[nodiscard]] base::Result<void> CheckPattern(const std::string& pattern);

// Removes ANSI escape sequences and control bytes from a stream, statefully,
// so an escape sequence split across two reads is still removed. '\n' and
// '\t' pass; '\r' is dropped (CRLF becomes LF).
class AnsiStripper {
 public:
  std::string Feed(std::string_view bytes);

 private:
  enum class State { kText, kEscape, kCsi, kString, kStringEscape };
  State state_ = State::kText;
};

class SerialMatcher {
 public:
  struct ExpectHit {
    size_t line = 0;     // 1-based line number
    double time_ms = 0;  // time passed to Feed() when the line completed
  };
  struct ForbidHit {
    size_t pattern = 0;  // index into forbid
    size_t line = 0;
    std::string text;  // the cleaned line
  };

  static constexpr size_t kTailLines = 40;
  // Longer lines are cut into pieces of this size, each counted as a line.
  static constexpr size_t kMaxLine = 4096;

  // Patterns must already be valid (see CheckPattern); an invalid one is an Error.
  [[nodiscard]] static base::Result<SerialMatcher> Create(const std::vector<std::string>& expect,
                                                          const std::vector<std::string>& forbid);

  // Feeds raw serial bytes observed at `time_ms` (since the child started).
  void Feed(std::string_view bytes, double time_ms);
  // End of stream: tests the last, unterminated line.
  void Finish(double time_ms);

  size_t expect_count() const { return expect_.size(); }
  size_t matched_count() const { return hits_.size(); }
  bool all_matched() const { return hits_.size() == expect_.size(); }
  const std::string& pattern(size_t index) const { return expect_[index].source; }
  const std::string& forbid_pattern(size_t index) const { return forbid_[index].source; }
  const std::vector<ExpectHit>& hits() const { return hits_; }
  const std::optional<ForbidHit>& forbidden() const { return forbidden_; }
  size_t line_count() const { return lines_; }
  // The last kTailLines cleaned lines, including a final unterminated one
  // (after Finish()).
  const std::deque<std::string>& tail() const { return tail_; }
  // True when the next expected pattern matches the unterminated line so far
  // (a prompt without a newline); nothing is consumed.
  bool NextMatchesPartialLine() const;
  // The unterminated line so far (cleaned).
  const std::string& partial_line() const { return line_; }

 private:
  struct Pattern {
    std::string source;
    std::regex regex;
  };

  SerialMatcher() = default;
  void EndLine(double time_ms);

  std::vector<Pattern> expect_;
  std::vector<Pattern> forbid_;
  AnsiStripper stripper_;
  std::string line_;
  size_t lines_ = 0;
  std::vector<ExpectHit> hits_;
  std::optional<ForbidHit> forbidden_;
  std::deque<std::string> tail_;
  bool finished_ = false;
};

}  // namespace vmm::suite
