#include "devices/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace devices {
namespace {

class Recorder : public BusDevice {
 public:
  explicit Recorder(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override {
    for (auto& byte : data) byte = static_cast<uint8_t>(access.offset);
  }
  void Write(const BusAccess& access, std::span<const uint8_t>) override {
    offsets.push_back(access.offset);
  }
  std::vector<uint64_t> offsets;

 private:
  std::string name_;
};

TEST(Bus, InsertAndFindByUpperBound) {
  Bus bus("pio");
  auto a = std::make_shared<Recorder>("a");
  auto b = std::make_shared<Recorder>("b");
  ASSERT_TRUE(bus.Insert(a, 0x3f8, 8));
  ASSERT_TRUE(bus.Insert(b, 0x400, 1));
  EXPECT_EQ(bus.Find(0x3f7), nullptr);
  EXPECT_EQ(bus.Find(0x3f8)->device, a);
  EXPECT_EQ(bus.Find(0x3ff)->device, a);
  EXPECT_EQ(bus.Find(0x400)->device, b);
  EXPECT_EQ(bus.Find(0x401), nullptr);
  uint8_t byte = 0;
  EXPECT_TRUE(bus.Read(0x3fd, std::span(&byte, 1)));
  EXPECT_EQ(byte, 5);
  EXPECT_TRUE(bus.Write(0x3f9, std::span(&byte, 1)));
  EXPECT_EQ(a->offsets, std::vector<uint64_t>{1});
  EXPECT_FALSE(bus.Write(0x500, std::span(&byte, 1)));
}

TEST(Bus, InsertOverlappingRangeFails) {
  Bus bus("mmio");
  auto dev = std::make_shared<Recorder>("dev");
  ASSERT_TRUE(bus.Insert(dev, 0x1000, 0x1000));
  EXPECT_FALSE(bus.Insert(dev, 0x1000, 1));     // same base
  EXPECT_FALSE(bus.Insert(dev, 0x1fff, 1));     // last byte
  EXPECT_FALSE(bus.Insert(dev, 0x800, 0x801));  // tail overlaps
  EXPECT_FALSE(bus.Insert(dev, 0x0, 0x10000));  // covers
  auto err = bus.Insert(dev, 0x1800, 0x10);
  ASSERT_FALSE(err);
  EXPECT_NE(err.error().message().find("overlaps dev"), std::string::npos) << err.error().message();
  EXPECT_TRUE(bus.Insert(dev, 0x2000, 0x10));  // adjacent is fine
  EXPECT_TRUE(bus.Insert(dev, 0x800, 0x800));
}

TEST(Bus, ZeroLengthAndWrapAroundFail) {
  Bus bus("mmio");
  auto dev = std::make_shared<Recorder>("dev");
  EXPECT_FALSE(bus.Insert(dev, 0x1000, 0));
  EXPECT_FALSE(bus.Insert(dev, UINT64_MAX, 2));
  EXPECT_TRUE(bus.Insert(dev, UINT64_MAX, 1));  // last byte of the space
  EXPECT_EQ(bus.Find(UINT64_MAX)->base, UINT64_MAX);
  EXPECT_FALSE(bus.Insert(nullptr, 0, 1));
}

}  // namespace
}  // namespace devices
