#include "firmware/unpack.h"

#include <fmt/format.h>
#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;

constexpr size_t kChunk = 4 << 20;  // output grows by this much at a time

bool StartsWith(std::span<const uint8_t> data, std::initializer_list<uint8_t> magic) {
  return data.size() >= magic.size() && std::equal(magic.begin(), magic.end(), data.begin());
}

base::Result<std::vector<uint8_t>> UnpackXz(std::span<const uint8_t> payload, std::string_view name,
                                            uint64_t limit) {
  lzma_stream stream = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&stream, kXzMemoryLimit, 0) != LZMA_OK) {
    return base::MakeError(base::ErrorKind::kInternal, "{}: cannot start the xz decoder", name);
  }
  std::vector<uint8_t> out;
  stream.next_in = payload.data();
  stream.avail_in = payload.size();
  lzma_ret ret = LZMA_OK;
  while (ret == LZMA_OK) {
    const size_t used = out.size() - stream.avail_out;
    if (stream.avail_out == 0) {
      if (out.size() >= limit) break;
      out.resize(std::min<uint64_t>(out.size() + kChunk, limit));
      stream.next_out = out.data() + used;
      stream.avail_out = out.size() - used;
    }
    // LZMA_FINISH: the payload is all there is. The kernel's xz payload ends
    // with the stream; anything after it (the 4-byte size) is left unread.
    ret = lzma_code(&stream, LZMA_FINISH);
  }
  const uint64_t produced = stream.total_out;
  lzma_end(&stream);
  if (ret != LZMA_STREAM_END) {
    if (ret == LZMA_MEMLIMIT_ERROR) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: the xz payload needs more than {} MiB of decoder memory (its "
                             "dictionary); vmm allows {} MiB",
                             name, kXzMemoryLimit >> 20, kXzMemoryLimit >> 20);
    }
    if (ret == LZMA_OK) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: the xz payload unpacks to more than {} MiB", name, limit >> 20);
    }
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: the xz payload is corrupt or truncated (liblzma "
                           "error {})",
                           name, static_cast<int>(ret));
  }
  out.resize(produced);
  return out;
}

base::Result<std::vector<uint8_t>> UnpackGzip(std::span<const uint8_t> payload,
                                              std::string_view name, uint64_t limit) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {  // 16: gzip header and trailer
    return base::MakeError(base::ErrorKind::kInternal, "{}: cannot start the gzip decoder", name);
  }
  std::vector<uint8_t> out;
  stream.next_in = const_cast<Bytef*>(payload.data());
  uint64_t in_left = payload.size();
  int ret = Z_OK;
  while (ret == Z_OK) {
    if (stream.avail_in == 0) {
      const auto n = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      if (n == 0) break;
      stream.avail_in = n;
      in_left -= n;
    }
    if (stream.avail_out == 0) {
      if (out.size() >= limit) break;
      const size_t used = out.size();
      out.resize(std::min<uint64_t>(out.size() + kChunk, limit));
      stream.next_out = out.data() + used;
      stream.avail_out = static_cast<uInt>(out.size() - used);
    }
    ret = inflate(&stream, Z_NO_FLUSH);
  }
  const uint64_t produced = stream.total_out;
  inflateEnd(&stream);
  if (ret != Z_STREAM_END) {
    if (ret == Z_OK && out.size() >= limit) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: the gzip payload unpacks to more than {} MiB", name, limit >> 20);
    }
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: the gzip payload is corrupt or truncated (zlib error {})", name,
                           ret);
  }
  out.resize(produced);
  return out;
}

}  // namespace

PayloadFormat DetectPayloadFormat(std::span<const uint8_t> payload) {
  // Magic numbers: the formats' own specifications, as the kernel's
  // scripts/extract-vmlinux lists them.
  if (StartsWith(payload, {0xfd, '7', 'z', 'X', 'Z', 0x00})) return PayloadFormat::kXz;
  if (StartsWith(payload, {0x1f, 0x8b})) return PayloadFormat::kGzip;
  if (StartsWith(payload, {0x28, 0xb5, 0x2f, 0xfd})) return PayloadFormat::kZstd;
  if (StartsWith(payload, {0x5d, 0x00, 0x00})) return PayloadFormat::kLzma;
  if (StartsWith(payload, {'B', 'Z', 'h'})) return PayloadFormat::kBzip2;
  if (StartsWith(payload, {0x02, 0x21, 0x4c, 0x18})) return PayloadFormat::kLz4;
  if (StartsWith(payload, {0x89, 'L', 'Z', 'O'})) return PayloadFormat::kLzo;
  return PayloadFormat::kUnknown;
}

const char* PayloadFormatName(PayloadFormat format) {
  switch (format) {
    case PayloadFormat::kXz:
      return "xz";
    case PayloadFormat::kGzip:
      return "gzip";
    case PayloadFormat::kZstd:
      return "zstd";
    case PayloadFormat::kLzma:
      return "lzma";
    case PayloadFormat::kBzip2:
      return "bzip2";
    case PayloadFormat::kLz4:
      return "lz4";
    case PayloadFormat::kLzo:
      return "lzo";
    case PayloadFormat::kUnknown:
      return "unknown";
  }
  return "unknown";
}

base::Result<std::vector<uint8_t>> UnpackPayload(std::span<const uint8_t> payload,
                                                 std::string_view name, uint64_t limit) {
  const PayloadFormat format = DetectPayloadFormat(payload);
  switch (format) {
    case PayloadFormat::kXz:
      return UnpackXz(payload, name, limit);
    case PayloadFormat::kGzip:
      return UnpackGzip(payload, name, limit);
    case PayloadFormat::kUnknown:
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: the payload's compression is not recognised (first bytes {:02x})",
                             name,
                             fmt::join(payload.first(std::min<size_t>(payload.size(), 6)), " "));
    default:
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: the payload is {}-compressed; vmm unpacks xz and gzip (boot it with "
          "--boot-protocol bzimage, which runs the kernel's own decompressor)",
          name, PayloadFormatName(format));
  }
}

}  // namespace firmware
