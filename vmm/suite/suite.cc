#include "vmm/suite/suite.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "vmm/suite/case.h"
#include "vmm/suite/merge.h"
#include "vmm/suite/report.h"
#include "vmm/suite/runner.h"
#include "vmm/suite/shard.h"

#ifndef VMM_SUITE_SOURCE_DIR
#error "VMM_SUITE_SOURCE_DIR must name the source tree (vmm/suite/CMakeLists.txt)"
#endif
#ifndef VMM_SUITE_BUILD_DIR
#error "VMM_SUITE_BUILD_DIR must name the build tree (vmm/suite/CMakeLists.txt)"
#endif

namespace vmm::suite {
namespace {

namespace fs = std::filesystem;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 64;
constexpr int kExitNoInput = 66;
constexpr int kExitCantCreate = 73;
constexpr int kExitInterrupted = 130;

bool Selected(const CaseEntry& entry, const SuiteOptions& options) {
  if (!options.filters.empty()) {
    bool any = false;
    for (const std::string& glob : options.filters) {
      if (fnmatch(glob.c_str(), entry.name.c_str(), 0) == 0) any = true;
    }
    if (!any) return false;
  }
  if (!options.tags.empty()) {
    if (!entry.spec) return false;
    bool any = false;
    for (const std::string& tag : options.tags) {
      for (const std::string& have : entry.spec->tags) {
        if (tag == have) any = true;
      }
    }
    if (!any) return false;
  }
  return true;
}

std::string UtcTimestamp() {
  std::time_t now = std::time(nullptr);
  std::tm utc = {};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return text;
}

}  // namespace

void AddSuiteOptions(CLI::App* subcommand, SuiteOptions* options) {
  subcommand->description(
      "Run the guest boot regression suite: boot each case (a JSON file, docs/suite.md) in its "
      "own vmm process and judge its serial output and exit status.");
  subcommand->add_option("-j,--jobs", options->jobs, "Cases run at once (default: number of CPUs)")
      ->check(CLI::Range(1, 1024));
  subcommand
      ->add_option("--filter", options->filters,
                   "Run only cases whose name matches this glob (repeatable; any may match)")
      ->allow_extra_args(false);
  subcommand
      ->add_option("--tag", options->tags,
                   "Run only cases with this tag (repeatable; any may match)")
      ->allow_extra_args(false);
  subcommand
      ->add_option("--repeat", options->repeat,
                   "Run every case N times; the table shows pass rate and p50/p95 times")
      ->check(CLI::Range(1, 100000));
  subcommand->add_option("--junit", options->junit, "Write JUnit XML results to FILE");
  subcommand->add_option("--out", options->out_dir,
                         fmt::format("Artifact folder: <out>/<case>/serial.log, stderr.log, "
                                     "timings.json (default: {}/suite-out)",
                                     VMM_SUITE_BUILD_DIR));
  subcommand->add_flag("--list", options->list, "Print the selected cases and exit");
  subcommand->add_flag("--json", options->json,
                       "With --list: print the cases as one JSON document (for an outside "
                       "scheduler)");
  subcommand->add_option("--shard", options->shard,
                         "Run only part I of N of the selected cases (I/N, 1-based); "
                         "balanced by the times recorded in --out, else by name");
  subcommand->add_option("--vmm", options->vmm_override, "vmm binary to run the cases with")
      ->group("");
  subcommand->add_option("--build-dir", options->build_dir, "Where ${build} in case files points")
      ->group("");
  subcommand
      ->add_option("--watchdog-margin", options->watchdog_margin_s,
                   "Seconds a case may run beyond its timeout before it is killed")
      ->group("");
  CLI::App* merge = subcommand->add_subcommand(
      "merge", "Merge the JUnit reports of the shards of a suite (--shard) into one");
  merge->add_option("reports", options->merge_inputs, "JUnit files written by vmm suite --junit")
      ->required();
  merge->add_option("--junit", options->merge_junit, "Write the merged JUnit XML to FILE")
      ->required();
  merge->callback([options] { options->merge = true; });
  subcommand->add_option(
      "paths", options->paths,
      fmt::format("Case files or folders (default: {}/tests/boot)", VMM_SUITE_SOURCE_DIR));
}

int RunSuite(const SuiteOptions& options, const std::string& vmm_binary) {
  if (options.merge) return MergeJUnit(options.merge_inputs, options.merge_junit);
  auto suite_start = std::chrono::steady_clock::now();
  if (options.json && !options.list) {
    fmt::print(stderr, "vmm suite: --json only goes with --list\n");
    return kExitUsage;
  }
  PathContext paths;
  paths.source_dir = VMM_SUITE_SOURCE_DIR;
  paths.build_dir =
      options.build_dir.empty() ? fs::path(VMM_SUITE_BUILD_DIR) : fs::absolute(options.build_dir);

  std::vector<std::string> inputs = options.paths;
  if (inputs.empty()) inputs.push_back((paths.source_dir / "tests" / "boot").string());
  base::Result<std::vector<fs::path>> files = FindCaseFiles(inputs);
  if (!files) {
    fmt::print(stderr, "vmm suite: {}\n", files.error().ToString());
    return kExitNoInput;
  }

  std::vector<CaseEntry> cases;
  std::map<std::string, fs::path> names;
  size_t skipped_malformed = 0;
  for (const fs::path& file : *files) {
    CaseEntry entry;
    entry.file = file;
    entry.name = file.stem().string();
    base::Result<CaseSpec> spec = LoadCaseFile(file, paths);
    if (spec) {
      entry.name = spec->name;
      if (auto [it, inserted] = names.emplace(spec->name, file); !inserted) {
        entry.error = fmt::format("{}: field 'name': '{}' is already the name of {}", file.string(),
                                  spec->name, it->second.string());
      } else {
        entry.spec = std::move(*spec);
      }
    } else {
      entry.error = spec.error().ToString();
    }
    if (!entry.spec && !options.tags.empty()) {
      // A malformed case's tags are unknown; say so rather than drop it silently.
      ++skipped_malformed;
      fmt::print(stderr, "vmm suite: skipping malformed case (tags unknown): {}\n", entry.error);
      continue;
    }
    if (Selected(entry, options)) cases.push_back(std::move(entry));
  }
  if (cases.empty()) {
    fmt::print(stderr, "vmm suite: no case selected from {} case file{}\n", files->size(),
               files->size() == 1 ? "" : "s");
    return skipped_malformed > 0 ? kExitFailed : kExitUsage;
  }

  fs::path out_dir =
      fs::absolute(options.out_dir.empty() ? fs::path(VMM_SUITE_BUILD_DIR) / "suite-out"
                                           : fs::path(options.out_dir));
  // The recorded times, read only for the split and the JSON list (the
  // runner reads its own estimates when it orders the runs).
  std::vector<std::optional<double>> recorded(cases.size());
  if (!options.shard.empty() || (options.list && options.json)) {
    for (size_t i = 0; i < cases.size(); ++i) recorded[i] = RecordedWallMs(cases[i].name, out_dir);
  }

  std::optional<Shard> shard;
  if (!options.shard.empty()) {
    base::Result<Shard> parsed = ParseShard(options.shard);
    if (!parsed) {
      fmt::print(stderr, "vmm suite: {}\n", parsed.error().message());
      return kExitUsage;
    }
    shard = *parsed;
    std::vector<std::string> case_names;
    std::vector<double> times;
    for (size_t i = 0; i < cases.size(); ++i) {
      case_names.push_back(cases[i].name);
      times.push_back(recorded[i].value_or(-1.0));
    }
    size_t selected = cases.size();
    std::vector<CaseEntry> mine;
    std::vector<std::optional<double>> mine_recorded;
    for (size_t i : ShardCases(case_names, times, *shard)) {
      mine.push_back(std::move(cases[i]));
      mine_recorded.push_back(recorded[i]);
    }
    cases = std::move(mine);
    recorded = std::move(mine_recorded);
    fmt::print(stderr, "vmm suite: shard {}/{}: {} of {} selected case{}\n", shard->index,
               shard->count, cases.size(), selected, selected == 1 ? "" : "s");
    if (cases.empty() && !options.list) return 0;  // more shards than cases: nothing to do
  }

  if (options.list && options.json) {
    nlohmann::json doc = nlohmann::json::object();
    if (shard) doc["shard"] = {{"index", shard->index}, {"count", shard->count}};
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < cases.size(); ++i) {
      const CaseEntry& entry = cases[i];
      nlohmann::json item = {{"name", entry.name}, {"file", entry.file.string()}};
      if (entry.spec) {
        item["outcome"] = entry.spec->outcome.ToString();
        item["tags"] = entry.spec->tags;
        item["timeout_s"] = entry.spec->timeout_s;
      } else {
        item["error"] = entry.error;
      }
      item["recorded_ms"] = recorded[i] ? nlohmann::json(*recorded[i]) : nlohmann::json(nullptr);
      list.push_back(std::move(item));
    }
    doc["cases"] = std::move(list);
    fmt::print("{}\n", doc.dump(2));
    return 0;
  }

