// Helpers shared by the KVM integration tests (kvm_tests, kvm_virtio_tests):
// whether /dev/kvm can be used, running the vmm binary (VMM_BINARY, defined
// per test target) with a time limit, and a scratch folder per test.
#pragma once

#include <cpuid.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/kvm/subprocess.h"

extern "C" char** environ;

namespace vmm_test {

inline bool KvmUsable() {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// A KVM without VMX or SVM underneath: every guest instruction is emulated
// (docs/architecture.md, "The KVM on these machines").
inline bool SoftwareKvmHost() {
  unsigned a, b, c, d;
  bool vmx = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 5));
  bool svm = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 2));
  return !vmx && !svm;
}

// Runs vmm with `args` (and extra environment entries), at most `limit` seconds.
inline ProcessResult Vmm(std::vector<std::string> args, double limit = 60,
                         std::vector<std::string> env = {}) {
  args.insert(args.begin(), VMM_BINARY);
  return RunProcess(args, limit, env);
}

// Starts vmm with `args` in the background (stdin /dev/null, stderr to
// `stderr_path`, stdout inherited); the caller waits for it. The pid, or -1.
inline pid_t SpawnVmm(std::vector<std::string> args, const std::filesystem::path& stderr_path) {
  args.insert(args.begin(), VMM_BINARY);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return spawned == 0 ? pid : -1;
}

inline bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// /tmp/<prefix>_<pid>_<test name>, created.
inline std::filesystem::path TempDir(const std::string& prefix = "vmm_kvm_test") {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              (prefix + "_" + std::to_string(getpid()) + "_" +
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace vmm_test

#define REQUIRE_KVM()                                                                    \
  do {                                                                                   \
    if (!vmm_test::KvmUsable()) {                                                        \
      /* VMM_REQUIRE_KVM=1: a host meant to have KVM fails instead (docs/testing.md). */ \
      const char* require = std::getenv("VMM_REQUIRE_KVM");                              \
      if (require != nullptr && std::string(require) == "1")                             \
        FAIL() << "/dev/kvm cannot be opened here and VMM_REQUIRE_KVM=1";                \
      GTEST_SKIP() << "SKIPPED LOUDLY: /dev/kvm cannot be opened here";                  \
    }                                                                                    \
  } while (0)
