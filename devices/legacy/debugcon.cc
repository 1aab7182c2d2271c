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

base::Result<void> ValidateDebugconSpec(std::string_view spec) {
  if (spec == "stdio" || spec == "none") return {};
  if (spec.starts_with(kFilePrefix) && spec.size() > kFilePrefix.size()) return {};
  return base::MakeError(base::ErrorKind::kUsage,
                         "--debugcon '{}': expected stdio, file:PATH or none", spec);
}

base::Result<std::shared_ptr<Debugcon>> Debugcon::Create(std::string_view spec) {
  TRY(ValidateDebugconSpec(spec));
  if (spec == "none") return std::shared_ptr<Debugcon>();
  if (spec == "stdio") {
    return std::make_shared<Debugcon>(
        [](std::span<const uint8_t> data) { WriteAll(STDOUT_FILENO, data); });
  }
  const std::string path(spec.substr(kFilePrefix.size()));
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
