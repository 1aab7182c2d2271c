// The console escape prefix, as QEMU's: Ctrl-A, then a command key.
//
//   Ctrl-A x       quit (vmm: stop the VM; vmm attach: detach, guest keeps running)
//   Ctrl-A h or ?  print the help text on stderr
//   Ctrl-A Ctrl-A  send one literal Ctrl-A to the guest
//   Ctrl-A other   the pair is swallowed (QEMU does the same)
//
// Used on terminal input only (stdio with a TTY, vmm attach). Plain state
// machine, no I/O; owned and called by one thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace vmm {

inline constexpr uint8_t kEscapeChar = 0x01;  // Ctrl-A

class EscapeFilter {
 public:
  enum class Action {
    kForward,  // send the fed byte to the guest
    kSwallow,  // nothing to do (escape prefix, or an unknown command)
    kQuit,     // Ctrl-A x
    kHelp,     // Ctrl-A h
  };

  Action Feed(uint8_t byte);

  bool pending_escape() const { return got_escape_; }

 private:
  bool got_escape_ = false;
};

// Help text for Ctrl-A h (`attach`: for vmm attach, where x detaches).
// Lines end in \r\n because the terminal is in raw mode.
std::string_view EscapeHelpText(bool attach);

}  // namespace vmm
