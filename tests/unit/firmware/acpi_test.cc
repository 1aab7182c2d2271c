// The ACPI tables (firmware/acpi.h): checksums, lengths, the pointers from
// the RSDP down, the MADT against the MP table written for the same
// machine, the FADT's flags, the DSDT's AML for a small machine byte by
// byte, and the errors. tests/unit/firmware/check_acpi_iasl.sh has ACPICA's
// iasl check the same tables independently.
#include "firmware/acpi.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "base/layout.h"
#include "firmware/mptable.h"

namespace firmware {
namespace {

std::unique_ptr<base::GuestMemory> Memory() {
  return std::move(*base::GuestMemory::Create(16 * base::MiB));
}

AcpiMachine Machine(uint32_t cpus, size_t virtio = 0) {
  AcpiMachine machine;
  machine.cpus = cpus;
  for (size_t n = 0; n < virtio; ++n) {
    machine.virtio_mmio.push_back({base::kVirtioMmioBase + n * base::kVirtioMmioStride,
                                   base::kVirtioMmioStride,
                                   static_cast<uint32_t>(base::kVirtioMmioFirstIrq + n)});
  }
  return machine;
}

template <typename T>
T Get(const base::GuestMemory& memory, uint64_t gpa) {
  auto value = memory.ReadObj<T>(gpa);
  EXPECT_TRUE(value) << std::hex << gpa;
  return value ? *value : T{};
}

std::string Text(const base::GuestMemory& memory, uint64_t gpa, size_t n) {
  std::string out(n, '\0');
  EXPECT_TRUE(memory.Read(gpa, std::span(reinterpret_cast<uint8_t*>(out.data()), n)));
  return out;
}

uint8_t Sum(const base::GuestMemory& memory, uint64_t gpa, uint64_t n) {
  uint8_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + Get<uint8_t>(memory, gpa + i));
  return sum;
}

// A table read back from guest memory through the pointers, as an OS does.
struct Found {
  uint64_t address = 0;
  uint32_t length = 0;
};

// Follows RSDP -> XSDT -> tables, and FADT -> DSDT.
std::map<std::string, Found> Walk(const base::GuestMemory& memory, uint64_t rsdp) {
  std::map<std::string, Found> out;
  const uint64_t xsdt = Get<uint64_t>(memory, rsdp + 24);
  const uint32_t xsdt_length = Get<uint32_t>(memory, xsdt + 4);
  out["XSDT"] = {xsdt, xsdt_length};
  out["RSDT"] = {Get<uint32_t>(memory, rsdp + 16),
                 Get<uint32_t>(memory, Get<uint32_t>(memory, rsdp + 16) + 4)};
  for (uint64_t at = xsdt + 36; at < xsdt + xsdt_length; at += 8) {
    const uint64_t table = Get<uint64_t>(memory, at);
    out[Text(memory, table, 4)] = {table, Get<uint32_t>(memory, table + 4)};
  }
  if (out.contains("FACP")) {
    const uint64_t dsdt = Get<uint64_t>(memory, out["FACP"].address + 140);
    out["DSDT"] = {dsdt, Get<uint32_t>(memory, dsdt + 4)};
  }
  return out;
}

struct MadtEntry {
  uint8_t type;
  std::vector<uint8_t> bytes;
};

std::vector<MadtEntry> MadtEntries(const base::GuestMemory& memory, Found madt) {
  std::vector<MadtEntry> out;
  for (uint64_t at = madt.address + 44; at < madt.address + madt.length;) {
    const uint8_t length = Get<uint8_t>(memory, at + 1);
    EXPECT_GE(length, 2) << "zero-length MADT entry at " << std::hex << at;
    if (length < 2) break;
    MadtEntry entry{Get<uint8_t>(memory, at), std::vector<uint8_t>(length)};
    EXPECT_TRUE(memory.Read(at, entry.bytes));
    out.push_back(std::move(entry));
    at += length;
  }
  return out;
}

uint32_t U32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}

TEST(Acpi, RsdpAtTheRegionStartWithBothChecksums) {
  auto memory = Memory();
  auto rsdp = WriteAcpiTables(*memory, Machine(2));
  ASSERT_TRUE(rsdp) << rsdp.error().message();
  EXPECT_EQ(*rsdp, base::kAcpiTables);
  EXPECT_EQ(*rsdp % 16, 0u);
  EXPECT_EQ(Text(*memory, *rsdp, 8), "RSD PTR ");
  EXPECT_EQ(Text(*memory, *rsdp + 9, 6), "VMM   ");
  EXPECT_EQ(Get<uint8_t>(*memory, *rsdp + 15), 2);     // revision
  EXPECT_EQ(Get<uint32_t>(*memory, *rsdp + 20), 36u);  // length
  EXPECT_EQ(Sum(*memory, *rsdp, 20), 0);               // ACPI 1.0 checksum
  EXPECT_EQ(Sum(*memory, *rsdp, 36), 0);               // extended checksum
}

