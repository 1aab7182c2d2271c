#include "firmware/unpack.h"

#include <gtest/gtest.h>
#include <lzma.h>
#include <zlib.h>

#include <cstring>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/zero_page.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using base::MiB;
using testing::BzImageBuilder;
using testing::ElfBuilder;
using testing::TempFile;
namespace bp = boot_params;

std::vector<uint8_t> Xz(const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(data.size() + 4096);
  size_t used = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, nullptr, data.data(), data.size(),
                                    out.data(), &used, out.size()),
            LZMA_OK);
  out.resize(used);
  return out;
}

std::vector<uint8_t> Gzip(const std::vector<uint8_t>& data) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<uint8_t> out(deflateBound(&stream, data.size()) + 64);
  stream.next_in = const_cast<Bytef*>(data.data());
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>((i * 7) ^ (i >> 9));
  return data;
}

TEST(Unpack, XzAndGzipRoundTrip) {
  const auto data = Pattern(5 * base::MiB + 123);  // more than one output chunk
  for (const auto& packed : {Xz(data), Gzip(data)}) {
    auto out = UnpackPayload(packed, "kernel image k");
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(*out, data);
  }
  // The kernel's xz payload ends with the 4-byte uncompressed size after the
  // stream: it is ignored.
  auto with_size = Xz(data);
  with_size.insert(with_size.end(), {0x7b, 0x00, 0x50, 0x00});
  auto out = UnpackPayload(with_size, "kernel image k");
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->size(), data.size());
}

TEST(Unpack, DetectsFormatsByMagic) {
  EXPECT_EQ(DetectPayloadFormat(Xz({1, 2, 3})), PayloadFormat::kXz);
  EXPECT_EQ(DetectPayloadFormat(Gzip({1, 2, 3})), PayloadFormat::kGzip);
  const std::vector<uint8_t> zstd = {0x28, 0xb5, 0x2f, 0xfd, 0, 0};
  EXPECT_EQ(DetectPayloadFormat(zstd), PayloadFormat::kZstd);
  auto refused = UnpackPayload(zstd, "kernel image /k");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().exit_status(), 65);
  EXPECT_NE(refused.error().message().find("zstd-compressed"), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("--boot-protocol bzimage"), std::string::npos);
  auto unknown = UnpackPayload(std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef}, "kernel image /k");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("de ad be ef"), std::string::npos)
      << unknown.error().message();
}

TEST(Unpack, CorruptTruncatedAndBombsAreBadImages) {
  const auto data = Pattern(256 * 1024);
  for (auto packed : {Xz(data), Gzip(data)}) {
    auto truncated = packed;
    truncated.resize(packed.size() / 2);
    auto out = UnpackPayload(truncated, "kernel image /k");
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().exit_status(), 65);
    EXPECT_NE(out.error().message().find("kernel image /k"), std::string::npos);

    auto corrupt = packed;
    for (size_t i = 20; i < corrupt.size(); i += 97) corrupt[i] ^= 0x5a;
    EXPECT_FALSE(UnpackPayload(corrupt, "kernel image /k"));

    auto bomb = UnpackPayload(packed, "kernel image /k", 64 * 1024);
    ASSERT_FALSE(bomb);
    EXPECT_NE(bomb.error().message().find("more than"), std::string::npos)
        << bomb.error().message();
  }
}

// An xz stream whose LZMA2 dictionary is set, in its block header, to 4 GiB:
// the decoder must refuse it by its memory limit, before allocating.
TEST(Unpack, XzWithAHugeDictionaryIsRefusedByTheMemoryLimit) {
  auto packed = Xz(Pattern(4096));
  // Stream header (12 bytes), then the block header: size byte, flags,
  // optional compressed/uncompressed sizes (varints), the filter flags
  // (id 0x21 = LZMA2, property size 1, the dictionary byte), padding, CRC32.
  const size_t block = 12;
  const size_t header_size = (size_t{packed[block]} + 1) * 4;
  size_t at = block + 2;
  auto skip_varint = [&] {
    while (packed[at] & 0x80) ++at;
    ++at;
  };
  if (packed[block + 1] & 0x40) skip_varint();
  if (packed[block + 1] & 0x80) skip_varint();
  ASSERT_EQ(packed[at], 0x21) << "LZMA2 filter";
  ASSERT_EQ(packed[at + 1], 1) << "one property byte";
  packed[at + 2] = 40;  // dictionary 4 GiB - 1
  const uint32_t crc =
      static_cast<uint32_t>(crc32(0, packed.data() + block, static_cast<uInt>(header_size - 4)));
  std::memcpy(packed.data() + block + header_size - 4, &crc, 4);
  auto out = UnpackPayload(packed, "kernel image /k");
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().exit_status(), 65);
  EXPECT_NE(out.error().message().find("decoder memory"), std::string::npos)
      << out.error().message();
}

BootConfig Unpacked(std::string path, std::string cmdline = "") {
  BootConfig config;
  config.kernel_path = std::move(path);
  config.cmdline = std::move(cmdline);
  config.protocol = BootProtocol::kBzImageUnpacked;
  return config;
}

TEST(Unpack, BzImageUnpackedEntersTheVmlinuxWithTheSetupHeadersZeroPage) {
  ElfBuilder elf;
  elf.entry = 0x1000040;
  elf.segments[0].paddr = elf.segments[0].vaddr = 0x1000000;
  BzImageBuilder builder;
  builder.payload = Gzip(elf.Build());
  TempFile kernel(builder.Build());
  auto memory = std::move(*base::GuestMemory::Create(64 * base::MiB));
  auto info = LoadKernel(*memory, Unpacked(kernel.path(), "console=ttyS0 word=unpacked"));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kBzImageUnpacked);
  EXPECT_EQ(info->cpu.rip, 0x1000040u);
  EXPECT_EQ(info->cpu.rsi, base::kZeroPage);
  EXPECT_EQ(info->cpu.cs.l, 1);
  EXPECT_EQ(info->kernel_start, 0x1000000u);
  EXPECT_EQ(info->kernel_end, 0x1000000u + builder.init_size);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x1000000), 0x90) << "the ELF's segment, not the bzImage";
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + bp::kHeader), bp::kHeaderMagic);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + bp::kCmdLinePtr), base::kCmdline);
  EXPECT_NE(info->description.find("unpacked by vmm (gzip"), std::string::npos)
      << info->description;
}

TEST(Unpack, BzImageUnpackedRejectsWhatIsNotAnElf64Payload) {
  BzImageBuilder builder;
  builder.payload = Gzip(Pattern(4096));  // unpacks, but is no ELF
  TempFile kernel(builder.Build());
  auto memory = std::move(*base::GuestMemory::Create(64 * base::MiB));
  auto info = LoadKernel(*memory, Unpacked(kernel.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("(its gzip payload)"), std::string::npos)
      << info.error().message();

  BzImageBuilder empty;  // no payload at all
  TempFile bare(empty.Build());
  auto none = LoadKernel(*memory, Unpacked(bare.path()));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("payload_length 0"), std::string::npos)
      << none.error().message();
}

TEST(Unpack, BootProtocolNameParses) {
  auto parsed = ParseBootProtocol("bzimage-unpacked");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, BootProtocol::kBzImageUnpacked);
  EXPECT_STREQ(BootProtocolName(BootProtocol::kBzImageUnpacked), "bzimage-unpacked");
}

}  // namespace
}  // namespace firmware
