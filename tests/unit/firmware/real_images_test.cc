// LoadKernel against real kernels found on this machine: Debian's bzImage
// (/boot/vmlinuz-*), the vmlinux inside it (decompressed at test time), and
// memtest86+ (a second, independent bzImage). `make test` installs
// linux-image-amd64 and memtest86+; a test skips loudly only when its file is
// missing.
#include <dirent.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <algorithm>
#include <optional>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/bzimage.h"
#include "firmware/cpu_setup.h"
#include "firmware/elf.h"
#include "firmware/image_file.h"
#include "firmware/pvh.h"
#include "firmware/zero_page.h"
#include "tests/unit/firmware/test_images.h"

#if VMM_HAVE_LZMA
#include <lzma.h>
#endif

namespace firmware {
namespace {

using base::MiB;
namespace bp = boot_params;

std::optional<std::vector<uint8_t>> ReadAll(const std::string& path) {
  auto data = ReadImageFile(path, "test image", kMaxKernelImageBytes);
  if (!data) return std::nullopt;
  return std::move(*data);
}

// The newest /boot/vmlinuz-* (Debian's linux-image-amd64).
std::string FindDebianKernel() {
  std::string best;
  if (DIR* dir = opendir("/boot")) {
    while (dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name.rfind("vmlinuz-", 0) == 0 && name > best) best = name;
    }
    closedir(dir);
  }
  return best.empty() ? "" : "/boot/" + best;
}

constexpr const char* kMemtest = "/boot/memtest86+x64.bin";
constexpr const char* kMemtest32 = "/boot/memtest86+ia32.bin";

#define SKIP_IF_MISSING(path)                                                                     \
  if ((path).empty() || access((path).c_str(), R_OK) != 0)                                        \
  GTEST_SKIP() << "SKIPPED LOUDLY: " << ((path).empty() ? "/boot/vmlinuz-*" : (path))             \
               << " is not on this machine; install linux-image-amd64 and memtest86+ (make test " \
                  "does)"

BootConfig Config(std::string path, std::string cmdline = "", std::vector<std::string> initrds = {},
                  BootProtocol protocol = BootProtocol::kAuto) {
  BootConfig config;
  config.kernel_path = std::move(path);
  config.cmdline = std::move(cmdline);
  config.initrd_paths = std::move(initrds);
  config.protocol = protocol;
  return config;
}

TEST(DebianBzImage, HeaderFieldsAndVersionStringMatchTheFileName) {
  const std::string path = FindDebianKernel();
  SKIP_IF_MISSING(path);
  const auto file = *ReadAll(path);
  auto header = ParseBzImage(file, path);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_GE(header->version, 0x020c);
  EXPECT_TRUE(header->xloadflags & bp::kXlfKernel64);
  EXPECT_TRUE(header->relocatable);
  EXPECT_EQ(header->pref_address, 0x1000000u);  // CONFIG_PHYSICAL_START
  EXPECT_GT(header->init_size, header->kernel_size);
  EXPECT_EQ(header->kernel_alignment % 0x200000, 0u);
  EXPECT_GT(header->payload_length, 0u);
  // "vmlinuz-6.1.0-56-amd64" -> the version string starts with "6.1.0-56-amd64 ".
  const std::string release = path.substr(path.rfind("vmlinuz-") + 8);
  EXPECT_EQ(header->kernel_version.rfind(release + " ", 0), 0u)
      << "version string '" << header->kernel_version << "' vs file name " << path;
}

TEST(DebianBzImage, LoadsWithZeroPageAndInitrdPlacement) {
  const std::string path = FindDebianKernel();
  SKIP_IF_MISSING(path);
  testing::TempFile initrd(std::vector<uint8_t>(3 * base::MiB + 5, 0x42), "initrd.img");
  auto memory = std::move(*base::GuestMemory::Create(256 * base::MiB));
  auto info = LoadKernel(
      *memory, Config(path, "console=ttyS0 earlyprintk=serial vmmword=xyzzy", {initrd.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kBzImage);
  EXPECT_EQ(info->cpu.rip, 0x1000200u);
  EXPECT_EQ(info->cpu.rsi, base::kZeroPage);
  EXPECT_EQ(info->cpu.cs.l, 1);
  auto zp = [&](uint64_t offset) { return *memory->ReadObj<uint32_t>(base::kZeroPage + offset); };
  EXPECT_EQ(zp(bp::kHeader), bp::kHeaderMagic);
  EXPECT_EQ(*memory->ReadObj<uint16_t>(base::kZeroPage + bp::kBootFlag), 0xaa55);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kZeroPage + bp::kTypeOfLoader), 0xff);
  EXPECT_EQ(zp(bp::kCmdLinePtr), base::kCmdline);
  EXPECT_EQ(zp(bp::kInitSize), info->kernel_end - info->kernel_start);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kZeroPage + bp::kE820Entries), 3);
  // The initrd: page aligned, below initrd_addr_max and RAM's end, clear of
  // [pref_address, pref_address + init_size).
  const uint64_t image = zp(bp::kRamdiskImage);
  EXPECT_EQ(zp(bp::kRamdiskSize), 3 * base::MiB + 5);
  EXPECT_EQ(image % 4096, 0u);
  EXPECT_GE(image, info->kernel_end);
  EXPECT_LE(image + 3 * base::MiB + 5, 256 * base::MiB);
  EXPECT_LE(image + 3 * base::MiB + 5, uint64_t{zp(bp::kInitrdAddrMax)} + 1);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(image), 0x42);
  // The protected-mode kernel sits at the load address.
  const auto file = *ReadAll(path);
  const uint64_t setup = (uint64_t{file[0x1f1]} + 1) * 512;
  EXPECT_EQ(*memory->ReadObj<uint64_t>(0x1000000), testing::GetAt<uint64_t>(file, setup));
}

