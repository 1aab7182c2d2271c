// A stand-alone `suite` front end for developing vmm/suite while vmm itself
// does not build: `vmm_suite_driver suite --vmm FAKE ...` behaves as `vmm
// suite`. Not built by default (EXCLUDE_FROM_ALL); the CTest tests use vmm.
#include <CLI/CLI.hpp>

#include "vmm/suite/suite.h"

int main(int argc, char** argv) {
  CLI::App app("vmm suite driver");
  vmm::suite::SuiteOptions options;
  CLI::App* suite = app.add_subcommand("suite", "Run the guest boot regression suite");
  vmm::suite::AddSuiteOptions(suite, &options);
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return vmm::suite::RunSuite(options, argv[0]);
}
