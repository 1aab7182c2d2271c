// virtio-blk's I/O worker (devices/virtio/block/block.h): the event loop
// only hands requests off, FLUSH waits for the writes before it, and a reset
// or teardown in the middle of a request is safe. A gated fake backend
// holds a request "on the disk" for as long as a test wants, so nothing here
// depends on timing.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devices/virtio/block/block.h"
#include "devices/virtio/rng/rng.h"
#include "tests/unit/devices/fake_irq_line.h"
#include "tests/unit/devices/virtio_test_util.h"

namespace devices::virtio {
namespace {

using testing::MakeMemory;
using testing::MmioDriver;
using testing::TestRing;

constexpr uint64_t kRequests = 0x400000;  // request i: header +0, status +0x20, data +0x1000
constexpr uint64_t kRequestStride = 0x2000;
constexpr uint64_t kDiskBytes = 64 * 1024;

// A RAM disk that logs every operation and can hold operations at a gate.
class GatedBackend : public BlockBackend {
 public:
  uint64_t size_bytes() const override { return kDiskBytes; }
  base::Result<void> ReadAt(std::span<const iovec> iov, uint64_t offset) override {
    const std::string op = fmt::format("R{}", offset / 512);
    Enter(op);
    for (const iovec& v : iov) {
      std::memcpy(v.iov_base, disk_.data() + offset, v.iov_len);
      offset += v.iov_len;
    }
    Leave(op);
    return {};
  }
  base::Result<void> WriteAt(std::span<const iovec> iov, uint64_t offset) override {
    const std::string op = fmt::format("W{}", offset / 512);
    Enter(op);
    for (const iovec& v : iov) {
      std::memcpy(disk_.data() + offset, v.iov_base, v.iov_len);
      offset += v.iov_len;
    }
    Leave(op);
    return {};
  }
  base::Result<void> Sync() override {
    Enter("F");
    Leave("F");
    return {};
  }

  // Operations from now on wait at the gate until Open().
  void Close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  void Open() {
    {
      std::lock_guard lock(mutex_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  // Waits until `count` operations have started (and are held, if closed).
  void WaitEntered(size_t count) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return entered_ >= count; });
  }
  std::vector<std::string> log() const {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  void Enter(const std::string& op) {
    std::unique_lock lock(mutex_);
    log_.push_back(op);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !closed_; });
  }
  void Leave(const std::string& op) {
    std::lock_guard lock(mutex_);
    log_.push_back(op + " done");
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool closed_ = false;
  size_t entered_ = 0;
  std::vector<std::string> log_;
  std::vector<uint8_t> disk_ = std::vector<uint8_t>(kDiskBytes, 0);
};

class BlockWorkerTest : public ::testing::Test {
 protected:
  BlockWorkerTest() {
    auto backend = std::make_unique<GatedBackend>();
    backend_ = backend.get();
    block_ = Block::CreateWithBackend(std::move(backend), "/images/gated.img", false);
    mmio_ = VirtioMmio::Create(block_, *memory_, irq_);
    driver_ = std::make_unique<MmioDriver>(*mmio_);
    // Without EVENT_IDX every completion asks for an interrupt.
    driver_->BringUp({&ring_}, kFeatureEventIdx);
  }

  // Waits until the worker has dropped `count` queued requests (a reset or
  // teardown reached Quiesce()).
  void WaitDropped(uint64_t count) {
    while (block_->block_counters().dropped < count) std::this_thread::yield();
  }

