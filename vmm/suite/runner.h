// Runs selected cases as vmm child processes, up to `jobs` at once.
//
// One thread (the caller's) drives everything with poll(): it starts
// children, streams their stdout through a SerialMatcher and their stderr
// through a BootTraceParser while writing both to the case's artifact
// folder, stops a child as soon as its verdict is known (a forbidden pattern
// matched), kills a child that outlives its watchdog (the case's timeout plus
// a margin: a hung vmm never hangs the suite), and reaps it. A child crash
// affects its own case only.
#pragma once

#include <cstdio>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vmm/suite/boot_trace.h"
#include "vmm/suite/case.h"
#include "vmm/suite/verdict.h"

namespace vmm::suite {

// One selected case file: parsed, or the error that kept it from parsing.
struct CaseEntry {
  std::filesystem::path file;
  std::string name;  // spec->name, or the file's stem when malformed
  std::optional<CaseSpec> spec;
  std::string error;  // set when spec is empty
};

// A case's wall time in an earlier run: timings.json in its artifact folder
// under `out_dir` (the first run's, with --repeat), or nothing.
std::optional<double> RecordedWallMs(const std::string& case_name,
                                     const std::filesystem::path& out_dir);

struct RunnerOptions {
  int jobs = 1;
  int repeat = 1;
  std::filesystem::path out_dir;
  std::string vmm_binary;
  bool tty = false;                // live progress line instead of per-run lines
  double watchdog_margin_s = 5.0;  // added to each case's timeout
  std::FILE* out = stdout;
};

// One run of one case (or the error of a malformed case: run == 0).
struct RunRecord {
  size_t case_index = 0;
  int run = 0;  // 1-based; 0 for a case that could not be parsed
  Verdict verdict;
  Observation observation;
  std::vector<std::string> command;
  double start_ms = 0;  // since the suite started
  double end_ms = 0;
  double wall_ms = 0;  // child start to reaped
  double boot_ms = 0;  // to the last expected pattern when all matched, else wall_ms
  std::optional<double> first_byte_ms;  // first serial byte, runner's clock
  std::vector<SerialMatcher::ExpectHit> matches;
  size_t expect_count = 0;
  std::vector<BootEvent> trace;  // vmm's own --boot-trace events
  size_t serial_lines = 0;
  std::deque<std::string> serial_tail;
  std::string stderr_text;  // at most kStderrKeep bytes, the end kept
  std::filesystem::path artifact_dir;
  // The screen images this run left in artifact_dir (file names: screen.png,
  // and screen-diff.png after a failed screen check); empty without "screen".
  std::vector<std::string> screen_images;

  static constexpr size_t kStderrKeep = 64 * 1024;
};

// Where one run's artifacts go: out/<name> for --repeat 1, out/<name>/<k> otherwise.
std::filesystem::path ArtifactDir(const std::filesystem::path& out_dir, const std::string& name,
                                  int run, int repeat);

// Runs every parsed case `repeat` times and returns one record per run (and
// one per malformed case), in case order. `interrupted` is set when SIGINT or
// SIGTERM stopped the suite early.
std::vector<RunRecord> RunCases(const std::vector<CaseEntry>& cases, const RunnerOptions& options,
                                bool* interrupted);

}  // namespace vmm::suite
