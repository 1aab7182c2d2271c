// `vmm suite`: the guest boot regression suite (docs/architecture.md, "The guest boot
// regression suite"; docs/suite.md).
//
// main.cc adds a `suite` subcommand, calls AddSuiteOptions on it, and when
// it is chosen calls RunSuite with the path of the running vmm binary; the
// value RunSuite returns is vmm's exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace vmm::suite {

struct SuiteOptions {
  int jobs = 0;                      // 0: one per CPU
  std::vector<std::string> filters;  // globs on case names; any may match
  std::vector<std::string> tags;     // a case must carry one of them
  int repeat = 1;
  std::string junit;               // JUnit XML output file, if set
  std::string out_dir;             // artifact folder; default: <build>/suite-out
  std::vector<std::string> paths;  // case files or folders; default: <source>/tests/boot
  bool list = false;               // print the selected cases and exit
  bool json = false;               // with list: one JSON document instead of the table
  std::string shard;               // "I/N": run only part I of N (vmm/suite/shard.h)
  std::string vmm_override;        // hidden --vmm: run this binary instead (tests)
  std::string build_dir;           // hidden --build-dir: where ${build} points
  double watchdog_margin_s = 5.0;  // hidden --watchdog-margin
  // `vmm suite merge REPORTS... --junit FILE` (vmm/suite/merge.h).
  bool merge = false;
  std::vector<std::string> merge_inputs;
  std::string merge_junit;
};

void AddSuiteOptions(CLI::App* subcommand, SuiteOptions* options);

// Exit status: 0 every selected case passed; 1 a case failed or was
// malformed; 64 bad usage or no case selected (a shard left with none is 0); 66 a PATH does not
// exist; 73 the artifact folder or JUnit file cannot be written; 130 interrupted.
int RunSuite(const SuiteOptions& options, const std::string& vmm_binary);

}  // namespace vmm::suite
