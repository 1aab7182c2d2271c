#include "vmm/suite/case.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "base/guest_memory.h"
#include "base/layout.h"
#include "base/png.h"
#include "vmm/config.h"
#include "vmm/json_util.h"
#include "vmm/suite/matcher.h"

namespace vmm::suite {
namespace {

namespace fs = std::filesystem;
using json = vmm::json::Json;

constexpr std::string_view kBuildPrefix = "${build}";
constexpr std::string_view kSourcePrefix = "${source}";

// Every field a case may have; anything else is a typo worth reporting.
const std::set<std::string, std::less<>> kKnownFields = {
    "name",     "description", "kernel",      "initrd",      "cmdline", "memory", "cpus",
    "disks",    "args",        "timeout",     "result",      "expect",  "forbid", "tags",
    "$comment", "input",       "input_after", "framebuffer", "screen",
};

std::unexpected<base::Error> FieldError(const fs::path& file, std::string_view field,
                                        std::string_view what) {
  return std::unexpected(vmm::json::FieldError(file.string(), field, what));
}

std::string JsonTypeName(const json& value) { return value.type_name(); }

// Resolves a case-file path: "${build}/x" and "${source}/x" against the build
// and source trees, absolute paths as they are, the rest against the folder of
// the case file. Lexically normalized; existence is vmm's business (a case may
// well expect vmm to report a missing kernel).
std::string ResolvePath(std::string_view raw, const fs::path& file, const PathContext& paths) {
  fs::path resolved;
  if (raw.starts_with(kBuildPrefix)) {
    resolved =
        paths.build_dir / fs::path(std::string(raw.substr(kBuildPrefix.size()))).relative_path();
  } else if (raw.starts_with(kSourcePrefix)) {
    resolved =
        paths.source_dir / fs::path(std::string(raw.substr(kSourcePrefix.size()))).relative_path();
  } else {
    fs::path p(raw);
    resolved = p.is_absolute() ? p : file.parent_path() / p;
  }
  return resolved.lexically_normal().string();
}

base::Result<std::string> GetString(const json& doc, std::string_view field, const fs::path& file) {
  return vmm::json::GetString(doc.at(std::string(field)), file.string(), field);
}

// A file name: no NUL inside (open(2) would stop there), not empty.
base::Result<std::string> GetPath(const json& doc, std::string_view field, const fs::path& file) {
  return vmm::json::GetPath(doc.at(std::string(field)), file.string(), field);
}

base::Result<std::vector<std::string>> GetStringList(const json& doc, std::string_view field,
                                                     const fs::path& file) {
  const json& value = doc.at(std::string(field));
  if (value.is_string()) return std::vector<std::string>{value.get<std::string>()};
  if (!value.is_array()) {
    return FieldError(file, field,
                      fmt::format("must be a list of strings, not {}", JsonTypeName(value)));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      return FieldError(file, fmt::format("{}[{}]", field, i),
                        fmt::format("must be a string, not {}", JsonTypeName(value[i])));
    }
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::optional<int> ParseInt(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// The fields of "screen" (docs/suite.md, "Screen checks").
const std::set<std::string, std::less<>> kScreenFields = {"reference", "probes", "$comment"};

// A probe coordinate: an integer inside the largest framebuffer vmm gives.
base::Result<uint32_t> GetCoordinate(const json& value, const fs::path& file,
                                     const std::string& field) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() >= base::kFramebufferMaxSide) {
    return FieldError(file, field,
                      fmt::format("must be an integer 0..{}, not {}", base::kFramebufferMaxSide - 1,
                                  value.dump()));
  }
  return static_cast<uint32_t>(value.get<int64_t>());
}

// "screen": {"reference": "PNG", "probes": [[x, y, "#rrggbb"], ...]}. The
// reference is read and decoded now, so that a missing or corrupt one is an
// error of the case file naming the field.
base::Result<ScreenSpec> ParseScreen(const json& value, const fs::path& file,
                                     const PathContext& paths) {
  if (!value.is_object()) {
    return FieldError(file, "screen",
                      fmt::format("must be an object with \"reference\" and/or \"probes\", not {}",
                                  JsonTypeName(value)));
  }
  for (const auto& [key, item] : value.items()) {
    if (!kScreenFields.contains(key)) return FieldError(file, "screen." + key, "unknown field");
  }
  ScreenSpec screen;
  if (value.contains("reference")) {
    std::string raw =
        TRY(vmm::json::GetPath(value.at("reference"), file.string(), "screen.reference"));
    screen.reference = ResolvePath(raw, file, paths);
    // Not a FIFO or a device: reading one could block or never end.
    std::error_code ec;
    fs::file_status status = fs::status(screen.reference, ec);
    if (fs::exists(status) && !fs::is_regular_file(status)) {
      return FieldError(file, "screen.reference",
                        fmt::format("{} is not a regular file", screen.reference));
    }
    base::Result<base::RgbImage> image = base::ReadPng(screen.reference);
    if (!image) return FieldError(file, "screen.reference", image.error().ToString());
    screen.reference_image = std::make_shared<const base::RgbImage>(std::move(*image));
  }
  if (value.contains("probes")) {
    const json& probes = value.at("probes");
    if (!probes.is_array() || probes.empty()) {
      return FieldError(
          file, "screen.probes",
          fmt::format("must be a non-empty list of [x, y, \"#rrggbb\"], not {}", probes.dump()));
    }
    for (size_t i = 0; i < probes.size(); ++i) {
      const json& probe = probes[i];
      std::string field = fmt::format("screen.probes[{}]", i);
      if (!probe.is_array() || probe.size() != 3 || !probe[2].is_string()) {
        return FieldError(file, field,
                          fmt::format("must be [x, y, \"#rrggbb\"], not {}", probe.dump()));
      }
      PixelProbe parsed;
      parsed.x = TRY(GetCoordinate(probe[0], file, field + "[0]"));
      parsed.y = TRY(GetCoordinate(probe[1], file, field + "[1]"));
      base::Result<uint32_t> colour = ParseColour(probe[2].get<std::string>(), field);
      if (!colour) {
        return base::MakeError(base::ErrorKind::kConfig, "{}: {}", file.string(),
                               colour.error().message());
      }
      parsed.rgb = *colour;
      screen.probes.push_back(parsed);
    }
  }
  if (!screen.reference_image && screen.probes.empty()) {
    return FieldError(file, "screen", "needs \"reference\" or \"probes\" (or both)");
  }
  return screen;
}

}  // namespace

std::string Outcome::ToString() const {
  switch (kind) {
    case OutcomeKind::kExit:
      return fmt::format("exit:{}", status);
    case OutcomeKind::kTripleFault:
      return "triple-fault";
    case OutcomeKind::kTimeout:
      return "timeout";
    case OutcomeKind::kSetupError:
      return fmt::format("setup-error:{}", status);
  }
  return "?";
}

base::Result<Outcome> ParseOutcome(std::string_view text) {
  if (text == "triple-fault") return Outcome{OutcomeKind::kTripleFault, kStatusTripleFault};
  if (text == "timeout") return Outcome{OutcomeKind::kTimeout, kStatusTimeout};
  auto parse_number = [&](std::string_view prefix, int lo, int hi) -> std::optional<int> {
    if (!text.starts_with(prefix)) return std::nullopt;
    std::optional<int> n = ParseInt(text.substr(prefix.size()));
    if (!n || *n < lo || *n > hi) return std::nullopt;
    return n;
  };
  if (text.starts_with("exit:")) {
    if (auto n = parse_number("exit:", 0, 63)) return Outcome{OutcomeKind::kExit, *n};
    return base::MakeError(base::ErrorKind::kConfig, "'{}': the exit value must be a number 0..63",
                           text);
  }
  if (text.starts_with("setup-error:")) {
    if (auto n = parse_number("setup-error:", 64, 78)) return Outcome{OutcomeKind::kSetupError, *n};
    return base::MakeError(base::ErrorKind::kConfig,
                           "'{}': the setup error must be a number 64..78", text);
  }
  return base::MakeError(base::ErrorKind::kConfig,
                         "'{}' is not a result (exit:N, triple-fault, timeout, setup-error:N)",
                         text);
}

std::string DescribeStatus(int status) {
  if (status >= 0 && status <= 63) return fmt::format("exit:{}", status);
  if (status >= 64 && status <= 78) return fmt::format("setup-error:{}", status);
  if (status == kStatusTripleFault) return "triple-fault";
  if (status == kStatusKvmError) return "kvm-error";
  if (status == kStatusTimeout) return "timeout";
  if (status == static_cast<int>(base::ErrorKind::kSeccompViolation)) return "seccomp-violation";
  return fmt::format("status:{}", status);
}

base::Result<CaseSpec> ParseCase(std::string_view json_text, const fs::path& file,
                                 const PathContext& paths) {
  json doc = TRY(vmm::json::Parse(json_text, file.string()));
  if (!doc.is_object()) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: a case must be a JSON object, not {}",
                           file.string(), JsonTypeName(doc));
  }
  for (const auto& [key, value] : doc.items()) {
    if (!kKnownFields.contains(key)) return FieldError(file, key, "unknown field");
  }

  CaseSpec spec;
  spec.file = file;
  spec.name = file.stem().string();
  if (doc.contains("name")) spec.name = TRY(GetString(doc, "name", file));
  if (!IsValidName(spec.name)) {
    return FieldError(
        file, "name",
        fmt::format("'{}' is not a valid case name (letters, digits, '-', '_', '.')", spec.name));
  }
  if (doc.contains("description")) spec.description = TRY(GetString(doc, "description", file));

  if (!doc.contains("kernel")) return FieldError(file, "kernel", "missing (every case boots one)");
  if (doc.at("kernel").is_string() && doc.at("kernel").get<std::string>().empty()) {
    return FieldError(file, "kernel", "must not be empty");
  }
  std::string kernel = TRY(GetPath(doc, "kernel", file));
  spec.kernel = ResolvePath(kernel, file, paths);
  if (doc.contains("initrd")) {
    spec.initrd = ResolvePath(TRY(GetPath(doc, "initrd", file)), file, paths);
  }
  if (doc.contains("cmdline")) spec.cmdline = TRY(GetString(doc, "cmdline", file));

  if (doc.contains("memory")) {
    const json& memory = doc.at("memory");
    if (memory.is_number_unsigned()) {
      spec.memory = fmt::format("{}M", memory.get<uint64_t>());
    } else {
      spec.memory = TRY(GetString(doc, "memory", file));
    }
    if (base::Result<uint64_t> size = base::ParseSize(spec.memory); !size) {
      return FieldError(file, "memory", size.error().ToString());
    }
  }
  if (doc.contains("cpus")) {
    const json& cpus = doc.at("cpus");
    if (!cpus.is_number_integer() || cpus.get<int64_t>() < 1 ||
        cpus.get<int64_t>() > base::kMaxCpus) {
      return FieldError(
          file, "cpus",
          fmt::format("must be an integer 1..{}, not {}", base::kMaxCpus, cpus.dump()));
    }
    spec.cpus = cpus.get<int>();
  }
  if (doc.contains("disks")) {
    for (const std::string& disk : TRY(GetStringList(doc, "disks", file))) {
      if (disk.find('\0') != std::string::npos) {
        return FieldError(file, "disks", "a path holds a NUL character");
      }
      std::string_view path = disk;
      std::string_view suffix;
      if (size_t comma = path.find(','); comma != std::string_view::npos) {
        suffix = path.substr(comma);
        path = path.substr(0, comma);
      }
      spec.disks.push_back(ResolvePath(path, file, paths) + std::string(suffix));
    }
  }
  if (doc.contains("args")) spec.extra_args = TRY(GetStringList(doc, "args", file));

  if (doc.contains("timeout")) {
    const json& timeout = doc.at("timeout");
    if (!timeout.is_number() || timeout.get<double>() <= 0 || timeout.get<double>() > 3600) {
      return FieldError(
          file, "timeout",
          fmt::format("must be a number of seconds in (0, 3600], not {}", timeout.dump()));
    }
    spec.timeout_s = timeout.get<double>();
  }
  if (doc.contains("result")) {
    const json& result = doc.at("result");
    if (result.is_number_integer()) {
      int64_t n = result.get<int64_t>();
      if (n < 0 || n > 63) {
        return FieldError(file, "result", fmt::format("exit value {} is outside 0..63", n));
      }
      spec.outcome = Outcome{OutcomeKind::kExit, static_cast<int>(n)};
    } else {
      std::string text = TRY(GetString(doc, "result", file));
      base::Result<Outcome> outcome = ParseOutcome(text);
      if (!outcome) return FieldError(file, "result", outcome.error().message());
      spec.outcome = *outcome;
    }
  }
  if (doc.contains("expect")) spec.expect = TRY(GetStringList(doc, "expect", file));
  if (doc.contains("forbid")) spec.forbid = TRY(GetStringList(doc, "forbid", file));
  // Compile every pattern now so a bad regex is reported with its field.
  for (size_t i = 0; i < spec.expect.size(); ++i) {
    if (base::Result<void> ok = CheckPattern(spec.expect[i]); !ok) {
      return FieldError(file, fmt::format("expect[{}]", i), ok.error().message());
    }
  }
  for (size_t i = 0; i < spec.forbid.size(); ++i) {
    if (base::Result<void> ok = CheckPattern(spec.forbid[i]); !ok) {
      return FieldError(file, fmt::format("forbid[{}]", i), ok.error().message());
    }
  }
  if (doc.contains("tags")) spec.tags = TRY(GetStringList(doc, "tags", file));
  if (doc.contains("input")) spec.input = TRY(GetString(doc, "input", file));
  if (doc.contains("input_after")) {
    spec.input_after = TRY(GetString(doc, "input_after", file));
    if (base::Result<void> ok = CheckPattern(*spec.input_after); !ok) {
      return FieldError(file, "input_after", ok.error().message());
    }
    if (spec.input.empty()) return FieldError(file, "input_after", "needs an 'input' to send");
  }
  std::optional<FramebufferSpec> framebuffer;
  if (doc.contains("framebuffer")) {
    spec.framebuffer = TRY(GetString(doc, "framebuffer", file));
    base::Result<FramebufferSpec> parsed = ParseFramebufferSpec(*spec.framebuffer);
    if (!parsed) return FieldError(file, "framebuffer", parsed.error().message());
    framebuffer = *parsed;
  }
  if (doc.contains("screen")) {
    spec.screen = TRY(ParseScreen(doc.at("screen"), file, paths));
    if (spec.outcome.kind == OutcomeKind::kSetupError) {
      return FieldError(
          file, "screen",
          fmt::format("a case that expects {} has no screen to check", spec.outcome.ToString()));
    }
    if (framebuffer && framebuffer->kind == FramebufferSpec::Kind::kOff) {
      return FieldError(file, "screen", "needs a framebuffer, but 'framebuffer' is \"off\"");
    }
    // With a size given, what cannot fit is known now rather than after a boot.
    if (framebuffer && framebuffer->kind == FramebufferSpec::Kind::kOn) {
      const base::RgbImage* reference = spec.screen->reference_image.get();
      if (reference &&
          (reference->width != framebuffer->width || reference->height != framebuffer->height)) {
        return FieldError(file, "screen.reference",
                          fmt::format("{} is {}x{}, the framebuffer {}x{}", spec.screen->reference,
                                      reference->width, reference->height, framebuffer->width,
                                      framebuffer->height));
      }
      for (size_t i = 0; i < spec.screen->probes.size(); ++i) {
        const PixelProbe& probe = spec.screen->probes[i];
        if (probe.x >= framebuffer->width || probe.y >= framebuffer->height) {
          return FieldError(file, fmt::format("screen.probes[{}]", i),
                            fmt::format("({}, {}) is outside the {}x{} framebuffer", probe.x,
                                        probe.y, framebuffer->width, framebuffer->height));
        }
      }
    }
  }
  return spec;
}