// --boot-protocol bzimage-unpacked: vmm decompresses the payload (xz) and
// enters the vmlinux inside at its ELF64 entry with the bzImage's zero page.
TEST(DebianBzImage, UnpackedOnTheHostEntersTheVmlinux) {
  const std::string path = FindDebianKernel();
  SKIP_IF_MISSING(path);
  auto memory = std::move(*base::GuestMemory::Create(256 * base::MiB));
  auto info =
      LoadKernel(*memory, Config(path, "console=ttyS0", {}, BootProtocol::kBzImageUnpacked));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kBzImageUnpacked);
  EXPECT_EQ(info->cpu.rip, 0x1000000u) << "startup_64 at LOAD_PHYSICAL_ADDR";
  EXPECT_EQ(info->cpu.rsi, base::kZeroPage);
  EXPECT_NE(info->description.find("unpacked by vmm (xz"), std::string::npos) << info->description;
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + bp::kHeader), bp::kHeaderMagic);
  EXPECT_GE(info->kernel_end - info->kernel_start,
            uint64_t{*memory->ReadObj<uint32_t>(base::kZeroPage + bp::kInitSize)});
}

TEST(DebianBzImage, CommandLineOverItsCmdlineSizeIsRejected) {
  const std::string path = FindDebianKernel();
  SKIP_IF_MISSING(path);
  auto memory = std::move(*base::GuestMemory::Create(256 * base::MiB));
  auto info = LoadKernel(*memory, Config(path, std::string(4096, 'x')));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
}

TEST(Memtest, IsABzImageWithA64BitEntry) {
  const std::string path = kMemtest;
  SKIP_IF_MISSING(path);
  auto memory = std::move(*base::GuestMemory::Create(64 * base::MiB));
  auto info = LoadKernel(*memory, Config(path, "console=ttyS0"));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kBzImage);
  const auto file = *ReadAll(path);
  auto header = ParseBzImage(file, path);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->kernel_version.rfind("Memtest86+", 0), 0u) << header->kernel_version;
  EXPECT_FALSE(header->relocatable);
  EXPECT_EQ(info->cpu.rip, header->pref_address + 0x200);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + bp::kHeader), bp::kHeaderMagic);
}

TEST(Memtest, The32BitBuildHasNo64BitEntry) {
  const std::string path = kMemtest32;
  SKIP_IF_MISSING(path);
  auto memory = std::move(*base::GuestMemory::Create(64 * base::MiB));
  auto info = LoadKernel(*memory, Config(path));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("no 64-bit entry point"), std::string::npos)
      << info.error().message();
}