  // Request `i` uses descriptors 3i..3i+2 and its own header/data/status.
  void Queue(uint16_t i, uint32_t type, uint64_t sector, uint32_t data_len = 512) {
    const uint64_t base = kRequests + i * kRequestStride;
    EXPECT_TRUE(memory_->WriteObj(base, Block::RequestHeader{type, 0, sector}));
    EXPECT_TRUE(memory_->WriteObj<uint8_t>(base + 0x20, 0xee));
    const auto d = static_cast<uint16_t>(3 * i);
    if (type == Block::kTypeFlush) {
      ring_.SetDesc(d, base, 16, kDescNext, static_cast<uint16_t>(d + 2));
    } else {
      ring_.SetDesc(d, base, 16, kDescNext, static_cast<uint16_t>(d + 1));
      const uint16_t write = type == Block::kTypeIn ? kDescWrite : 0;
      ring_.SetDesc(static_cast<uint16_t>(d + 1), base + 0x1000, data_len,
                    static_cast<uint16_t>(kDescNext | write), static_cast<uint16_t>(d + 2));
    }
    ring_.SetDesc(static_cast<uint16_t>(d + 2), base + 0x20, 1, kDescWrite);
    ring_.Publish(d);
  }
  uint8_t StatusOf(uint16_t i) {
    return *memory_->ReadObj<uint8_t>(kRequests + i * kRequestStride + 0x20);
  }

