#include "base/error.h"

#include <cstring>

namespace base {

std::string Error::ToString() const {
  if (sys_errno_ == 0) return message_;
  return fmt::format("{}: {}", message_, std::strerror(sys_errno_));
}

Error& Error::WithContext(std::string_view context) {
  message_ = fmt::format("{}: {}", context, message_);
  return *this;
}

}  // namespace base