  if (options.list) {
    for (const CaseEntry& entry : cases) {
      if (entry.spec) {
        std::string tags;
        for (const std::string& tag : entry.spec->tags) tags += (tags.empty() ? "" : ",") + tag;
        fmt::print("{:<24} {:<14} {:<12} {}\n", entry.name, entry.spec->outcome.ToString(),
                   tags.empty() ? "-" : tags, entry.file.string());
      } else {
        fmt::print("{:<24} {:<14} {:<12} {}\n", entry.name, "MALFORMED", "-", entry.error);
      }
    }
    return 0;
  }

  RunnerOptions runner;
  runner.jobs = options.jobs > 0
                    ? options.jobs
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  runner.repeat = options.repeat;
  runner.out_dir = out_dir;
  runner.vmm_binary = options.vmm_override.empty() ? vmm_binary : options.vmm_override;
  runner.tty = isatty(STDOUT_FILENO) == 1;
  runner.watchdog_margin_s = options.watchdog_margin_s;
  std::error_code ec;
  fs::create_directories(runner.out_dir, ec);
  if (ec) {
    fmt::print(stderr, "vmm suite: cannot create artifact folder {}: {}\n", runner.out_dir.string(),
               ec.message());
    return kExitCantCreate;
  }

  size_t runs = 0;
  for (const CaseEntry& entry : cases) runs += entry.spec ? static_cast<size_t>(runner.repeat) : 0;
  fmt::print("vmm suite: {} case{}, {} run{}, --jobs {}, vmm {}\n", cases.size(),
             cases.size() == 1 ? "" : "s", runs, runs == 1 ? "" : "s", runner.jobs,
             runner.vmm_binary);
  std::fflush(stdout);

