// init: the first process. It holds the root tokens (handles 2 control,
// 3 virtio-mmio window, 4 IRQ lines, 5 I/O ports), starts every service with
// only the tokens it needs, and supervises them: a service that faults is
// reported to init's supervisor endpoint by the kernel (label kLabelFault,
// badge = the service's index + 1); init logs it and restarts the service
// (at most kMaxRestarts times). With `vconsole=shell` on the command line
// (and virtio devices present) a second shell runs on the virtio console
// (shell started with argument 1).
#include "user/runtime.h"

namespace {

using namespace abi;
constexpr uint64_t kCtl = 2;
constexpr int kMaxRestarts = 3;

struct Give {
  uint64_t* handle;
  uint64_t rights;
};
struct Service {
  const char* name;
  uint8_t priority;
  Give gives[5];
  int restarts;
  uint64_t proc;
  uint64_t arg;  // kOpStart argument
};

uint64_t g_sup, g_ns, g_echo, g_shell_ctl, g_virtio, g_files;
uint64_t g_mmio = 3, g_irq = 4, g_ctl = kCtl;

// True when the command line has `key` (at the start of a word).
bool HasWord(const char* key) {
  char text[1024];
  const int64_t n = user::Invoke(kCtl, kOpCmdline, reinterpret_cast<uint64_t>(text), sizeof(text));
  const int64_t len = static_cast<int64_t>(user::StrLen(key));
  for (int64_t i = 0; i + len <= n; ++i) {
    if (i != 0 && text[i - 1] != ' ') continue;
    int64_t k = 0;
    while (k < len && text[i + k] == key[k]) ++k;
    if (k == len) return true;
  }
  return false;
}

bool Start(Service& s, uint64_t index) {
  const int64_t proc = user::Spawn(kCtl, s.name, s.priority);
  if (proc < 0) {
    user::Print("[init] cannot spawn {}: {}\n", s.name, proc);
    return false;
  }
  for (const Give& g : s.gives) {
    if (g.handle == nullptr) break;
    const int64_t h = user::Invoke(static_cast<uint64_t>(proc), kOpGive, *g.handle, g.rights);
    if (h < 0) user::Print("[init] cannot give {} a token: {}\n", s.name, h);
  }
  user::Invoke(static_cast<uint64_t>(proc), kOpSetSupervisor, g_sup, index + 1);
  user::Invoke(static_cast<uint64_t>(proc), kOpStart, s.arg);
  s.proc = static_cast<uint64_t>(proc);
  return true;
}

}  // namespace

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t pid, uint64_t, uint64_t given) {
  user::Print("[init] running in ring 3, pid {}, {} root tokens\n", pid, given);
  g_sup = static_cast<uint64_t>(user::Invoke(kCtl, kOpCreateEndpoint));
  g_ns = static_cast<uint64_t>(user::Invoke(kCtl, kOpCreateEndpoint));
  g_echo = static_cast<uint64_t>(user::Invoke(kCtl, kOpCreateEndpoint));
  // The shell's control token: no power over memory beyond DMA frames, no MMIO/IRQ.
  g_shell_ctl = static_cast<uint64_t>(user::Invoke(
      kCtl, kOpDerive,
      kRightTransfer | kRightDerive | kRightCtlCreate | kRightCtlSpawn | kRightCtlMemory |
          kRightCtlClock | kRightCtlPower | kRightCtlInfo | kRightCtlConsole));
  const uint64_t ep_server = kRightRecv | kRightSend | kRightDerive | kRightTransfer;
  const uint64_t ep_client = kRightSend | kRightTransfer;
  Service services[] = {
      {"namesvc", 150, {{&g_ns, ep_server}, {}, {}, {}, {}}, 0, 0, 0},
      {"echo", 140, {{&g_echo, ep_server}, {&g_ns, ep_client}, {}, {}, {}}, 0, 0, 0},
      {"shell", 90, {{&g_ns, ep_client}, {&g_shell_ctl, kRightsAll}, {}, {}, {}}, 0, 0, 0},
      // The virtio driver (user/virtio.cc) and the file service: started only
      // with devices present.
      {"virtio",
       120,
       {{&g_virtio, ep_server},
        {&g_ns, ep_client},
        {&g_mmio, kRightMap | kRightWrite | kRightDerive},
        {&g_irq, kRightMap | kRightDerive},
        {&g_ctl,
         kRightDerive | kRightCtlCreate | kRightCtlMemory | kRightCtlInfo | kRightCtlClock}},
       0,
       0,
       0},
      // The vmmfs file service (user/files.cc), a client of the driver.
      {"files",
       110,
       {{&g_files, ep_server},
        {&g_ns, ep_client},
        {&g_ctl, kRightDerive | kRightCtlMemory},
        {},
        {}},
       0,
       0,
       0},
      // `vconsole=shell`: the shell again, on the virtio console (argument 1).
      {"shell", 90, {{&g_ns, ep_client}, {&g_shell_ctl, kRightsAll}, {}, {}, {}}, 0, 0, 1},
  };
  const bool virtio = HasWord("virtio_mmio.device=");
  const bool vshell = virtio && HasWord("vconsole=shell");
  const uint64_t kCount = sizeof(services) / sizeof(services[0]) - (virtio ? (vshell ? 0 : 1) : 3);
  if (virtio) {
    g_virtio = static_cast<uint64_t>(user::Invoke(kCtl, kOpCreateEndpoint));
    g_files = static_cast<uint64_t>(user::Invoke(kCtl, kOpCreateEndpoint));
  }
  for (uint64_t i = 0; i < kCount; ++i) {
    if (Start(services[i], i))
      user::Print("[init] started {}{}\n", services[i].name,
                  services[i].arg == 1 ? " (virtio console)" : "");
  }
  user::Print("[init] user space ready\n");
  for (;;) {
    user::Msg m;
    if (user::Recv(g_sup, &m) < 0) continue;
    if (TagLabel(m.tag) != kLabelFault || m.badge == 0 || m.badge > kCount) continue;
    Service& s = services[m.badge - 1];
    user::Print("[init] {} (pid {}) faulted: exception {} at {:#x}, rip {:#x}\n", s.name, m.w[0],
                m.w[1], m.w[2], m.w[3]);
    user::Invoke(s.proc, kOpWait);
    user::Invoke(s.proc, kOpClose);
    if (++s.restarts > kMaxRestarts) {
      user::Print("[init] {} failed {} times, not restarting\n", s.name, s.restarts);
      continue;
    }
    if (Start(s, m.badge - 1))
      user::Print("[init] restarted {} ({} of {})\n", s.name, s.restarts, kMaxRestarts);
  }
}
