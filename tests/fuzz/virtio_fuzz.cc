// libFuzzer targets for the virtio devices a guest drives (docs/virtio.md),
// with a GuestMemory and no KVM, as tests/unit/devices/ drives them. Which
// one is fixed at build time by VMM_FUZZ_VIRTIO (tests/fuzz/CMakeLists.txt):
//   virtio_blk, virtio_console, virtio_rng (1, 2, 3): a device behind its
//     MMIO transport, brought up as Linux does (every offered feature but
//     those the input drops, each queue at a fixed place); the input is the
//     guest memory holding the rings, the descriptor tables and the request
//     buffers, then the queues are notified a few times. This drives the
//     virtqueue walker and the device's request parser (block: header, data
//     segments, status byte; console: transmit and receive; rng: writable
//     buffers).
//   virtio_mmio (0): the transport's register file (devices/virtio/mmio.h):
//     the input is a script of register reads, writes and notifications of
//     any offset and width over one of the three devices, then guest memory.
// A guest can never crash vmm (docs/conventions.md): ASan and UBSan watch
// every access; abort() marks a broken invariant (the device refuses its own
// features, a block request is left in flight, the disk is accessed outside
// its size).
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "base/guest_memory.h"
#include "devices/virtio/block/block.h"
#include "devices/virtio/console/console.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/rng/rng.h"
#include "devices/virtio/virtio.h"

#ifndef VMM_FUZZ_VIRTIO
#error "define VMM_FUZZ_VIRTIO (0 mmio, 1 blk, 2 console, 3 rng): tests/fuzz/CMakeLists.txt"
#endif

namespace {

using devices::virtio::VirtioMmio;

constexpr uint64_t kRam = 1 << 20;
constexpr uint64_t kImageAt = 0x10000;     // where the input's memory bytes go
constexpr uint64_t kImageMax = 0x10000;    // at most this many
constexpr uint64_t kQueueStride = 0x4000;  // queue q's rings at kImageAt + q * kQueueStride
constexpr uint64_t kDiskBytes = 64 * 1024;

base::GuestMemory& Memory() {
  static base::GuestMemory* memory = [] {
    auto created = base::GuestMemory::Create(kRam);
    if (!created) std::abort();
    return created->release();
  }();
  return *memory;
}

// A disk in host memory (the worker's preadv/pwritev, without a file).
class MemoryDisk : public devices::virtio::BlockBackend {
 public:
  uint64_t size_bytes() const override { return bytes_.size(); }
  base::Result<void> ReadAt(std::span<const iovec> iov, uint64_t offset) override {
    for (const iovec& v : iov) {
      if (offset + v.iov_len > bytes_.size()) std::abort();  // Block checked the range
      std::memcpy(v.iov_base, bytes_.data() + offset, v.iov_len);
      offset += v.iov_len;
    }
    return {};
  }
  base::Result<void> WriteAt(std::span<const iovec> iov, uint64_t offset) override {
    for (const iovec& v : iov) {
      if (offset + v.iov_len > bytes_.size()) std::abort();
      std::memcpy(bytes_.data() + offset, v.iov_base, v.iov_len);
      offset += v.iov_len;
    }
    return {};
  }
  base::Result<void> Sync() override { return {}; }

 private:
  std::vector<uint8_t> bytes_ = std::vector<uint8_t>(kDiskBytes, 0x5a);
};

// One device behind its transport, with what the checks need.
struct Rig {
  std::shared_ptr<devices::virtio::VirtioDevice> device;
  std::shared_ptr<devices::virtio::Block> block;  // when it is a block device
  std::shared_ptr<devices::virtio::Console> console;
  std::shared_ptr<VirtioMmio> mmio;
};

Rig MakeRig(int which, bool read_only) {
  Rig rig;
  switch (which) {
    case 1:
      rig.block = devices::virtio::Block::CreateWithBackend(std::make_unique<MemoryDisk>(),
                                                            "fuzz.img", read_only);
      rig.device = rig.block;
      break;
    case 2:
      rig.console = std::make_shared<devices::virtio::Console>([](std::span<const uint8_t>) {});
      rig.device = rig.console;
      break;
    default:
      rig.device = std::make_shared<devices::virtio::Rng>([](std::span<uint8_t> out) {
        for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 7);
        return base::Result<void>{};
      });
      break;
  }
  // No executor: notifications are served inline, as in the unit tests.
  rig.mmio = VirtioMmio::Create(rig.device, Memory(), nullptr);
  return rig;
}

