#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "devices/virtio/block/block.h"
#include "tests/unit/devices/fake_irq_line.h"
#include "tests/unit/devices/virtio_test_util.h"

namespace devices::virtio {
namespace {

using testing::MakeMemory;
using testing::MmioDriver;
using testing::TestRing;

constexpr uint64_t kHeader = 0x400000;
constexpr uint64_t kBuffer = 0x500000;
constexpr uint64_t kStatus = 0x600000;
constexpr uint64_t kDiskBytes = 64 * 1024;

class TempImage {
 public:
  TempImage() {
    char name[] = "/tmp/vmm-blk-test-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    path_ = name;
    std::vector<uint8_t> pattern(kDiskBytes);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i / 512);
    EXPECT_EQ(write(fd, pattern.data(), pattern.size()), static_cast<ssize_t>(pattern.size()));
    close(fd);
  }
  ~TempImage() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  std::vector<uint8_t> Contents() const {
    std::vector<uint8_t> bytes(kDiskBytes);
    const int fd = open(path_.c_str(), O_RDONLY);
    EXPECT_EQ(pread(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    close(fd);
    return bytes;
  }

 private:
  std::string path_;
};

class BlockTest : public ::testing::Test {
 protected:
  void SetUpDevice(bool read_only) {
    auto block = Block::Create(image_.path(), read_only);
    ASSERT_TRUE(block.has_value()) << block.error().ToString();
    block_ = *block;
    mmio_ = VirtioMmio::Create(block_, *memory_, irq_);
    driver_ = std::make_unique<MmioDriver>(*mmio_);
    driver_->BringUp({&ring_});
  }

  // Submits header + data + status as one chain (descriptors 0..2) and
  // returns the status byte; `used_len` receives the used length.
  uint8_t Submit(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable,
                 uint32_t* used_len = nullptr) {
    Block::RequestHeader header{type, 0, sector};
    EXPECT_TRUE(memory_->WriteObj(kHeader, header));
    EXPECT_TRUE(memory_->WriteObj<uint8_t>(kStatus, 0xee));
    uint16_t index = 0;
    ring_.SetDesc(index, kHeader, sizeof(header), kDescNext, 1);
    ++index;
    if (data_len != 0) {
      ring_.SetDesc(index, kBuffer, data_len,
                    static_cast<uint16_t>(kDescNext | (data_writable ? kDescWrite : 0)), 2);
      ++index;
    }
    ring_.SetDesc(index, kStatus, 1, kDescWrite);
    ring_.Publish(0);
    const uint16_t before = ring_.UsedIdx();
    driver_->Notify(0);
    block_->WaitIdle();  // the request ran on the block's worker thread
    EXPECT_EQ(ring_.UsedIdx(), static_cast<uint16_t>(before + 1));
    if (used_len) *used_len = ring_.Used(before).len;
    return *memory_->ReadObj<uint8_t>(kStatus);
  }

  TempImage image_;
  std::unique_ptr<base::GuestMemory> memory_ = MakeMemory();
  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  TestRing ring_{*memory_, 256, 0x100000};
  std::shared_ptr<Block> block_;
  std::shared_ptr<VirtioMmio> mmio_;
  std::unique_ptr<MmioDriver> driver_;
};

TEST_F(BlockTest, ConfigReportsCapacitySegMaxAndBlockSize) {
  SetUpDevice(false);
  EXPECT_EQ(driver_->Read(VirtioMmio::kRegDeviceId), kDeviceIdBlock);
  EXPECT_EQ(driver_->Read(VirtioMmio::kConfigOffset + 0), kDiskBytes / 512);
  EXPECT_EQ(driver_->Read(VirtioMmio::kConfigOffset + 4), 0u);
  EXPECT_EQ(driver_->Read(VirtioMmio::kConfigOffset + 12), 254u);
  EXPECT_EQ(driver_->Read(VirtioMmio::kConfigOffset + 20), 512u);
  const uint64_t features = block_->device_features();
  EXPECT_TRUE(features & Block::kFeatureFlush);
  EXPECT_FALSE(features & Block::kFeatureRo);
}

TEST_F(BlockTest, ConfigAdvertisesSizeMaxAndRequestsOverItAreIoErr) {
  SetUpDevice(false);
  EXPECT_TRUE(block_->device_features() & Block::kFeatureSizeMax);
  EXPECT_EQ(driver_->Read(VirtioMmio::kConfigOffset + 8), Block::kSizeMax);
  // One segment over size_max: refused before any host I/O.
  EXPECT_EQ(Submit(Block::kTypeIn, 0, Block::kSizeMax + 512, true), Block::kStatusIoErr);
  EXPECT_EQ(block_->block_counters().over_limit, 1u);
  EXPECT_EQ(block_->block_counters().reads, 0u);
  // At the limit is fine (as far as the limits go; this disk is smaller).
  EXPECT_EQ(Submit(Block::kTypeIn, 0, 4096, true), Block::kStatusOk);
  EXPECT_EQ(block_->block_counters().over_limit, 1u);
}

TEST_F(BlockTest, ReadReturnsImageBytes) {
  SetUpDevice(false);
  uint32_t used = 0;
  EXPECT_EQ(Submit(Block::kTypeIn, 3, 1024, true, &used), Block::kStatusOk);
  EXPECT_EQ(used, 1025u);
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kBuffer), 3);
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kBuffer + 1023), 4);
  EXPECT_TRUE(irq_->level());
}

