// Fuzz targets for what a guest controls directly (docs/conventions.md: everything
// a guest or user controls gets one):
//   virtqueue  -- the split-virtqueue walker (devices/virtio/queue.h) over a
//                 guest memory whose rings and descriptor tables are the input
//   assist     -- the instruction-assist decoder and the guest page walk
//                 (vmm/insn_assist.h) over input bytes and page tables
// The first input byte picks the target (or VMM_FUZZ_GUEST_INPUT fixes it at
// build time, for the virtqueue and insn_assist targets). Invariants are checked with abort():
// a segment outside guest RAM, a chain longer than the queue allows, a
// decoded length beyond the bytes given. Built as a libFuzzer target with
// VMM_FUZZ=ON (clang), and everywhere else as a fixed-seed mutation run that
// is a unit test (guest_input_fuzz_smoke, main() at the end of this file).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "base/guest_memory.h"
#include "devices/virtio/queue.h"
#include "vmm/insn_assist.h"

namespace {

constexpr uint64_t kRam = 1 << 20;       // 1 MiB of guest RAM
constexpr uint64_t kRingsAt = 0x10000;   // where the input's ring bytes go
constexpr uint64_t kTablesAt = 0x20000;  // where the input's page tables go

base::GuestMemory& Memory() {
  static std::unique_ptr<base::GuestMemory> memory = *base::GuestMemory::Create(kRam);
  return *memory;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

// data: [flags][size exponent][ring bytes...]
void FuzzVirtqueue(std::span<const uint8_t> data) {
  if (data.size() < 2) return;
  base::GuestMemory& memory = Memory();
  (void)memory.Fill(kRingsAt, 0, 0x10000);
  const uint8_t flags = data[0];
  const auto size = static_cast<uint16_t>(1u << (data[1] % 9));  // 1..256
  const auto rings = data.subspan(2, std::min<size_t>(data.size() - 2, 0x10000));
  (void)memory.Write(kRingsAt, rings);
  const uint64_t desc = kRingsAt;
  const uint64_t avail = desc + 16ull * size;
  const uint64_t used = (avail + 6 + 2ull * size + 3) & ~3ull;
  devices::virtio::Queue queue(256);
  queue.set_size(size);
  queue.set_desc_table(desc);
  queue.set_avail_ring(avail);
  queue.set_used_ring(used);
  if (!queue.Activate(memory, flags & 1, flags & 2)) return;
  for (int i = 0; i < 2 * size + 2; ++i) {
    auto popped = (flags & 4) ? queue.PopOrEnableNotification() : queue.Pop();
    if (!popped) {
      Check(queue.broken());
      return;
    }
    if (!*popped) return;
    const devices::virtio::DescriptorChain& chain = **popped;
    Check(chain.head < size);
    // A chain holds at most the queue size of buffers, or an indirect
    // table's worth (at most 2^32 / 16, bounded by RAM here).
    Check(chain.readable.size() + chain.writable.size() <= std::max<size_t>(size, kRam / 16));
    uint64_t readable = 0, writable = 0;
    for (const auto& s : chain.readable) {
      Check(s.len > 0 && memory.Contains(s.addr, s.len));
      readable += s.len;
    }
    for (const auto& s : chain.writable) {
      Check(s.len > 0 && memory.Contains(s.addr, s.len));
      writable += s.len;
    }
    Check(readable == chain.readable_bytes && writable == chain.writable_bytes);
    (void)queue.AddUsed(chain.head, static_cast<uint32_t>(std::min<uint64_t>(writable, 512)));
    (void)queue.NeedsInterrupt();
  }
}

// data: [mode][paging flags][16 register bytes][instruction bytes (15)][page tables...]
void FuzzAssist(std::span<const uint8_t> data) {
  if (data.size() < 2 + 16 + 15) return;
  vmm::AssistCpu cpu;
  cpu.long_mode = data[0] & 1;
  cpu.default32 = data[0] & 2;
  for (size_t r = 0; r < 16; ++r) {
    // Registers near the tables, with a few high bits from the input.
    cpu.gpr[r] = kTablesAt + (uint64_t{data[2 + r]} << 4) +
                 (static_cast<uint64_t>(data[2 + r] & 0xc0) << 34);
  }
  cpu.rip = 0xffffffff81000000ull;
  cpu.seg_base[5] = uint64_t{data[1]} << 12;
  const auto bytes = data.subspan(18, 15);
  if (auto insn = vmm::DecodeAssist(bytes, cpu)) {
    Check(insn->length >= 3 && insn->length <= bytes.size());
  }
  base::GuestMemory& memory = Memory();
  const auto tables = data.subspan(33, std::min<size_t>(data.size() - 33, 0x10000));
  (void)memory.Fill(kTablesAt, 0, 0x10000);
  (void)memory.Write(kTablesAt, tables);
  vmm::PagingState paging;
  paging.cr0 = (1ull << 31) | ((data[1] & 1) ? 1ull << 16 : 0);
  paging.cr3 = kTablesAt + (static_cast<uint64_t>(data[1] & 0xf0) << 8);
  paging.cr4 = ((data[0] & 4) ? 1ull << 5 : 0) | ((data[0] & 8) ? 1ull << 4 : 0) |
               ((data[0] & 16) ? 1ull << 12 : 0) | ((data[0] & 32) ? 1ull << 21 : 0);
  paging.efer = (data[0] & 64) ? 1ull << 10 : 0;
  paging.user = data[1] & 2;
  paging.rflags_ac = data[1] & 4;
  for (size_t r = 0; r < 16; ++r) {
    auto walk = vmm::WalkGuestPage(memory, paging, cpu.gpr[r] * 4096, data[0] & 128);
    if (walk && !walk->ok) Check(walk->error_code < 8);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
#if defined(VMM_FUZZ_GUEST_INPUT)
  // One target per binary (virtqueue = 0, insn_assist = 1; tests/fuzz/CMakeLists.txt):
  // the whole input goes to it.
  const std::span<const uint8_t> all(data, size);
  if (VMM_FUZZ_GUEST_INPUT == 1) {
    FuzzAssist(all);
  } else {
    FuzzVirtqueue(all);
  }
#else
  if (size < 1) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  if (data[0] & 1) {
    FuzzAssist(rest);
  } else {
    FuzzVirtqueue(rest);
  }
#endif
  return 0;
}

#ifdef VMM_FUZZ_SMOKE
#include "tests/fuzz/mutation_run.h"

// Seeds: a valid two-descriptor chain (virtqueue) and a 4-level mapping with
// an ldmxcsr (assist); then a fixed-seed run of byte edits over each.
namespace {

template <typename T>
void PutAt(std::vector<uint8_t>& v, size_t at, T value) {
  if (at + sizeof(T) <= v.size()) std::memcpy(v.data() + at, &value, sizeof(T));
}

std::vector<uint8_t> VirtqueueSeed() {
  constexpr uint16_t kSize = 8;
  std::vector<uint8_t> v(3 + 0x400, 0);
  v[0] = 0;            // virtqueue
  v[1] = 3;            // event_idx + indirect
  v[2] = 3;            // size 8
  const size_t d = 3;  // descriptor table at kRingsAt
  PutAt<uint64_t>(v, d + 0, 0x30000);
  PutAt<uint32_t>(v, d + 8, 16);
  PutAt<uint16_t>(v, d + 12, 1);  // NEXT
  PutAt<uint16_t>(v, d + 14, 1);
  PutAt<uint64_t>(v, d + 16, 0x31000);
  PutAt<uint32_t>(v, d + 24, 512);
  PutAt<uint16_t>(v, d + 28, 2);  // WRITE
  const size_t avail = d + 16 * kSize;
  PutAt<uint16_t>(v, avail + 2, 1);  // idx 1, ring[0] = 0
  return v;
}

std::vector<uint8_t> AssistSeed() {
  std::vector<uint8_t> v(1 + 33 + 0x5000, 0);
  v[0] = 1;                                               // assist
  v[1] = 1 | 4 | 64;                                      // long mode, PAE, LMA
  v[2] = 0;                                               // cr3 = kTablesAt
  const uint8_t insn[] = {0x0f, 0xae, 0x54, 0x24, 0x04};  // ldmxcsr 4(%rsp)
  std::memcpy(v.data() + 19, insn, sizeof(insn));
  const size_t t = 34;  // page tables: PML4, PDPT, PD at kTablesAt + 0/1/2 pages
  PutAt<uint64_t>(v, t + 0, (kTablesAt + 0x1000) | 7);
  PutAt<uint64_t>(v, t + 0x1000, (kTablesAt + 0x2000) | 7);
  PutAt<uint64_t>(v, t + 0x2000, 0x83);  // 2 MiB page at 0
  return v;
}

}  // namespace

int main() {
  constexpr int kRuns = 30000;
  // Byte 0 selects the target; flags, descriptors, rings, the instruction
  // and the first table entries are near the start.
  fuzz_smoke::RunMutations({VirtqueueSeed(), AssistSeed()}, kRuns, {.hot = 0x200, .keep = 1},
                           LLVMFuzzerTestOneInput);
  std::printf("guest_input_fuzz_smoke: %d mutated inputs per target, no invariant broken\n", kRuns);
  return 0;
}
#endif
