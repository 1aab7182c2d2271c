#include "firmware/mptable.h"

#include <cstring>
#include <vector>

namespace firmware {
namespace {

constexpr uint64_t kFloatingPointerSize = 16;  // MP spec §4.1
constexpr uint64_t kConfigHeaderSize = 44;     // MP spec §4.2
constexpr uint8_t kApicVersion = 0x14;         // integrated local APIC (xAPIC), as KVM reports
constexpr uint8_t kIoapicVersion = 0x11;       // KVM's in-kernel IOAPIC (IOAPIC_VERSION_ID)
constexpr uint8_t kIsaBusId = 0;

class Writer {
 public:
  template <typename T>
  void Put(const T& value) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    data_.insert(data_.end(), bytes, bytes + sizeof(T));
  }
  void PutBytes(const char* text, size_t n) { data_.insert(data_.end(), text, text + n); }
  std::vector<uint8_t>& data() { return data_; }

 private:
  std::vector<uint8_t> data_;
};

uint8_t Checksum(const uint8_t* begin, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + begin[i]);
  return static_cast<uint8_t>(-sum);
}

void PutInterrupt(Writer& w, uint8_t entry_type, uint8_t interrupt_type, uint8_t source_irq,
                  uint8_t dest_id, uint8_t dest_pin) {
  w.Put(entry_type);
  w.Put(interrupt_type);  // 0 INT (vectored), 1 NMI, 3 ExtINT (MP spec Table 4-11)
  w.Put(uint16_t{0});     // polarity and trigger conform to the bus
  w.Put(kIsaBusId);
  w.Put(source_irq);
  w.Put(dest_id);
  w.Put(dest_pin);
}

}  // namespace

uint64_t MpTableSize(uint32_t cpus) {
  return kFloatingPointerSize + kConfigHeaderSize + 20 * uint64_t{cpus} + 8 /*bus*/ + 8 /*ioapic*/ +
         8 * kIsaIrqs + 2 * 8 /*LINT0, LINT1*/;
}

base::Result<void> WriteMpTable(const base::GuestMemory& memory, uint32_t cpus) {
  if (cpus == 0 || cpus > kMaxMpCpus) {
    return base::MakeError(base::ErrorKind::kConfig, "{} CPUs: the MP table describes 1 to {} CPUs",
                           cpus, kMaxMpCpus);
  }
  const uint64_t table_address = kMpTableAddress + kFloatingPointerSize;
  const uint8_t ioapic_id = IoapicId(cpus);

  Writer entries;
  for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
    entries.Put(kMpProcessor);
    entries.Put(static_cast<uint8_t>(cpu));  // local APIC ID
    entries.Put(kApicVersion);
    entries.Put(static_cast<uint8_t>(cpu == 0 ? 0x3 : 0x1));  // EN, BP for CPU 0
    entries.Put(uint32_t{0x600});                             // CPU signature: family 6
    entries.Put(uint32_t{0x201});  // feature flags: FPU, APIC (CPUID.1:EDX)
    entries.Put(uint64_t{0});      // reserved
  }
  entries.Put(kMpBus);
  entries.Put(kIsaBusId);
  entries.PutBytes("ISA   ", 6);  // MP spec Table 4-8 bus type string
  entries.Put(kMpIoapic);
  entries.Put(ioapic_id);
  entries.Put(kIoapicVersion);
  entries.Put(uint8_t{1});  // EN
  entries.Put(kIoapicAddress);
  for (uint8_t irq = 0; irq < kIsaIrqs; ++irq) {
    PutInterrupt(entries, kMpIoInterrupt, 0, irq, ioapic_id,
                 static_cast<uint8_t>(IsaIrqToIoapicPin(irq)));
  }
  PutInterrupt(entries, kMpLocalInterrupt, 3, 0, 0xff, 0);         // LINT0: ExtINT (8259A)
  PutInterrupt(entries, kMpLocalInterrupt, 1, 0, 0xff, kNmiLint);  // LINT1: NMI

  Writer table;
  table.PutBytes("PCMP", 4);
  table.Put(static_cast<uint16_t>(kConfigHeaderSize + entries.data().size()));
  table.Put(uint8_t{4});                                          // spec revision 1.4
  table.Put(uint8_t{0});                                          // checksum, below
  table.PutBytes("VMM     ", 8);                                  // OEM ID
  table.PutBytes("VMM MPTABLE ", 12);                             // product ID
  table.Put(uint32_t{0});                                         // OEM table pointer
  table.Put(uint16_t{0});                                         // OEM table size
  table.Put(static_cast<uint16_t>(cpus + 1 + 1 + kIsaIrqs + 2));  // entry count
  table.Put(kLapicAddress);
  table.Put(uint16_t{0});  // extended table length
  table.Put(uint8_t{0});   // extended table checksum
  table.Put(uint8_t{0});   // reserved
  auto& bytes = table.data();
  bytes.insert(bytes.end(), entries.data().begin(), entries.data().end());
  bytes[7] = Checksum(bytes.data(), bytes.size());

  Writer pointer;
  pointer.PutBytes("_MP_", 4);
  pointer.Put(static_cast<uint32_t>(table_address));
  pointer.Put(uint8_t{1});  // length in 16-byte units
  pointer.Put(uint8_t{4});  // spec revision 1.4
  pointer.Put(uint8_t{0});  // checksum, below
  pointer.Put(uint8_t{0});  // feature 1: 0 = a configuration table is present
  pointer.Put(uint8_t{0});  // feature 2: IMCRP clear, virtual-wire mode
  pointer.PutBytes("\0\0\0", 3);
  pointer.data()[10] = Checksum(pointer.data().data(), pointer.data().size());

  TRY(memory.Write(kMpTableAddress, pointer.data()));
  TRY(memory.Write(table_address, bytes));
  return {};
}

}  // namespace firmware