TEST_F(BlockTest, WriteFlushAndReadBack) {
  SetUpDevice(false);
  std::vector<uint8_t> pattern(2048);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 13 + 7);
  ASSERT_TRUE(memory_->Write(kBuffer, pattern));
  uint32_t used = 0;
  EXPECT_EQ(Submit(Block::kTypeOut, 10, 2048, false, &used), Block::kStatusOk);
  EXPECT_EQ(used, 1u);
  EXPECT_EQ(Submit(Block::kTypeFlush, 0, 0, false), Block::kStatusOk);
  const auto contents = image_.Contents();
  EXPECT_EQ(std::memcmp(contents.data() + 10 * 512, pattern.data(), pattern.size()), 0);
  ASSERT_TRUE(memory_->Fill(kBuffer, 0, 2048));
  EXPECT_EQ(Submit(Block::kTypeIn, 10, 2048, true), Block::kStatusOk);
  std::vector<uint8_t> back(2048);
  ASSERT_TRUE(memory_->Read(kBuffer, back));
  EXPECT_EQ(back, pattern);
  EXPECT_EQ(block_->block_counters().writes, 1u);
  EXPECT_EQ(block_->block_counters().flushes, 1u);
}

TEST_F(BlockTest, ScatteredDataSegmentsAreReadInOrder) {
  SetUpDevice(false);
  Block::RequestHeader header{Block::kTypeIn, 0, 1};
  ASSERT_TRUE(memory_->WriteObj(kHeader, header));
  ring_.SetDesc(0, kHeader, 16, kDescNext, 1);
  ring_.SetDesc(1, kBuffer + 0x1000, 100, kDescNext | kDescWrite, 2);
  ring_.SetDesc(2, kBuffer, 412 + 512, kDescNext | kDescWrite, 3);
  ring_.SetDesc(3, kStatus, 1, kDescWrite);
  ring_.Publish(0);
  driver_->Notify(0);
  block_->WaitIdle();
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kStatus), Block::kStatusOk);
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kBuffer + 0x1000), 1);
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kBuffer + 411), 1);
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kBuffer + 412), 2);
}

TEST_F(BlockTest, ReadOnlyDiskRejectsWritesWithIoErr) {
  SetUpDevice(true);
  EXPECT_TRUE(block_->device_features() & Block::kFeatureRo);
  ASSERT_TRUE(memory_->Fill(kBuffer, 0xaa, 512));
  EXPECT_EQ(Submit(Block::kTypeOut, 0, 512, false), Block::kStatusIoErr);
  EXPECT_EQ(image_.Contents()[0], 0);
  EXPECT_EQ(Submit(Block::kTypeIn, 0, 512, true), Block::kStatusOk);
  EXPECT_EQ(Submit(Block::kTypeFlush, 0, 0, false), Block::kStatusOk);
}

