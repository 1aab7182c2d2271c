// vmmfs: makes and edits vmmfs disk images (the bundled microkernel's file
// system, docs/guest-drivers.md) on the host.
//
//   vmmfs mkfs IMAGE SIZE          new empty volume (sparse file; SIZE takes K/M/G)
//   vmmfs ls IMAGE                 NAME SIZE fnv1a CHECKSUM per file
//   vmmfs put IMAGE HOSTFILE [NAME]  copy a host file in (create or replace)
//   vmmfs get IMAGE NAME [OUT]     copy a file out (to stdout without OUT)
//   vmmfs rm IMAGE NAME            delete a file
//
// Exit status: 0 ok, 64 usage, 65 not a vmmfs image or corrupt, 66 missing
// image, host file or name, 73 no space/directory full/cannot create OUT,
// 74 I/O error. Errors are one line on stderr naming the file and problem.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/vmmfs/vmmfs.h"

namespace {

constexpr const char* kUsage =
    "usage: vmmfs mkfs IMAGE SIZE\n"
    "       vmmfs ls IMAGE\n"
    "       vmmfs put IMAGE HOSTFILE [NAME]\n"
    "       vmmfs get IMAGE NAME [OUT]\n"
    "       vmmfs rm IMAGE NAME\n";

int Report(const vmmfs::Error& e) {
  fmt::print(stderr, "vmmfs: {}\n", e.message);
  return e.status;
}

int Usage(const std::string& why) {
  if (!why.empty()) fmt::print(stderr, "vmmfs: {}\n", why);
  fmt::print(stderr, "{}", kUsage);
  return vmmfs::kExitUsage;
}

vmmfs::Result<std::vector<uint8_t>> ReadHostFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(vmmfs::Error{errno == ENOENT ? vmmfs::kExitNoInput : vmmfs::kExitIoErr,
                                        fmt::format("{}: {}", path, std::strerror(errno))});
  }
  base::UniqueFd owner(fd);
  std::vector<uint8_t> data;
  uint8_t chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return std::unexpected(
          vmmfs::Error{vmmfs::kExitIoErr, fmt::format("{}: {}", path, std::strerror(errno))});
    }
    if (n == 0) break;
    data.insert(data.end(), chunk, chunk + n);
  }
  return data;
}

vmmfs::Result<void> WriteAll(int fd, const std::string& what, const std::vector<uint8_t>& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return std::unexpected(
          vmmfs::Error{vmmfs::kExitIoErr, fmt::format("{}: {}", what, std::strerror(errno))});
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("");
  const std::string& cmd = args[0];
  const size_t n = args.size();
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    fmt::print("{}", kUsage);
    return 0;
  }
  if (cmd == "mkfs") {
    if (n != 3) return Usage("mkfs takes IMAGE SIZE");
    auto size = vmmfs::ParseSize(args[2]);
    if (!size) return Report(size.error());
    if (auto r = vmmfs::Mkfs(args[1], *size); !r) return Report(r.error());
    return 0;
  }
  if (cmd == "ls") {
    if (n != 2) return Usage("ls takes IMAGE");
    auto v = vmmfs::Volume::Open(args[1], false);
    if (!v) return Report(v.error());
    const auto files = v->List();
    for (const auto& f : files) fmt::print("{} {} fnv1a {:#010x}\n", f.name, f.size, f.checksum);
    fmt::print("{} files, {} KiB free of {} KiB\n", files.size(), v->FreeSectors() / 2,
               v->TotalSectors() / 2);
    return 0;
  }
  if (cmd == "put") {
    if (n != 3 && n != 4) return Usage("put takes IMAGE HOSTFILE [NAME]");
    const std::string name = n == 4 ? args[3] : BaseName(args[2]);
    if (auto r = vmmfs::CheckName(name); !r) return Report(r.error());
    auto data = ReadHostFile(args[2]);
    if (!data) return Report(data.error());
    auto v = vmmfs::Volume::Open(args[1], true);
    if (!v) return Report(v.error());
    if (auto r = v->Write(name, *data); !r) return Report(r.error());
    return 0;
  }
  if (cmd == "get") {
    if (n != 3 && n != 4) return Usage("get takes IMAGE NAME [OUT]");
    auto v = vmmfs::Volume::Open(args[1], false);
    if (!v) return Report(v.error());
    auto data = v->Read(args[2]);
    if (!data) return Report(data.error());
    if (n == 3) {
      if (auto r = WriteAll(STDOUT_FILENO, "stdout", *data); !r) return Report(r.error());
      return 0;
    }
    const int fd = ::open(args[3].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Report({vmmfs::kExitCantCreate, fmt::format("{}: {}", args[3], std::strerror(errno))});
    }
    base::UniqueFd owner(fd);
    if (auto r = WriteAll(fd, args[3], *data); !r) return Report(r.error());
    return 0;
  }
  if (cmd == "rm") {
    if (n != 3) return Usage("rm takes IMAGE NAME");
    auto v = vmmfs::Volume::Open(args[1], true);
    if (!v) return Report(v.error());
    if (auto r = v->Remove(args[2]); !r) return Report(r.error());
    return 0;
  }
  return Usage(fmt::format("unknown command '{}'", cmd));
}

}  // namespace

int main(int argc, char** argv) { return Run(std::vector<std::string>(argv + 1, argv + argc)); }
