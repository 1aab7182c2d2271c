// Raw mode for the controlling terminal, restored on every exit path.
//
// One terminal at a time per process (the stdio console, or vmm attach).
// EnterRawMode saves the original termios in process-wide storage;
// RestoreTerminalState puts it back. Restore is idempotent and
// async-signal-safe (one atomic exchange and tcsetattr), so it runs from:
//   - atexit / at_quick_exit (normal end, exit() after a guest exit or error),
//   - handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE (termination) and
//     SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT (crash), installed by
//     InstallTerminalRestoreHandlers. Each handler restores the terminal,
//     then chains to the handler that was installed before it, or, if that
//     was the default action, re-raises the signal with the default action so
//     the exit status still says "killed by signal".
// A handler installed later (e.g. an asio::signal_set) replaces ours for
// that signal; its owner must then call RestoreTerminalState itself, which
// vmm's main does on its own exit paths. _exit() bypasses atexit: call
// RestoreTerminalState first.
#pragma once

#include <termios.h>

#include "base/error.h"

namespace vmm {

// QEMU's stdio raw mode: no echo, no line editing, no signals from the keys
// (Ctrl-C goes to the guest), 8-bit input, no CR/NL translation on input;
// output post-processing stays on so a guest's "\n" starts a new line.
void MakeRawTermios(struct termios& tio);

// Puts `fd` (a TTY) into raw mode and remembers its settings for restore.
// Fails if another terminal is already held in raw mode.
[[nodiscard]] base::Result<void> EnterRawMode(int fd);

// Restores the saved settings, if any. Idempotent, async-signal-safe.
void RestoreTerminalState();

// True while a terminal is held in raw mode.
bool TerminalIsRaw();

// Installs the atexit hook and the signal handlers described above. Safe to
// call again: a handler installed since the last call is wrapped (ours runs
// first, then chains to it).
void InstallTerminalRestoreHandlers();

}  // namespace vmm