TEST_F(BlockTest, UnknownTypeIsUnsupported) {
  SetUpDevice(false);
  EXPECT_EQ(Submit(11, 0, 0, false), Block::kStatusUnsupp);  // DISCARD, not offered
  EXPECT_EQ(Submit(0x7fff, 0, 512, true), Block::kStatusUnsupp);
  EXPECT_EQ(block_->block_counters().unsupported, 2u);
  EXPECT_EQ(mmio_->status() & kStatusNeedsReset, 0u);
}

TEST_F(BlockTest, OutOfRangeSectorsAndOddLengthsAreIoErr) {
  SetUpDevice(false);
  EXPECT_EQ(Submit(Block::kTypeIn, kDiskBytes / 512, 512, true), Block::kStatusIoErr);
  EXPECT_EQ(Submit(Block::kTypeIn, kDiskBytes / 512 - 1, 1024, true), Block::kStatusIoErr);
  EXPECT_EQ(Submit(Block::kTypeIn, UINT64_MAX, 512, true), Block::kStatusIoErr);
  EXPECT_EQ(Submit(Block::kTypeOut, UINT64_MAX / 512, 512, false), Block::kStatusIoErr);
  EXPECT_EQ(Submit(Block::kTypeIn, 0, 100, true), Block::kStatusIoErr);
  EXPECT_EQ(Submit(Block::kTypeIn, kDiskBytes / 512 - 1, 512, true), Block::kStatusOk);
  EXPECT_EQ(block_->block_counters().io_errors, 5u);
}

TEST_F(BlockTest, ShortHeaderIsIoErr) {
  SetUpDevice(false);
  ring_.SetDesc(0, kHeader, 8, kDescNext, 1);
  ring_.SetDesc(1, kStatus, 1, kDescWrite);
  ring_.Publish(0);
  driver_->Notify(0);
  block_->WaitIdle();
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kStatus), Block::kStatusIoErr);
}

TEST_F(BlockTest, RequestWithoutStatusByteIsReturnedUnanswered) {
  SetUpDevice(false);
  ring_.SetDesc(0, kHeader, 16);
  ring_.Publish(0);
  driver_->Notify(0);
  block_->WaitIdle();
  EXPECT_EQ(ring_.UsedIdx(), 1);
  EXPECT_EQ(ring_.Used(0).len, 0u);
  EXPECT_EQ(mmio_->status() & kStatusNeedsReset, 0u);
}

TEST_F(BlockTest, GetIdReturnsTheImageName) {
  SetUpDevice(false);
  uint32_t used = 0;
  EXPECT_EQ(Submit(Block::kTypeGetId, 0, 20, true, &used), Block::kStatusOk);
  EXPECT_EQ(used, 21u);
  char id[21] = {};
  ASSERT_TRUE(memory_->Read(kBuffer, std::span(reinterpret_cast<uint8_t*>(id), 20)));
  const std::string name = image_.path().substr(image_.path().rfind('/') + 1);
  EXPECT_EQ(std::string(id), name.substr(0, 20));
}

TEST(Block, MissingImageIsNoInput) {
  auto block = Block::Create("/nonexistent/disk.img", false);
  ASSERT_FALSE(block.has_value());
  EXPECT_EQ(block.error().kind(), base::ErrorKind::kNoInput);
  EXPECT_NE(block.error().ToString().find("/nonexistent/disk.img"), std::string::npos);
}

TEST(Block, SecondWriterIsRefused) {
  TempImage image;
  auto first = Block::Create(image.path(), false);
  ASSERT_TRUE(first.has_value());
  auto second = Block::Create(image.path(), false);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind(), base::ErrorKind::kConfig);
}

}  // namespace
}  // namespace devices::virtio