TEST(Acpi, EveryTableSumsToZeroAndSaysItsLength) {
  for (uint32_t cpus : {1u, 2u, 7u, base::kMaxCpus}) {
    for (size_t virtio : {size_t{0}, size_t{1}, size_t{8}}) {
      auto memory = Memory();
      auto rsdp = WriteAcpiTables(*memory, Machine(cpus, virtio));
      ASSERT_TRUE(rsdp) << rsdp.error().message();
      auto built = BuildAcpiTables(Machine(cpus, virtio));
      ASSERT_TRUE(built);
      ASSERT_EQ(built->tables.size(), 6u);
      for (const AcpiTable& table : built->tables) {
        SCOPED_TRACE(table.signature + " cpus " + std::to_string(cpus) + " virtio " +
                     std::to_string(virtio));
        const uint32_t length =
            table.signature == "RSD PTR " ? 36 : Get<uint32_t>(*memory, table.address + 4);
        EXPECT_EQ(length, table.bytes.size());
        EXPECT_EQ(Sum(*memory, table.address, length), 0);
        EXPECT_EQ(table.address % 16, 0u);
        EXPECT_GE(table.address, base::kAcpiTables);
        EXPECT_LE(table.address + length, base::kAcpiTables + base::kAcpiTablesSize);
      }
    }
  }
}

TEST(Acpi, PointersLeadFromTheRsdpToEveryTable) {
  auto memory = Memory();
  const uint64_t rsdp = *WriteAcpiTables(*memory, Machine(4, 2));
  auto built = *BuildAcpiTables(Machine(4, 2));
  std::map<std::string, uint64_t> address;
  for (const AcpiTable& t : built.tables) address[t.signature] = t.address;

  const auto found = Walk(*memory, rsdp);
  EXPECT_EQ(found.at("XSDT").address, address["XSDT"]);
  EXPECT_EQ(found.at("XSDT").length, 36u + 2 * 8);  // FADT, MADT
  EXPECT_EQ(found.at("FACP").address, address["FACP"]);
  EXPECT_EQ(found.at("APIC").address, address["APIC"]);
  EXPECT_EQ(found.at("DSDT").address, address["DSDT"]);
  EXPECT_EQ(found.at("FACP").length, 276u);
  // The RSDT lists the same tables with 32-bit pointers.
  const uint64_t rsdt = found.at("RSDT").address;
  EXPECT_EQ(rsdt, address["RSDT"]);
  EXPECT_EQ(found.at("RSDT").length, 36u + 2 * 4);
  EXPECT_EQ(Get<uint32_t>(*memory, rsdt + 36), address["FACP"]);
  EXPECT_EQ(Get<uint32_t>(*memory, rsdt + 40), address["APIC"]);
  // DSDT (32-bit) and X_DSDT agree; no FACS.
  const uint64_t fadt = address["FACP"];
  EXPECT_EQ(Get<uint32_t>(*memory, fadt + 40), address["DSDT"]);
  EXPECT_EQ(Get<uint32_t>(*memory, fadt + 36), 0u);
  EXPECT_EQ(Get<uint64_t>(*memory, fadt + 132), 0u);
  // The FADT's and XSDT's OEM table IDs match (ACPI 6.5 §5.2.8).
  EXPECT_EQ(Text(*memory, fadt + 16, 8), Text(*memory, address["XSDT"] + 16, 8));
}