  bool interrupted = false;
  std::vector<RunRecord> records = RunCases(cases, runner, &interrupted);
  double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - suite_start).count();

  // Forensics first, the table and the summary last, where a reader looks.
  size_t passed = 0;
  size_t failed = 0;
  size_t errors = 0;
  std::map<size_t, size_t> failures_shown;
  constexpr size_t kMaxFailuresPerCase = 3;
  for (const RunRecord& record : records) {
    switch (record.verdict.kind) {
      case VerdictKind::kPass:
        ++passed;
        continue;
      case VerdictKind::kFail:
        ++failed;
        break;
      case VerdictKind::kError:
        ++errors;
        break;
    }
    if (failures_shown[record.case_index]++ < kMaxFailuresPerCase) {
      fmt::print("\n{}", FormatFailure(cases[record.case_index], record, runner.repeat));
    }
  }
  for (const auto& [index, count] : failures_shown) {
    if (count > kMaxFailuresPerCase) {
      fmt::print("({} more failed runs of {} not shown; see {})\n", count - kMaxFailuresPerCase,
                 cases[index].name, (runner.out_dir / cases[index].name).string());
    }
  }
  fmt::print("\n{}", FormatTable(cases, records, runner.repeat));
  fmt::print(
      "\nvmm suite: {} run{}: {} passed, {} failed, {} error{} in {:.2f} s (--jobs {}); "
      "artifacts in {}\n",
      records.size(), records.size() == 1 ? "" : "s", passed, failed, errors,
      errors == 1 ? "" : "s", total_s, runner.jobs, runner.out_dir.string());

  int status = (failed == 0 && errors == 0) ? 0 : kExitFailed;
  if (!options.junit.empty()) {
    std::ofstream junit(options.junit, std::ios::binary | std::ios::trunc);
    junit << JUnitXml(cases, records, runner.repeat, total_s, UtcTimestamp());
    junit.close();
    if (!junit) {
      fmt::print(stderr, "vmm suite: cannot write JUnit file {}\n", options.junit);
      if (status == 0) status = kExitCantCreate;
    }
  }
  std::fflush(stdout);
  if (interrupted) {
    fmt::print(stderr, "vmm suite: interrupted; the table shows the runs that finished\n");
    return kExitInterrupted;
  }
  return status;
}

}  // namespace vmm::suite
