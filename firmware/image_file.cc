#include "firmware/image_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace firmware {

base::Result<std::vector<uint8_t>> ReadImageFile(const std::string& path, const char* what,
                                                 uint64_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}", what, path);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}: fstat", what, path);
  }
  if (!S_ISREG(st.st_mode)) {
    return base::MakeError(base::ErrorKind::kNoInput, "{} {}: not a regular file", what, path);
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{} {}: {} bytes is larger than the {} bytes allowed", what, path,
                           static_cast<uint64_t>(st.st_size), max_bytes);
  }
  if (st.st_size == 0) {
    return base::MakeError(base::ErrorKind::kBadImage, "{} {}: the file is empty", what, path);
  }
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = read(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}: read at offset {:#x}", what,
                                  path, done);
    }
    if (n == 0) break;  // the file shrank under us; keep what is there
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  if (data.empty()) {
    return base::MakeError(base::ErrorKind::kBadImage, "{} {}: the file is empty", what, path);
  }
  return data;
}

}  // namespace firmware
