#include "devices/legacy/debugcon.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>

namespace devices {
namespace {

constexpr std::string_view kFilePrefix = "file:";

void WriteAll(int fd, std::span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // a closed stdout or a full disk loses debug output, not the guest
    }
    data = data.subspan(static_cast<size_t>(n));
  }
}

}  // namespace

base::Result<DebugconSpec> ParseDebugconSpec(std::string_view spec) {
  if (spec == "stdio") return DebugconSpec{DebugconSpec::Kind::kStdio, ""};
  if (spec == "none") return DebugconSpec{DebugconSpec::Kind::kNone, ""};
  if (spec.starts_with(kFilePrefix) && spec.size() > kFilePrefix.size()) {
    return DebugconSpec{DebugconSpec::Kind::kFile, std::string(spec.substr(kFilePrefix.size()))};
  }
  return base::MakeError(base::ErrorKind::kUsage,
                         "--debugcon '{}': expected stdio, file:PATH or none", spec);
}

base::Result<std::shared_ptr<Debugcon>> Debugcon::Create(const DebugconSpec& spec) {
  if (spec.kind == DebugconSpec::Kind::kNone) return std::shared_ptr<Debugcon>();
  if (spec.kind == DebugconSpec::Kind::kStdio) {
    return std::make_shared<Debugcon>(
        [](std::span<const uint8_t> data) { WriteAll(STDOUT_FILENO, data); });
  }
  const std::string& path = spec.path;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return base::MakeErrnoError(base::ErrorKind::kConfig, "--debugcon file {}", path);
  auto owner = std::make_shared<base::UniqueFd>(fd);
  return std::make_shared<Debugcon>(
      [owner](std::span<const uint8_t> data) { WriteAll(owner->get(), data); });
}

Debugcon::Debugcon(std::function<void(std::span<const uint8_t>)> sink) : sink_(std::move(sink)) {}

void Debugcon::Read(const BusAccess&, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), kReadBack);
}

void Debugcon::Write(const BusAccess&, std::span<const uint8_t> data) {
  bytes_out_ += data.size();
  if (sink_) sink_(data);
}

}  // namespace devices
