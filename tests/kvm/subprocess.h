// Runs a command with a wall-clock limit and captures stdout and stderr
// (test helper for the KVM integration tests; POSIX only).
#pragma once

#include <string>
#include <vector>

namespace vmm_test {

struct ProcessResult {
  int status = -1;         // exit status, or 128 + signal
  bool timed_out = false;  // killed by the helper after `limit_seconds`
  std::string out;
  std::string err;
  double seconds = 0;
};

ProcessResult RunProcess(const std::vector<std::string>& argv, double limit_seconds = 60,
                         const std::vector<std::string>& extra_env = {});

}  // namespace vmm_test
