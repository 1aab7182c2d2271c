#include "vmm/console/escape.h"

namespace vmm {

EscapeFilter::Action EscapeFilter::Feed(uint8_t byte) {
  if (got_escape_) {
    got_escape_ = false;
    switch (byte) {
      case kEscapeChar:
        return Action::kForward;
      case 'x':
      case 'X':
        return Action::kQuit;
      case 'h':
      case 'H':
      case '?':
        return Action::kHelp;
      default:
        return Action::kSwallow;
    }
  }
  if (byte == kEscapeChar) {
    got_escape_ = true;
    return Action::kSwallow;
  }
  return Action::kForward;
}

std::string_view EscapeHelpText(bool attach) {
  if (attach) {
    return "\r\nvmm attach escape keys:\r\n"
           "  C-a x    detach (the guest keeps running)\r\n"
           "  C-a h    this help\r\n"
           "  C-a C-a  send C-a to the guest\r\n";
  }
  return "\r\nvmm console escape keys:\r\n"
         "  C-a x    exit vmm (stops the guest)\r\n"
         "  C-a h    this help\r\n"
         "  C-a C-a  send C-a to the guest\r\n";
}

}  // namespace vmm