void WriteReg(VirtioMmio& mmio, uint64_t offset, uint32_t value) {
  mmio.Write({0xd0000000 + offset, offset, 0},
             std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(value)));
}

uint32_t ReadReg(VirtioMmio& mmio, uint64_t offset) {
  uint32_t value = 0;
  mmio.Read({0xd0000000 + offset, offset, 0},
            std::span(reinterpret_cast<uint8_t*>(&value), sizeof(value)));
  return value;
}

// Waits for the block worker, so the next step sees its completions.
void Settle(Rig& rig) {
  if (rig.block) rig.block->WaitIdle();
}

void LoadImage(std::span<const uint8_t> image) {
  (void)Memory().Fill(kImageAt, 0, kImageMax);
  (void)Memory().Write(kImageAt, image.subspan(0, std::min<size_t>(image.size(), kImageMax)));
}

// data: [flags][queue size exponent][rounds][guest memory image at kImageAt...]
//   flags bit 0: drop EVENT_IDX, 1: drop INDIRECT_DESC, 2: read-only disk,
//   3: queue console input, 4: reset the device after the first round,
//   5: acknowledge interrupts between rounds.
void FuzzDevice(int which, std::span<const uint8_t> data) {
  if (data.size() < 3) return;
  const uint8_t flags = data[0];
  Rig rig = MakeRig(which, flags & 4);
  VirtioMmio& mmio = *rig.mmio;
  const size_t queues = rig.device->queue_count();
  // The same rings, written before the bring-up; avail/used indices the
  // guest left there count from zero (the device starts at 0).
  LoadImage(data.subspan(3));
  const uint16_t want = static_cast<uint16_t>(1u << (data[1] % 9));
  const int rounds = 1 + data[2] % 4;

  WriteReg(mmio, VirtioMmio::kRegStatus, 0);
  WriteReg(mmio, VirtioMmio::kRegStatus, devices::virtio::kStatusAcknowledge);
  WriteReg(mmio, VirtioMmio::kRegStatus,
           devices::virtio::kStatusAcknowledge | devices::virtio::kStatusDriver);
  uint64_t features = 0;
  for (uint32_t sel = 0; sel < 2; ++sel) {
    WriteReg(mmio, VirtioMmio::kRegDeviceFeaturesSel, sel);
    features |= uint64_t{ReadReg(mmio, VirtioMmio::kRegDeviceFeatures)} << (32 * sel);
  }
  if (flags & 1) features &= ~devices::virtio::kFeatureEventIdx;
  if (flags & 2) features &= ~devices::virtio::kFeatureIndirectDesc;
  for (uint32_t sel = 0; sel < 2; ++sel) {
    WriteReg(mmio, VirtioMmio::kRegDriverFeaturesSel, sel);
    WriteReg(mmio, VirtioMmio::kRegDriverFeatures, static_cast<uint32_t>(features >> (32 * sel)));
  }
  const uint32_t driver = devices::virtio::kStatusAcknowledge | devices::virtio::kStatusDriver |
                          devices::virtio::kStatusFeaturesOk;
  WriteReg(mmio, VirtioMmio::kRegStatus, driver);
  if (!(ReadReg(mmio, VirtioMmio::kRegStatus) & devices::virtio::kStatusFeaturesOk)) std::abort();
  std::vector<uint16_t> sizes(queues);
  for (size_t q = 0; q < queues; ++q) {
    const uint64_t base = kImageAt + q * kQueueStride;
    WriteReg(mmio, VirtioMmio::kRegQueueSel, static_cast<uint32_t>(q));
    const uint32_t max = ReadReg(mmio, VirtioMmio::kRegQueueNumMax);
    sizes[q] = static_cast<uint16_t>(std::min<uint32_t>(want, max));
    WriteReg(mmio, VirtioMmio::kRegQueueNum, sizes[q]);
    WriteReg(mmio, VirtioMmio::kRegQueueDescLow, static_cast<uint32_t>(base));
    WriteReg(mmio, VirtioMmio::kRegQueueDriverLow, static_cast<uint32_t>(base + 0x1000));
    WriteReg(mmio, VirtioMmio::kRegQueueDeviceLow, static_cast<uint32_t>(base + 0x2000));
    WriteReg(mmio, VirtioMmio::kRegQueueReady, 1);
  }
  WriteReg(mmio, VirtioMmio::kRegStatus, driver | devices::virtio::kStatusDriverOk);
  if (rig.console && (flags & 8)) {
    static const uint8_t kInput[] = "typed on the console\n";
    rig.console->QueueInput(std::span(kInput, sizeof(kInput) - 1));
  }
  for (int round = 0; round < rounds; ++round) {
    for (size_t q = 0; q < queues; ++q) {
      WriteReg(mmio, VirtioMmio::kRegQueueNotify, static_cast<uint32_t>(q));
      Settle(rig);
    }
    if (flags & 32) {
      WriteReg(mmio, VirtioMmio::kRegInterruptAck, ReadReg(mmio, VirtioMmio::kRegInterruptStatus));
    }
    if (round == 0 && (flags & 16)) {
      WriteReg(mmio, VirtioMmio::kRegStatus, 0);  // a reset mid-request
      break;
    }
  }
  Settle(rig);
  // Every chain the device took was completed or dropped by the reset.
  if (rig.block) {
    const auto counters = rig.block->block_counters();
    if (counters.in_flight != 0) std::abort();
  }
}