TEST(Acpi, FadtIsHardwareReducedWithTheI8042Reset) {
  auto memory = Memory();
  const uint64_t fadt = Walk(*memory, *WriteAcpiTables(*memory, Machine(1))).at("FACP").address;
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 8), 6);    // revision
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 131), 3);  // minor version
  const uint32_t flags = Get<uint32_t>(*memory, fadt + 112);
  EXPECT_TRUE(flags & (1u << 20)) << "HW_REDUCED_ACPI";
  EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
  EXPECT_TRUE(flags & (1u << 0)) << "WBINVD";
  EXPECT_FALSE(flags & (1u << 8)) << "TMR_VAL_EXT: there is no PM timer";
  EXPECT_EQ(Get<uint16_t>(*memory, fadt + 46), 0);   // SCI_INT: none
  EXPECT_EQ(Get<uint32_t>(*memory, fadt + 56), 0u);  // PM1a_EVT_BLK: none
  EXPECT_EQ(Get<uint32_t>(*memory, fadt + 64), 0u);  // PM1a_CNT_BLK: none
  EXPECT_EQ(Get<uint32_t>(*memory, fadt + 76), 0u);  // PM_TMR_BLK: none
  const uint16_t boot = Get<uint16_t>(*memory, fadt + 109);
  EXPECT_EQ(boot, 0x0f) << "legacy devices, 8042, no VGA, no MSI; CMOS RTC present";
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 108), 0x32);  // CMOS century index
  // RESET_REG: System I/O, 8 bits, byte access, port 0x64; value 0xfe.
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 116), 1);
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 117), 8);
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 119), 1);
  EXPECT_EQ(Get<uint64_t>(*memory, fadt + 120), base::kI8042CommandPort);
  EXPECT_EQ(Get<uint8_t>(*memory, fadt + 128), 0xfe);
}

TEST(Acpi, MadtHasOneEntryPerCpuTheIoapicTheOverridesAndTheNmi) {
  for (uint32_t cpus : {1u, 3u, base::kMaxCpus}) {
    auto memory = Memory();
    const Found madt = Walk(*memory, *WriteAcpiTables(*memory, Machine(cpus))).at("APIC");
    EXPECT_EQ(Get<uint32_t>(*memory, madt.address + 36), kLapicAddress);
    EXPECT_EQ(Get<uint32_t>(*memory, madt.address + 40), 1u);  // PCAT_COMPAT
    uint32_t overrides = 0;
    for (uint32_t irq = 0; irq < kIsaIrqs; ++irq) {
      if (kIoapicGsiBase + IsaIrqToIoapicPin(irq) != irq) ++overrides;
    }
    const auto entries = MadtEntries(*memory, madt);
    ASSERT_EQ(entries.size(), cpus + 1 + overrides + 1);
    std::map<uint8_t, uint32_t> by_type;
    for (const MadtEntry& e : entries) ++by_type[e.type];
    EXPECT_EQ(by_type[0], cpus);
    EXPECT_EQ(by_type[1], 1u);
    EXPECT_EQ(by_type[2], overrides);
    EXPECT_EQ(by_type[4], 1u);
    EXPECT_EQ(madt.length, 44 + 8 * cpus + 12 + 10 * overrides + 6);
    for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
      const auto& e = entries[cpu];
      ASSERT_EQ(e.type, 0);
      ASSERT_EQ(e.bytes.size(), 8u);
      EXPECT_EQ(e.bytes[2], cpu);      // processor UID
      EXPECT_EQ(e.bytes[3], cpu);      // APIC ID
      EXPECT_EQ(U32(e.bytes, 4), 1u);  // enabled
    }
    const auto& nmi = entries.back();
    EXPECT_EQ(nmi.type, 4);
    EXPECT_EQ(nmi.bytes[2], 0xff);  // all processors
    EXPECT_EQ(nmi.bytes[5], 1);     // LINT1
  }
}

// The MADT and the MP table describe one machine: the same APIC IDs, the
// same IOAPIC (ID, address) and the same GSI for every ISA IRQ.
TEST(Acpi, MadtSaysWhatTheMpTableSays) {
  constexpr uint32_t kCpus = 5;
  auto memory = Memory();
  ASSERT_TRUE(WriteMpTable(*memory, kCpus));
  const Found madt = Walk(*memory, *WriteAcpiTables(*memory, Machine(kCpus))).at("APIC");

  const uint64_t mp = Get<uint32_t>(*memory, kMpTableAddress + 4);
  const uint16_t mp_count = Get<uint16_t>(*memory, mp + 34);
  std::vector<uint8_t> mp_apic_ids;
  uint8_t mp_ioapic_id = 0;
  uint32_t mp_ioapic_address = 0;
  std::map<uint8_t, uint8_t> mp_irq_to_pin;
  uint64_t at = mp + 44;
  for (uint16_t i = 0; i < mp_count; ++i) {
    const uint8_t type = Get<uint8_t>(*memory, at);
    if (type == kMpProcessor) {
      mp_apic_ids.push_back(Get<uint8_t>(*memory, at + 1));
      at += 20;
      continue;
    }
    if (type == kMpIoapic) {
      mp_ioapic_id = Get<uint8_t>(*memory, at + 1);
      mp_ioapic_address = Get<uint32_t>(*memory, at + 4);
    } else if (type == kMpIoInterrupt) {
      mp_irq_to_pin[Get<uint8_t>(*memory, at + 5)] = Get<uint8_t>(*memory, at + 7);
    }
    at += 8;
  }
  ASSERT_EQ(mp_apic_ids.size(), kCpus);
  ASSERT_EQ(mp_irq_to_pin.size(), kIsaIrqs);

  std::vector<uint8_t> madt_apic_ids;
  uint32_t gsi_base = 0;
  std::map<uint8_t, uint32_t> madt_irq_to_gsi;  // overrides only
  for (const MadtEntry& e : MadtEntries(*memory, madt)) {
    if (e.type == 0) madt_apic_ids.push_back(e.bytes[3]);
    if (e.type == 1) {
      EXPECT_EQ(e.bytes[2], mp_ioapic_id);
      EXPECT_EQ(U32(e.bytes, 4), mp_ioapic_address);
      gsi_base = U32(e.bytes, 8);
    }
    if (e.type == 2) madt_irq_to_gsi[e.bytes[3]] = U32(e.bytes, 4);
  }
  EXPECT_EQ(madt_apic_ids, mp_apic_ids);
  for (const auto& [irq, pin] : mp_irq_to_pin) {
    // ACPI 6.5 §5.2.12.5: an ISA IRQ without an override is the GSI of its number.
    const uint32_t gsi = madt_irq_to_gsi.contains(irq) ? madt_irq_to_gsi[irq] : irq;
    EXPECT_EQ(gsi, gsi_base + pin) << "ISA IRQ " << int{irq};
  }
}