#if VMM_HAVE_LZMA
// Decompresses the bzImage's payload (Debian: xz) into a vmlinux file once
// for the suite.
class DebianVmlinux : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = FindDebianKernel();
    if (path.empty()) return;
    const auto file = ReadAll(path);
    if (!file) return;
    auto header = ParseBzImage(*file, path);
    if (!header) {
      error_ = header.error().message();
      return;
    }
    const uint64_t start = header->setup_size + header->payload_offset;
    std::span<const uint8_t> payload(file->data() + start, header->payload_length);
    if (payload.size() < 6 || std::memcmp(payload.data(),
                                          "\xfd"
                                          "7zXZ",
                                          5) != 0) {
      error_ = "payload is not xz (Debian's kernels are CONFIG_KERNEL_XZ)";
      return;
    }
    lzma_stream stream = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&stream, UINT64_MAX, 0) != LZMA_OK) {
      error_ = "lzma_stream_decoder failed";
      return;
    }
    std::vector<uint8_t> out(128 * base::MiB);
    stream.next_in = payload.data();
    stream.avail_in = payload.size();
    stream.next_out = out.data();
    stream.avail_out = out.size();
    lzma_ret ret = LZMA_OK;
    while (ret == LZMA_OK) ret = lzma_code(&stream, LZMA_FINISH);
    const size_t produced = out.size() - stream.avail_out;
    lzma_end(&stream);
    if (ret != LZMA_STREAM_END) {
      error_ = "xz decompression failed with lzma_ret " + std::to_string(ret);
      return;
    }
    out.resize(produced);
    vmlinux_ = std::make_unique<testing::TempFile>(out, "vmlinux");
  }
  static void TearDownTestSuite() { vmlinux_.reset(); }

  void SetUp() override {
    if (!error_.empty()) FAIL() << "extracting vmlinux: " << error_;
    if (!vmlinux_) {
      GTEST_SKIP() << "SKIPPED LOUDLY: no /boot/vmlinuz-* on this machine; install "
                      "linux-image-amd64 (make test does)";
    }
  }

  static inline std::unique_ptr<testing::TempFile> vmlinux_;
  static inline std::string error_;
};

TEST_F(DebianVmlinux, IsElf64WithPvhNote) {
  const auto file = *ReadAll(vmlinux_->path());
  auto elf = ParseElf(file, vmlinux_->path());
  ASSERT_TRUE(elf) << elf.error().message();
  EXPECT_TRUE(elf->is64);
  ASSERT_TRUE(elf->pvh_entry);
  EXPECT_EQ(elf->entry, 0x1000000u);  // phys_startup_64 at CONFIG_PHYSICAL_START
  EXPECT_GE(elf->lowest, 0x1000000u);
}

TEST_F(DebianVmlinux, DefaultsToThe64BitEntry) {
  auto memory = std::move(*base::GuestMemory::Create(256 * base::MiB));
  auto info = LoadKernel(*memory, Config(vmlinux_->path(), "console=ttyS0 vmmword=elf64"));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kElf64);
  EXPECT_EQ(info->cpu.rip, 0x1000000u);
  EXPECT_EQ(info->cpu.rsi, base::kZeroPage);
  EXPECT_EQ(info->cpu.efer & kEferLma, kEferLma);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + bp::kHeader), bp::kHeaderMagic);
}

TEST_F(DebianVmlinux, ForcedPvhUsesTheNoteEntry) {
  const auto file = *ReadAll(vmlinux_->path());
  const auto elf = *ParseElf(file, vmlinux_->path());
  testing::TempFile initrd(std::vector<uint8_t>(base::MiB, 0x17), "initrd.img");
  auto memory = std::move(*base::GuestMemory::Create(256 * base::MiB));
  auto info = LoadKernel(*memory, Config(vmlinux_->path(), "console=ttyS0 vmmword=pvh",
                                         {initrd.path()}, BootProtocol::kPvh));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kPvh);
  EXPECT_EQ(info->cpu.rip, *elf.pvh_entry);
  EXPECT_EQ(info->cpu.rbx, base::kPvhStartInfo);
  EXPECT_EQ(info->cpu.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kPvhStartInfo), kHvmStartMagic);
  EXPECT_GE(info->initrd_start, info->kernel_end);
}
#else
TEST(DebianVmlinux, NeedsLiblzma) {
  GTEST_SKIP() << "SKIPPED LOUDLY: built without liblzma-dev; the vmlinux tests need it to "
                  "decompress Debian's bzImage payload";
}
#endif

}  // namespace
}  // namespace firmware

namespace firmware {
namespace {

// The project's own multiboot image (tests/fixtures/multiboot): found by its
// header, loaded by its address fields. Booting it is a KVM test.
TEST(MultibootProbe, LoadsByAddressFields) {
  const std::string path = VMM_MULTIBOOT_PROBE;
  testing::TempFile module(std::vector<uint8_t>(100, 1), "module.img");
  auto memory = std::move(*base::GuestMemory::Create(64 * base::MiB));
  auto info = LoadKernel(*memory, Config(path, "word=hello", {module.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kMultiboot);
  EXPECT_EQ(info->cpu.rax, 0x2badb002u);
  EXPECT_EQ(info->kernel_start, 0x100000u);
  EXPECT_GT(info->cpu.rip, 0x100000u);
  EXPECT_LT(info->cpu.rip, info->kernel_end);
  EXPECT_NE(info->description.find("address fields"), std::string::npos) << info->description;
}

}  // namespace
}  // namespace firmware