// data: [device][op count][ops: 8 bytes each][guest memory image...]
//   op: [kind][offset lo][offset hi][width][value (4 bytes, little-endian)]
//   kind % 4: 0 read, 1 write, 2 NotifyQueue(value) (the ioeventfd path),
//   3 a write of the status register (value & 0xff).
void FuzzMmio(std::span<const uint8_t> data) {
  if (data.size() < 2) return;
  Rig rig = MakeRig(1 + data[0] % 3, data[0] & 0x80);
  VirtioMmio& mmio = *rig.mmio;
  const size_t ops = std::min<size_t>(data[1], (data.size() - 2) / 8);
  LoadImage(data.subspan(2 + ops * 8));
  for (size_t i = 0; i < ops; ++i) {
    const uint8_t* op = data.data() + 2 + i * 8;
    const uint64_t offset = (op[1] | uint64_t{op[2]} << 8) % (VirtioMmio::kSize + 8);
    static constexpr size_t kWidths[] = {1, 2, 4, 8};
    const size_t width = kWidths[op[3] % 4];
    uint8_t value[8] = {};
    std::memcpy(value, op + 4, 4);
    const devices::BusAccess access{0xd0000000 + offset, offset, 0};
    switch (op[0] % 4) {
      case 0:
        mmio.Read(access, std::span(value, width));
        break;
      case 1:
        mmio.Write(access, std::span<const uint8_t>(value, width));
        break;
      case 2: {
        uint32_t queue;
        std::memcpy(&queue, value, 4);
        mmio.NotifyQueue(queue);
        break;
      }
      case 3:
        WriteReg(mmio, VirtioMmio::kRegStatus, value[0]);
        break;
    }
    Settle(rig);
  }
  if (mmio.queue_count() != rig.device->queue_count()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  if (VMM_FUZZ_VIRTIO == 0) {
    FuzzMmio(input);
  } else {
    FuzzDevice(VMM_FUZZ_VIRTIO, input);
  }
  return 0;
}