TEST(Acpi, DsdtAmlForOneCpuAndOneVirtioDevice) {
  const auto built = BuildAcpiTables(Machine(1, 1));
  ASSERT_TRUE(built);
  const std::vector<uint8_t>& dsdt = built->tables.back().bytes;
  ASSERT_EQ(built->tables.back().signature, "DSDT");
  ASSERT_EQ(dsdt.size(), 36u + 113);
  EXPECT_EQ(std::string(dsdt.begin(), dsdt.begin() + 4), "DSDT");
  EXPECT_EQ(dsdt[8], 2);  // revision 2: 64-bit integers
  // Written out by hand from ACPI 6.5 §20.2 and §6.4:
  const std::vector<uint8_t> expected = {
      // Scope (\_SB), PkgLength 112 in two bytes
      0x10, 0x40, 0x07, '\\', '_', 'S', 'B', '_',
      // Device (COM1), PkgLength 43
      0x5b, 0x82, 0x2b, 'C', 'O', 'M', '1',
      // Name (_HID, EisaId ("PNP0501"))
      0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01,
      // Name (_UID, One)
      0x08, '_', 'U', 'I', 'D', 0x01,
      // Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3f8, 0x3f8, 1, 8) IRQNoFlags () {4} })
      0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01,
      0x08, 0x22, 0x10, 0x00, 0x79, 0x00,
      // Device (V000), PkgLength 58
      0x5b, 0x82, 0x3a, 'V', '0', '0', '0',
      // Name (_HID, "LNRO0005")
      0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00,
      // Name (_UID, Zero)
      0x08, '_', 'U', 'I', 'D', 0x00,
      // Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xd0000000, 0x1000)
      //   Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {5} })
      0x08, '_', 'C', 'R', 'S', 0x11, 0x1a, 0x0a, 0x17, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00,
      0xd0, 0x00, 0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79,
      0x00};
  EXPECT_EQ(std::vector<uint8_t>(dsdt.begin() + 36, dsdt.end()), expected);
}

TEST(Acpi, TablesOfTheLargestMachineFitWithRoomToSpare) {
  // 254 CPUs and every IRQ a virtio device may take (3, 5..23).
  AcpiMachine machine = Machine(base::kMaxCpus);
  for (uint32_t irq : {3u,  5u,  6u,  7u,  8u,  9u,  10u, 11u, 12u, 13u,
                       14u, 15u, 16u, 17u, 18u, 19u, 20u, 21u, 22u, 23u}) {
    const uint64_t n = machine.virtio_mmio.size();
    machine.virtio_mmio.push_back({base::kVirtioMmioBase + n * 0x1000, 0x1000, irq});
  }
  auto built = BuildAcpiTables(machine);
  ASSERT_TRUE(built) << built.error().message();
  EXPECT_LT(built->used, base::kAcpiTablesSize / 16) << built->used;
}

TEST(Acpi, RegionIsReservedAndClearOfTheMpTable) {
  EXPECT_LE(kMpTableAddress + MpTableSize(base::kMaxCpus), base::kAcpiTables);
  EXPECT_GE(base::kAcpiTables, base::kEbdaStart);
  EXPECT_LE(base::kAcpiTables + base::kAcpiTablesSize, base::kHighMemory);
  EXPECT_GE(base::kAcpiTables, base::kBootStructuresEnd);
}

