// A boot regression case: one guest to boot and how to judge it.
//
// Cases are small JSON files (docs/suite.md, "Case files"). ParseCase turns
// one file's text into a CaseSpec, or into an Error naming the file and the
// offending field; a malformed case is an error of that case only, the
// runner goes on with the others. Plain data; no threads involved.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "vmm/suite/screen_check.h"

namespace vmm::suite {

// What a case expects vmm to end with (docs/architecture.md, "Exit status").
enum class OutcomeKind {
  kExit,         // "exit:N": the guest wrote N (0..63) to the exit port
  kTripleFault,  // "triple-fault": vmm status 80
  kTimeout,      // "timeout": vmm's --timeout elapsed, status 82
  kSetupError,   // "setup-error:N": vmm refused to start the guest, N in 64..78
};

struct Outcome {
  OutcomeKind kind = OutcomeKind::kExit;
  int status = 0;  // the vmm exit status this outcome stands for

  std::string ToString() const;  // the case-file spelling, e.g. "exit:3"
  bool operator==(const Outcome&) const = default;
};

// vmm exit statuses with a fixed meaning (docs/architecture.md).
inline constexpr int kStatusTripleFault = 80;
inline constexpr int kStatusKvmError = 81;
inline constexpr int kStatusTimeout = 82;

// Parses "exit:N", "triple-fault", "timeout", "setup-error:N".
[[nodiscard]] base::Result<Outcome> ParseOutcome(std::string_view text);

// Names a raw vmm exit status the way a case would expect it:
// "exit:3", "triple-fault", "kvm-error", "timeout", "setup-error:66", "status:99".
std::string DescribeStatus(int status);

// Where "${build}/" and "${source}/" prefixes in case paths point.
struct PathContext {
  std::filesystem::path build_dir;
  std::filesystem::path source_dir;
};

struct CaseSpec {
  std::string name;            // unique; [A-Za-z0-9._-]+; default: the file's stem
  std::filesystem::path file;  // the case file it came from
  std::string description;
  std::string kernel;  // resolved path
  std::optional<std::string> initrd;
  std::string cmdline;
  std::string memory = "128M";
  int cpus = 1;
  std::vector<std::string> disks;       // "PATH[,ro]", PATH resolved
  std::vector<std::string> extra_args;  // appended verbatim to the vmm command line
  double timeout_s = 30.0;              // passed to vmm --timeout
  Outcome outcome;                      // default exit:0
  std::vector<std::string> expect;      // regexes, matched in order
  std::vector<std::string> forbid;      // regexes that must never match
  std::vector<std::string> tags;
  std::string input;                       // typed on the guest's serial console (vmm's stdin)
  std::optional<std::string> input_after;  // regex: type once a serial line matches it
  std::optional<std::string> framebuffer;  // vmm --framebuffer: "WxH", "auto" or "off"
  std::optional<ScreenSpec> screen;        // checked on vmm's --screenshot when it ends
};

// Parses one case. `file` names the case in errors and anchors relative paths.
// Errors are kConfig and read "<file>: field '<field>': <what is wrong>".
// The one file it reads is a screen check's reference PNG, decoded here so
// that a missing or corrupt one is an error of the case, not of a run.
[[nodiscard]] base::Result<CaseSpec> ParseCase(std::string_view json_text,
                                               const std::filesystem::path& file,
                                               const PathContext& paths);

// Reads and parses a case file (kNoInput when it cannot be read).
[[nodiscard]] base::Result<CaseSpec> LoadCaseFile(const std::filesystem::path& file,
                                                  const PathContext& paths);

// Expands PATHS (case files, or folders searched recursively for *.json) into
// a sorted list of case files. A path that does not exist is an error.
[[nodiscard]] base::Result<std::vector<std::filesystem::path>> FindCaseFiles(
    const std::vector<std::string>& paths);

// The vmm command line that boots this case (argv[0] = vmm_binary). A case
// with a screen check gets --screenshot <artifact_dir>/screen.png.
std::vector<std::string> BuildVmmCommand(const CaseSpec& spec, const std::string& vmm_binary,
                                         const std::filesystem::path& artifact_dir = {});

}  // namespace vmm::suite