  std::unique_ptr<base::GuestMemory> memory_ = MakeMemory();
  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  TestRing ring_{*memory_, 64, 0x100000};
  GatedBackend* backend_ = nullptr;
  std::shared_ptr<Block> block_;
  std::shared_ptr<VirtioMmio> mmio_;
  std::unique_ptr<MmioDriver> driver_;
};

TEST_F(BlockWorkerTest, EventLoopStaysResponsiveWhileARequestIsOnTheDisk) {
  backend_->Close();
  Queue(0, Block::kTypeIn, 1);
  driver_->Notify(0);  // event-loop work: returns with the read still held
  backend_->WaitEntered(1);

  // While the read is held: the transport lock is free (register accesses,
  // another notify on this device), and another device is served.
  EXPECT_EQ(driver_->Read(VirtioMmio::kRegQueueNumMax), Block::kQueueSize);
  EXPECT_EQ(driver_->Read(VirtioMmio::kRegStatus) & kStatusDriverOk, kStatusDriverOk);
  Queue(1, Block::kTypeOut, 2);
  driver_->Notify(0);
  EXPECT_EQ(block_->block_counters().in_flight, 2u);
  EXPECT_EQ(ring_.UsedIdx(), 0);

  auto rng = std::make_shared<Rng>();
  auto rng_mmio = VirtioMmio::Create(rng, *memory_, nullptr);
  MmioDriver rng_driver(*rng_mmio);
  TestRing rng_ring(*memory_, 8, 0x200000);
  rng_driver.BringUp({&rng_ring});
  rng_ring.SetDesc(0, 0x300000, 16, kDescWrite);
  rng_ring.Publish(0);
  rng_driver.Notify(0);
  EXPECT_EQ(rng_ring.UsedIdx(), 1) << "another device waited for the slow disk";

  backend_->Open();
  block_->WaitIdle();
  EXPECT_EQ(ring_.UsedIdx(), 2);
  EXPECT_EQ(ring_.Used(0).id, 0u);
  EXPECT_EQ(ring_.Used(1).id, 3u);
  EXPECT_EQ(StatusOf(0), Block::kStatusOk);
  EXPECT_EQ(StatusOf(1), Block::kStatusOk);
  EXPECT_EQ(irq_->raises(), 2) << "one interrupt per completion";
}

TEST_F(BlockWorkerTest, FlushRunsAfterTheWritesBeforeItAndCompletesAfterThem) {
  backend_->Close();
  Queue(0, Block::kTypeOut, 10);
  Queue(1, Block::kTypeOut, 20);
  Queue(2, Block::kTypeFlush, 0);
  Queue(3, Block::kTypeOut, 30);
  driver_->Notify(0);
  backend_->WaitEntered(1);
  EXPECT_EQ(block_->block_counters().in_flight, 4u);
  backend_->Open();
  block_->WaitIdle();

  // Each operation finished before the next started: the FLUSH's fdatasync
  // ran after both earlier writes had returned.
  EXPECT_EQ(backend_->log(), (std::vector<std::string>{"W10", "W10 done", "W20", "W20 done", "F",
                                                       "F done", "W30", "W30 done"}));
  // And completions reach the used ring in the same order.
  ASSERT_EQ(ring_.UsedIdx(), 4);
  for (uint16_t i = 0; i < 4; ++i) {
    EXPECT_EQ(ring_.Used(i).id, 3u * i);
    EXPECT_EQ(StatusOf(i), Block::kStatusOk);
  }
  EXPECT_EQ(block_->block_counters().flushes, 1u);
}

TEST_F(BlockWorkerTest, ResetDuringIoWaitsForTheRequestAndDropsTheQueuedOnes) {
  backend_->Close();
  Queue(0, Block::kTypeIn, 1);
  Queue(1, Block::kTypeIn, 2);
  Queue(2, Block::kTypeIn, 3);
  driver_->Notify(0);
  backend_->WaitEntered(1);

  const uint64_t resets_before = mmio_->stats().resets;
  std::atomic<bool> reset_done{false};
  std::thread vcpu([&] {
    driver_->Write(VirtioMmio::kRegStatus, 0);  // a vCPU resets the device
    reset_done = true;
  });
  WaitDropped(2);  // the reset dropped the two queued requests...
  // ...and cannot finish while the third touches guest memory.
  EXPECT_FALSE(reset_done.load());
  backend_->Open();
  vcpu.join();

  EXPECT_EQ(mmio_->status(), 0u);
  EXPECT_EQ(ring_.UsedIdx(), 0) << "a request of the old activation completed after reset";
  EXPECT_EQ(backend_->log(), (std::vector<std::string>{"R1", "R1 done"}));
  const Block::Counters counters = block_->block_counters();
  EXPECT_EQ(counters.dropped, 2u);
  EXPECT_EQ(counters.in_flight, 0u);
  EXPECT_EQ(counters.completed, 0u);
  EXPECT_EQ(mmio_->stats().stale_completions, 1u);
  EXPECT_EQ(mmio_->stats().resets, resets_before + 1);

  // The device comes back and works.
  TestRing fresh(*memory_, 64, 0x100000);
  driver_->BringUp({&fresh});
  Queue(0, Block::kTypeIn, 4);
  driver_->Notify(0);
  block_->WaitIdle();
  EXPECT_EQ(fresh.UsedIdx(), 1);
  EXPECT_EQ(StatusOf(0), Block::kStatusOk);
}

TEST_F(BlockWorkerTest, DestroyingTheTransportMidRequestWaitsAndIsSafe) {
  backend_->Close();
  Queue(0, Block::kTypeOut, 5);
  Queue(1, Block::kTypeOut, 6);
  driver_->Notify(0);
  backend_->WaitEntered(1);
  driver_.reset();
  std::thread teardown([&] { mmio_.reset(); });  // the VMM exits mid-I/O
  WaitDropped(1);
  backend_->Open();
  teardown.join();
  EXPECT_EQ(block_->block_counters().in_flight, 0u);
  EXPECT_EQ(backend_->log(), (std::vector<std::string>{"W5", "W5 done"}));
  block_.reset();  // joins the worker
  SUCCEED();
}

TEST_F(BlockWorkerTest, CompletionAfterTheQueueBrokeIsDropped) {
  backend_->Close();
  Queue(0, Block::kTypeIn, 1);
  driver_->Notify(0);
  backend_->WaitEntered(1);
  ring_.SetDesc(9, kRequests, 16, kDescNext, 9);  // a loop: NEEDS_RESET
  ring_.Publish(9);
  driver_->Notify(0);
  ASSERT_TRUE(mmio_->status() & kStatusNeedsReset);
  backend_->Open();
  block_->WaitIdle();
  EXPECT_EQ(ring_.UsedIdx(), 0) << "a broken ring was written";
  EXPECT_EQ(mmio_->stats().stale_completions, 1u);
  EXPECT_TRUE(mmio_->stats().needs_reset);
}

TEST(BlockWorker, DestroyingAnIdleBlockJoinsItsWorker) {
  for (int i = 0; i < 20; ++i) {
    auto block = Block::CreateWithBackend(std::make_unique<GatedBackend>(), "x.img", true);
    EXPECT_EQ(block->capacity_sectors(), kDiskBytes / 512);
  }
}

}  // namespace
}  // namespace devices::virtio