TEST(Acpi, WriteZeroesTheRestOfTheRegion) {
  auto memory = Memory();
  ASSERT_TRUE(memory->Fill(base::kAcpiTables, 0xcc, base::kAcpiTablesSize));
  ASSERT_TRUE(WriteAcpiTables(*memory, Machine(1)));
  const auto built = *BuildAcpiTables(Machine(1));
  EXPECT_EQ(Get<uint8_t>(*memory, base::kAcpiTables + base::kAcpiTablesSize - 1), 0);
  EXPECT_EQ(Get<uint8_t>(*memory, base::kAcpiTables + built.used), 0);
  EXPECT_EQ(Get<uint8_t>(*memory, base::kAcpiTables + 36), 0);  // padding after the RSDP
}

void ExpectConfigError(const AcpiMachine& machine, const std::string& words) {
  auto built = BuildAcpiTables(machine);
  ASSERT_FALSE(built) << words;
  EXPECT_EQ(built.error().kind(), base::ErrorKind::kConfig);
  EXPECT_NE(built.error().message().find(words), std::string::npos) << built.error().message();
  auto memory = Memory();
  EXPECT_FALSE(WriteAcpiTables(*memory, machine));
}

TEST(Acpi, BadMachinesAreRejectedWithTheReason) {
  ExpectConfigError(Machine(0), "0 vCPUs");
  ExpectConfigError(Machine(base::kMaxCpus + 1), "255 vCPUs");
  ExpectConfigError(Machine(UINT32_MAX), "4294967295 vCPUs");

  AcpiMachine m = Machine(1, 1);
  m.virtio_mmio[0].size = 0;
  ExpectConfigError(m, "device 0 at 0xd0000000 size 0x0");
  m = Machine(1, 1);
  m.virtio_mmio[0].base = 0xfffff000;
  m.virtio_mmio[0].size = 0x2000;
  ExpectConfigError(m, "below 4 GiB");
  m.virtio_mmio[0].base = 0x100000000;
  m.virtio_mmio[0].size = 0x1000;
  ExpectConfigError(m, "below 4 GiB");
  m.virtio_mmio[0].base = UINT64_MAX;
  ExpectConfigError(m, "below 4 GiB");
  m.virtio_mmio[0].base = 0;
  m.virtio_mmio[0].size = UINT64_MAX;
  ExpectConfigError(m, "below 4 GiB");
  m = Machine(1, 1);
  m.virtio_mmio[0].irq = 24;
  ExpectConfigError(m, "IRQ 24: the IOAPIC has GSIs 0 to 23");
  m.virtio_mmio[0].irq = base::kCom1Irq;
  ExpectConfigError(m, "IRQ 4 is the COM1's");
  m.virtio_mmio[0].irq = 0;
  ExpectConfigError(m, "IRQ 0 is the PIT's");
  m.virtio_mmio[0].irq = 1;
  ExpectConfigError(m, "IRQ 1 is the i8042's");
  m.virtio_mmio[0].irq = 2;
  ExpectConfigError(m, "IRQ 2 is the 8259 cascade's");
  m = Machine(1, 2);
  m.virtio_mmio[1].irq = m.virtio_mmio[0].irq;
  ExpectConfigError(m, "devices 0 and 1 share IRQ 5");
  m = Machine(1, 2);
  m.virtio_mmio[1].base = m.virtio_mmio[0].base + 0xfff;
  ExpectConfigError(m, "overlaps device 0");
}

TEST(Acpi, AdjacentWindowsAndTheTopOf4GiBAreFine) {
  AcpiMachine m = Machine(1, 2);
  m.virtio_mmio[1].base = m.virtio_mmio[0].base + m.virtio_mmio[0].size;
  EXPECT_TRUE(BuildAcpiTables(m));
  m.virtio_mmio[1].base = 0xfffff000;
  m.virtio_mmio[1].size = 0x1000;
  EXPECT_TRUE(BuildAcpiTables(m));
}

TEST(Acpi, TooSmallGuestMemoryIsAnError) {
  // Memory that ends below the region (vmm's own minimum, 2 MiB, covers it).
  auto memory = std::move(*base::GuestMemory::Create(512 * base::KiB));
  auto rsdp = WriteAcpiTables(*memory, Machine(1));
  ASSERT_FALSE(rsdp);
  EXPECT_NE(rsdp.error().message().find("ACPI tables: region [0xe0000, 0x100000)"),
            std::string::npos)
      << rsdp.error().message();
}

}  // namespace
}  // namespace firmware
