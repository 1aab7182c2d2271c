#include "vmm/suite/matcher.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <utility>

namespace vmm::suite {
namespace {

constexpr char kEsc = 0x1b;
constexpr char kBel = 0x07;
constexpr auto kSyntax = std::regex::ECMAScript | std::regex::optimize;

// Bounded repetition. std::regex copies a sub-pattern once per count of a
// `{m}` / `{m,n}` quantifier, so nested counts multiply its size
// (`((a{1000}){1000}){1000}` is 10^9 states), and libstdc++ 12 reads the
// count into a signed long without an overflow check (undefined behaviour
// for 20 digits; the suite_case fuzz target found it, docs/security.md). A
// case file is user input: the counts are checked before std::regex sees
// them. The product of all counts in a pattern bounds any nesting of them.
constexpr uint64_t kMaxRepeatCount = 1000;
constexpr uint64_t kMaxRepeatProduct = 100000;

base::Result<void> CheckRepeatCounts(const std::string& pattern) {
  uint64_t product = 1;
  bool in_class = false;  // inside [...], where '{' is a literal
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;  // an escaped character is a literal
      continue;
    }
    if (in_class) {
      in_class = c != ']';
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;  // "[]...]"
      continue;
    }
    if (c != '{') continue;
    // {m}, {m,} or {m,n}: the largest count given, read with saturation
    // (anything above the limit is refused, so its exact value is moot).
    size_t j = i + 1;
    uint64_t largest = 0;
    uint64_t number = 0;
    while (j < pattern.size() &&
           (std::isdigit(static_cast<unsigned char>(pattern[j])) || pattern[j] == ',')) {
      if (pattern[j] == ',') {
        largest = std::max(largest, number);
        number = 0;
      } else {
        number = std::min<uint64_t>(number * 10 + static_cast<uint64_t>(pattern[j] - '0'),
                                    kMaxRepeatProduct + 1);
      }
      ++j;
    }
    largest = std::max(largest, number);
    if (j == i + 1) continue;  // "{" without a count: std::regex judges it
    // Checked even without the closing '}': libstdc++ reads the digits first.
    if (largest > kMaxRepeatCount) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "bad regular expression '{}': repetition count {}{} is above {}",
                             pattern, largest > kMaxRepeatProduct ? "over " : "",
                             std::min(largest, kMaxRepeatProduct), kMaxRepeatCount);
    }
    if (j >= pattern.size() || pattern[j] != '}') continue;  // not a quantifier
    product *= std::max<uint64_t>(largest, 1);
    if (product > kMaxRepeatProduct) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "bad regular expression '{}': its repetition counts multiply to "
                             "more than {}",
                             pattern, kMaxRepeatProduct);
    }
    i = j;
  }
  return {};
}

// std::regex reports bad patterns only by exception; this is the one place
// they can arise, and they become an Error right here.
base::Result<std::regex> Compile(const std::string& pattern) {
  TRY(CheckRepeatCounts(pattern));
  try {
    return std::regex(pattern, kSyntax);
  } catch (const std::regex_error& e) {
    return base::MakeError(base::ErrorKind::kConfig, "bad regular expression '{}': {}", pattern,
                           e.what());
  }
}

}  // namespace

base::Result<void> CheckPattern(const std::string& pattern) {
  TRY(Compile(pattern));
  return {};
}

// ECMA-48 §5.3/§5.4: ESC [ params intermediates final (0x40..0x7e) is a CSI
// sequence; ESC ] / P / X / ^ / _ open a control string ended by BEL or
// ESC \; other escapes are ESC, intermediates (0x20..0x2f), a final byte.
std::string AnsiStripper::Feed(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    switch (state_) {
      case State::kText:
        if (c == kEsc) {
          state_ = State::kEscape;
        } else if (c == '\n' || c == '\t' || (u >= 0x20 && u != 0x7f)) {
          out.push_back(c);
        }
        break;
      case State::kEscape:
        if (c == '[') {
          state_ = State::kCsi;
        } else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
          state_ = State::kString;
        } else if (u >= 0x20 && u <= 0x2f) {
          // intermediate byte: stay
        } else if (c == '\n') {
          out.push_back(c);
          state_ = State::kText;
        } else {
          state_ = State::kText;
        }
        break;
      case State::kCsi:
        if (u >= 0x40 && u <= 0x7e) {
          state_ = State::kText;
        } else if (c == '\n') {
          out.push_back(c);
          state_ = State::kText;
        }
        break;
      case State::kString:
        if (c == kBel) {
          state_ = State::kText;
        } else if (c == kEsc) {
          state_ = State::kStringEscape;
        }
        break;
      case State::kStringEscape:
        state_ = c == '\\' ? State::kText : State::kString;
        break;
    }
  }
  return out;
}

base::Result<SerialMatcher> SerialMatcher::Create(const std::vector<std::string>& expect,
                                                  const std::vector<std::string>& forbid) {
  SerialMatcher matcher;
  for (const std::string& source : expect) {
    matcher.expect_.push_back(Pattern{source, TRY(Compile(source))});
  }
  for (const std::string& source : forbid) {
    matcher.forbid_.push_back(Pattern{source, TRY(Compile(source))});
  }
  return matcher;
}

void SerialMatcher::Feed(std::string_view bytes, double time_ms) {
  if (finished_) return;
  std::string clean = stripper_.Feed(bytes);
  size_t start = 0;
  while (start < clean.size()) {
    size_t newline = clean.find('\n', start);
    if (newline == std::string::npos) {
      line_.append(clean, start, std::string::npos);
      // A guest that never ends its line must not grow this without bound
      // (nor feed std::regex, which recurses per character, a huge line).
      while (line_.size() >= kMaxLine) {
        std::string rest = line_.substr(kMaxLine);
        line_.resize(kMaxLine);
        EndLine(time_ms);
        line_ = std::move(rest);
      }
      break;
    }
    line_.append(clean, start, newline - start);
    EndLine(time_ms);
    start = newline + 1;
  }
}

bool SerialMatcher::NextMatchesPartialLine() const {
  if (all_matched() || line_.empty()) return false;
  return std::regex_search(line_, expect_[hits_.size()].regex);
}

void SerialMatcher::Finish(double time_ms) {
  if (finished_) return;
  if (!line_.empty()) EndLine(time_ms);
  finished_ = true;
}

void SerialMatcher::EndLine(double time_ms) {
  ++lines_;
  if (!forbidden_) {
    for (size_t i = 0; i < forbid_.size(); ++i) {
      if (std::regex_search(line_, forbid_[i].regex)) {
        forbidden_ = ForbidHit{i, lines_, line_};
        break;
      }
    }
  }
  // Expected patterns match in order; each later one searches after the end
  // of the previous match on the same line.
  auto from = line_.cbegin();
  while (hits_.size() < expect_.size()) {
    std::smatch match;
    if (!std::regex_search(from, line_.cend(), match, expect_[hits_.size()].regex)) break;
    hits_.push_back(ExpectHit{lines_, time_ms});
    from = match[0].second;
    if (match[0].length() == 0 && from == line_.cend()) {
      // An empty match at the end of a line: the rest can only match empty too.
      continue;
    }
  }
  tail_.push_back(std::move(line_));
  if (tail_.size() > kTailLines) tail_.pop_front();
  line_.clear();
}

}  // namespace vmm::suite
