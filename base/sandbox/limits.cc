#include "base/sandbox/limits.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace base::sandbox {
namespace {

Result<void> Lower(int resource, const char* name, uint64_t wanted, uint64_t* set) {
  rlimit current{};
  if (getrlimit(resource, &current) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "getrlimit({})", name);
  }
  rlim_t value = static_cast<rlim_t>(wanted);
  if (current.rlim_cur != RLIM_INFINITY) value = std::min(value, current.rlim_cur);
  if (current.rlim_max != RLIM_INFINITY) value = std::min(value, current.rlim_max);
  const rlimit limit{value, value};
  if (setrlimit(resource, &limit) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "setrlimit({}, {})", name, value);
  }
  *set = value;
  return {};
}

}  // namespace

Result<uint64_t> AddressSpaceInUse() {
  FILE* status = std::fopen("/proc/self/status", "re");
  if (status == nullptr) return MakeErrnoError(ErrorKind::kInternal, "/proc/self/status");
  char line[256];
  uint64_t kib = 0;
  bool found = false;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    if (std::strncmp(line, "VmSize:", 7) == 0) {
      kib = std::strtoull(line + 7, nullptr, 10);
      found = true;
      break;
    }
  }
  std::fclose(status);
  if (!found) return MakeError(ErrorKind::kInternal, "/proc/self/status: no VmSize line");
  return kib * 1024;
}

int HighestOpenFdByProbing() {
  // Every open fd is below the fd table's size (FDSize, a power of two the
  // kernel grows as fds are opened); RLIMIT_NOFILE bounds it otherwise.
  long bound = 0;
  if (FILE* status = std::fopen("/proc/self/status", "re"); status != nullptr) {
    char line[256];
    while (std::fgets(line, sizeof(line), status) != nullptr) {
      if (std::strncmp(line, "FDSize:", 7) == 0) {
        bound = std::strtol(line + 7, nullptr, 10);
        break;
      }
    }
    std::fclose(status);
  }
  if (rlimit limit{}; bound <= 0 && getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    bound = limit.rlim_cur == RLIM_INFINITY ? (1l << 20) : static_cast<long>(limit.rlim_cur);
  }
  bound = std::clamp(bound, 64l, 1l << 20);
  for (long fd = bound - 1; fd >= 0; --fd) {
    if (fcntl(static_cast<int>(fd), F_GETFD) >= 0) return static_cast<int>(fd);
  }
  return -1;
}

Result<int> HighestOpenFd() {
  DIR* dir = opendir("/proc/self/fd");
  // A process whose uid changed (the jail) is not dumpable, and
  // /proc/self/fd is then root's; Landlock may not grant it either.
  if (dir == nullptr) return HighestOpenFdByProbing();
  int highest = -1;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != dirfd(dir)) highest = std::max(highest, fd);
  }
  closedir(dir);
  return highest;
}

Result<LimitsOutcome> LimitResources(uint64_t fd_margin, uint64_t as_margin) {
  LimitsOutcome outcome;
  const int highest = TRY(HighestOpenFd());
  TRY(Lower(RLIMIT_NOFILE, "RLIMIT_NOFILE", static_cast<uint64_t>(highest + 1) + fd_margin,
            &outcome.nofile));
  outcome.vm_size = TRY(AddressSpaceInUse());
  TRY(Lower(RLIMIT_AS, "RLIMIT_AS", outcome.vm_size + as_margin, &outcome.as_bytes));
  return outcome;
}

}  // namespace base::sandbox