base::Result<CaseSpec> LoadCaseFile(const fs::path& file, const PathContext& paths) {
  std::string text = TRY(vmm::json::ReadJsonFile(file.string(), "case file"));
  return ParseCase(text, file, paths);
}

base::Result<std::vector<fs::path>> FindCaseFiles(const std::vector<std::string>& paths) {
  std::vector<fs::path> files;
  for (const std::string& raw : paths) {
    std::error_code ec;
    fs::path path = fs::absolute(raw, ec).lexically_normal();
    fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      return base::MakeError(base::ErrorKind::kNoInput, "{}: no such case file or folder", raw);
    }
    if (!fs::is_directory(status)) {
      files.push_back(path);
      continue;
    }
    std::vector<fs::path> found;
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file() && it->path().extension() == ".json") found.push_back(it->path());
    }
    if (ec)
      return base::MakeError(base::ErrorKind::kNoInput, "{}: cannot list folder: {}", raw,
                             ec.message());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

std::vector<std::string> BuildVmmCommand(const CaseSpec& spec, const std::string& vmm_binary,
                                         const fs::path& artifact_dir) {
  std::vector<std::string> argv = {vmm_binary, "--kernel", spec.kernel};
  if (spec.initrd) {
    argv.push_back("--initrd");
    argv.push_back(*spec.initrd);
  }
  argv.push_back("--cmdline");
  argv.push_back(spec.cmdline);
  argv.push_back("--memory");
  argv.push_back(spec.memory);
  argv.push_back("--cpus");
  argv.push_back(std::to_string(spec.cpus));
  argv.push_back("--serial");
  argv.push_back("stdio");
  argv.push_back("--timeout");
  argv.push_back(fmt::format("{:g}", spec.timeout_s));
  argv.push_back("--boot-trace");
  if (spec.framebuffer) {
    argv.push_back("--framebuffer");
    argv.push_back(*spec.framebuffer);
  }
  if (spec.screen) {
    argv.push_back("--screenshot");
    argv.push_back((artifact_dir / kScreenshotFile).string());
  }
  for (const std::string& disk : spec.disks) {
    argv.push_back("--disk");
    argv.push_back(disk);
  }
  argv.insert(argv.end(), spec.extra_args.begin(), spec.extra_args.end());
  return argv;
}

}  // namespace vmm::suite
