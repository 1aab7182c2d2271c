#include "firmware/acpi.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

#include "firmware/aml.h"
#include "firmware/mptable.h"

namespace firmware {
namespace {

static_assert(std::endian::native == std::endian::little, "ACPI is little-endian; so is x86");
static_assert(base::kAcpiTables >= base::kEbdaStart &&
                  base::kAcpiTables + base::kAcpiTablesSize <= base::kHighMemory,
              "the ACPI region must lie in e820's reserved [kEbdaStart, kHighMemory)");
static_assert(base::kAcpiTables % 16 == 0, "ACPI 6.5 §5.2.5.1: the RSDP is 16-byte aligned");

constexpr char kOemId[] = "VMM   ";         // 6 bytes
constexpr char kOemTableId[] = "VMMACPI ";  // 8 bytes; the FADT's and XSDT's must match
constexpr uint32_t kOemRevision = 1;
constexpr char kCreatorId[] = "VMM ";  // 4 bytes
constexpr uint32_t kCreatorRevision = 1;

// ACPI 6.5 §5.2.6 "System Description Table Header".
struct [[gnu::packed]] Header {
  char signature[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};
static_assert(sizeof(Header) == 36);

// ACPI 6.5 §5.2.5.3 "Root System Description Pointer (RSDP) Structure".
struct [[gnu::packed]] Rsdp {
  char signature[8];
  uint8_t checksum;  // over the first 20 bytes (the ACPI 1.0 part)
  char oem_id[6];
  uint8_t revision;
  uint32_t rsdt_address;
  uint32_t length;
  uint64_t xsdt_address;
  uint8_t extended_checksum;  // over all 36 bytes
  uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);
constexpr size_t kRsdpV1Size = 20;

// ACPI 6.5 §5.2.3.2 "Generic Address Structure".
struct [[gnu::packed]] Gas {
  uint8_t space_id;  // 1: System I/O
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;  // 1: byte access
  uint64_t address;
};
static_assert(sizeof(Gas) == 12);

// ACPI 6.5 §5.2.9 Table 5.9 "FADT Format" (layout unchanged since 6.0).
struct [[gnu::packed]] Fadt {
  Header header;
  uint32_t firmware_ctrl;
  uint32_t dsdt;
  uint8_t reserved0;
  uint8_t preferred_pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;
  uint8_t acpi_enable;
  uint8_t acpi_disable;
  uint8_t s4bios_req;
  uint8_t pstate_cnt;
  uint32_t pm1a_evt_blk;
  uint32_t pm1b_evt_blk;
  uint32_t pm1a_cnt_blk;
  uint32_t pm1b_cnt_blk;
  uint32_t pm2_cnt_blk;
  uint32_t pm_tmr_blk;
  uint32_t gpe0_blk;
  uint32_t gpe1_blk;
  uint8_t pm1_evt_len;
  uint8_t pm1_cnt_len;
  uint8_t pm2_cnt_len;
  uint8_t pm_tmr_len;
  uint8_t gpe0_blk_len;
  uint8_t gpe1_blk_len;
  uint8_t gpe1_base;
  uint8_t cst_cnt;
  uint16_t p_lvl2_lat;
  uint16_t p_lvl3_lat;
  uint16_t flush_size;
  uint16_t flush_stride;
  uint8_t duty_offset;
  uint8_t duty_width;
  uint8_t day_alrm;
  uint8_t mon_alrm;
  uint8_t century;
  uint16_t iapc_boot_arch;
  uint8_t reserved1;
  uint32_t flags;
  Gas reset_reg;
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t fadt_minor_version;
  uint64_t x_firmware_ctrl;
  uint64_t x_dsdt;
  Gas x_pm1a_evt_blk;
  Gas x_pm1b_evt_blk;
  Gas x_pm1a_cnt_blk;
  Gas x_pm1b_cnt_blk;
  Gas x_pm2_cnt_blk;
  Gas x_pm_tmr_blk;
  Gas x_gpe0_blk;
  Gas x_gpe1_blk;
  Gas sleep_control_reg;
  Gas sleep_status_reg;
  uint64_t hypervisor_vendor_identity;
};
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, flags) == 112 && offsetof(Fadt, x_dsdt) == 140);

// FADT Fixed Feature Flags, ACPI 6.5 Table 5.10.
constexpr uint32_t kFadtWbinvd = 1u << 0;          // WBINVD works (required since ACPI 2.0)
constexpr uint32_t kFadtProcC1 = 1u << 2;          // C1 (HLT) on all processors
constexpr uint32_t kFadtPwrButton = 1u << 4;       // no fixed-hardware power button
constexpr uint32_t kFadtSlpButton = 1u << 5;       // no fixed-hardware sleep button
constexpr uint32_t kFadtResetRegSup = 1u << 10;    // RESET_REG is valid
constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;  // no ACPI fixed hardware
// IA-PC Boot Architecture Flags, ACPI 6.5 Table 5.11.
constexpr uint16_t kBootLegacyDevices = 1u << 0;    // ISA-style devices (COM1) need drivers
constexpr uint16_t kBoot8042 = 1u << 1;             // an 8042 at ports 0x60/0x64
constexpr uint16_t kBootVgaNotPresent = 1u << 2;    // no VGA: do not probe it
constexpr uint16_t kBootMsiNotSupported = 1u << 3;  // no PCI, no MSI: line interrupts only
// bit 5 (CMOS RTC Not Present) stays clear: devices/legacy/cmos.h is an RTC.

constexpr uint8_t kGasSystemIo = 1;
constexpr uint8_t kGasByteAccess = 1;
constexpr uint8_t kI8042ResetCommand = 0xfe;  // pulse the reset line (devices/legacy/i8042.h)
constexpr uint8_t kCmosCenturyIndex = 0x32;   // devices/legacy/cmos.h
// P_LVL2_LAT above 100 and P_LVL3_LAT above 1000 say "C2/C3 not supported".
constexpr uint16_t kNoC2 = 101;
constexpr uint16_t kNoC3 = 1001;
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorVersion = 3;  // ACPI 6.3's FADT, the layout 6.0-6.5 share

// ACPI 6.5 §5.2.12 MADT.
constexpr uint8_t kMadtRevision = 5;
constexpr uint32_t kMadtPcatCompat = 1u << 0;  // a dual 8259 is present too
constexpr uint8_t kMadtLocalApic = 0;          // §5.2.12.2, 8 bytes
constexpr uint8_t kMadtIoapic = 1;             // §5.2.12.3, 12 bytes
constexpr uint8_t kMadtSourceOverride = 2;     // §5.2.12.5, 10 bytes
constexpr uint8_t kMadtLocalApicNmi = 4;       // §5.2.12.7, 6 bytes
constexpr uint32_t kLocalApicEnabled = 1u << 0;
constexpr uint8_t kAllProcessors = 0xff;  // Local APIC NMI: every processor UID
constexpr uint8_t kIsaBus = 0;

constexpr uint8_t kRsdtRevision = 1;
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kDsdtRevision = 2;  // 64-bit AML integers

// ISA lines of the fixed devices, which no virtio device may take.
constexpr uint32_t kPitIrq = 0;
constexpr uint32_t kCascadeIrq = 2;  // the slave 8259's input on the master

const char* FixedIrqOwner(uint32_t irq) {
  if (irq == kPitIrq) return "PIT";
  if (irq == base::kI8042Irq) return "i8042";
  if (irq == kCascadeIrq) return "8259 cascade";
  if (irq == base::kCom1Irq) return "COM1";
  return nullptr;
}

// A fixed-width text field from a literal of exactly that many characters.
template <size_t N>
void CopyText(char (&field)[N], const char (&text)[N + 1]) {
  std::memcpy(field, text, N);  // without the literal's NUL
}

uint8_t Checksum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return static_cast<uint8_t>(-sum);
}

template <typename T>
std::span<const uint8_t> BytesOf(const T& value) {
  return {reinterpret_cast<const uint8_t*>(&value), sizeof(T)};
}

template <typename T>
void Put(std::vector<uint8_t>& out, const T& value) {
  const auto bytes = BytesOf(value);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

Header MakeHeader(const char* signature, uint8_t revision) {
  Header header{};
  std::memcpy(header.signature, signature, 4);
  header.revision = revision;
  CopyText(header.oem_id, kOemId);
  CopyText(header.oem_table_id, kOemTableId);
  header.oem_revision = kOemRevision;
  CopyText(header.creator_id, kCreatorId);
  header.creator_revision = kCreatorRevision;
  return header;
}

// A table from its header and body: the length filled in, then the checksum.
std::vector<uint8_t> Finish(Header header, std::span<const uint8_t> body) {
  header.length = static_cast<uint32_t>(sizeof(Header) + body.size());
  std::vector<uint8_t> out;
  Put(out, header);
  out.insert(out.end(), body.begin(), body.end());
  out[offsetof(Header, checksum)] = Checksum(out);
  return out;
}

base::Result<void> Validate(const AcpiMachine& machine) {
  if (machine.cpus == 0 || machine.cpus > base::kMaxCpus) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "ACPI tables: {} vCPUs: the MADT describes 1 to {} (8-bit xAPIC IDs, "
                           "the IOAPIC taking the ID after the CPUs)",
                           machine.cpus, base::kMaxCpus);
  }
  const auto& devices = machine.virtio_mmio;
  for (size_t n = 0; n < devices.size(); ++n) {
    const AcpiVirtioMmio& d = devices[n];
    if (d.size == 0 || d.size > UINT32_MAX || d.base > UINT32_MAX ||
        d.base + d.size > uint64_t{UINT32_MAX} + 1) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "ACPI tables: virtio-mmio device {} at {:#x} size {:#x}: the window "
                             "must be non-empty and end at or below 4 GiB (Memory32Fixed)",
                             n, d.base, d.size);
    }
    if (d.irq >= kIoapicGsiBase + kIoapicPins) {
      return base::MakeError(
          base::ErrorKind::kConfig,
          "ACPI tables: virtio-mmio device {} IRQ {}: the IOAPIC has GSIs {} to {}", n, d.irq,
          kIoapicGsiBase, kIoapicGsiBase + kIoapicPins - 1);
    }
    if (const char* owner = FixedIrqOwner(d.irq)) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "ACPI tables: virtio-mmio device {} IRQ {} is the {}'s", n, d.irq,
                             owner);
    }
    for (size_t m = 0; m < n; ++m) {
      const AcpiVirtioMmio& e = devices[m];
      if (d.irq == e.irq) {
        return base::MakeError(base::ErrorKind::kConfig,
                               "ACPI tables: virtio-mmio devices {} and {} share IRQ {} (the DSDT "
                               "declares each line exclusive)",
                               m, n, d.irq);
      }
      if (d.base < e.base + e.size && e.base < d.base + d.size) {
        return base::MakeError(
            base::ErrorKind::kConfig,
            "ACPI tables: virtio-mmio device {} [{:#x}, {:#x}) overlaps device {} "
            "[{:#x}, {:#x})",
            n, d.base, d.base + d.size, m, e.base, e.base + e.size);
      }
    }
  }
  return {};
}

// ACPI 6.5 §5.2.12: the MADT, from the MP table's interrupt facts.
std::vector<uint8_t> BuildMadt(uint32_t cpus) {
  std::vector<uint8_t> body;
  Put(body, kLapicAddress);
  Put(body, kMadtPcatCompat);
  for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
    Put(body, kMadtLocalApic);
    Put(body, uint8_t{8});
    Put(body, static_cast<uint8_t>(cpu));  // ACPI Processor UID
    Put(body, static_cast<uint8_t>(cpu));  // APIC ID, as in the MP table
    Put(body, kLocalApicEnabled);
  }
  Put(body, kMadtIoapic);
  Put(body, uint8_t{12});
  Put(body, IoapicId(cpus));
  Put(body, uint8_t{0});  // reserved
  Put(body, kIoapicAddress);
  Put(body, kIoapicGsiBase);
  // Without an override, an OS takes ISA IRQ n to be GSI n, edge, active
  // high (§5.2.12.5): an override only where the MP table routes differently.
  for (uint32_t irq = 0; irq < kIsaIrqs; ++irq) {
    const uint32_t gsi = kIoapicGsiBase + IsaIrqToIoapicPin(irq);
    if (gsi == irq) continue;
    Put(body, kMadtSourceOverride);
    Put(body, uint8_t{10});
    Put(body, kIsaBus);
    Put(body, static_cast<uint8_t>(irq));
    Put(body, gsi);
    Put(body, uint16_t{0});  // MPS INTI flags: conform to the bus, as the MP table says
  }
  Put(body, kMadtLocalApicNmi);
  Put(body, uint8_t{6});
  Put(body, kAllProcessors);
  Put(body, uint16_t{0});  // MPS INTI flags: conform (the MP table's LINT1 entry)
  Put(body, kNmiLint);
  return Finish(MakeHeader("APIC", kMadtRevision), body);
}

// The DSDT's AML: Scope(\_SB) { COM1, V000, V001, ... }.
base::Result<std::vector<uint8_t>> BuildDsdt(const AcpiMachine& machine) {
  using aml::Bytes;
  auto cat = [](std::initializer_list<const Bytes*> parts) {
    Bytes out;
    for (const Bytes* p : parts) out.insert(out.end(), p->begin(), p->end());
    return out;
  };
  Bytes sb;
  {
    // PC/AT COM1 (devices/legacy/serial.h): 8 ports, ISA IRQ 4.
    const Bytes hid = TRY(aml::Name("_HID", TRY(aml::EisaId("PNP0501"))));
    const Bytes uid = TRY(aml::Name("_UID", aml::Integer(1)));
    const Bytes io = aml::Io(base::kCom1Port, base::kCom1Port, 1, 8);
    const Bytes irq = TRY(aml::IrqNoFlags(base::kCom1Irq));
    const Bytes crs = TRY(aml::Name("_CRS", TRY(aml::ResourceTemplate(cat({&io, &irq})))));
    const Bytes com1 = TRY(aml::Device("COM1", cat({&hid, &uid, &crs})));
    sb.insert(sb.end(), com1.begin(), com1.end());
  }
  for (size_t n = 0; n < machine.virtio_mmio.size(); ++n) {
    // virtio-mmio as Linux's virtio_mmio driver matches it over ACPI
    // (LNRO0005), one window and one edge-triggered line (docs/virtio.md).
    const AcpiVirtioMmio& d = machine.virtio_mmio[n];
    const Bytes hid = TRY(aml::Name("_HID", TRY(aml::String("LNRO0005"))));
    const Bytes uid = TRY(aml::Name("_UID", aml::Integer(n)));
    const Bytes mem =
        aml::Memory32Fixed(true, static_cast<uint32_t>(d.base), static_cast<uint32_t>(d.size));
    const Bytes irq = aml::Interrupt(d.irq);
    const Bytes crs = TRY(aml::Name("_CRS", TRY(aml::ResourceTemplate(cat({&mem, &irq})))));
    const Bytes dev = TRY(aml::Device(fmt::format("V{:03X}", n), cat({&hid, &uid, &crs})));
    sb.insert(sb.end(), dev.begin(), dev.end());
  }
  const Bytes scope = TRY(aml::Scope("\\_SB", sb));
  return Finish(MakeHeader("DSDT", kDsdtRevision), scope);
}

std::vector<uint8_t> BuildFadt(uint64_t dsdt) {
  Fadt fadt{};
  fadt.header = MakeHeader("FACP", kFadtRevision);
  fadt.header.length = sizeof(Fadt);
  // No FACS: hardware-reduced ACPI has no global lock or waking vector to
  // share (§5.2.9, FIRMWARE_CTRL may be zero then).
  fadt.firmware_ctrl = 0;
  fadt.x_firmware_ctrl = 0;
  fadt.dsdt = static_cast<uint32_t>(dsdt);
  fadt.x_dsdt = dsdt;
  fadt.preferred_pm_profile = 0;  // unspecified
  // SCI_INT, SMI_CMD, every PM1/PM2/PM timer/GPE block and the sleep
  // registers stay zero: none of them exists (HW_REDUCED_ACPI).
  fadt.p_lvl2_lat = kNoC2;
  fadt.p_lvl3_lat = kNoC3;
  fadt.century = kCmosCenturyIndex;
  fadt.iapc_boot_arch = kBootLegacyDevices | kBoot8042 | kBootVgaNotPresent | kBootMsiNotSupported;
  fadt.flags = kFadtWbinvd | kFadtProcC1 | kFadtPwrButton | kFadtSlpButton | kFadtResetRegSup |
               kFadtHwReducedAcpi;
  fadt.reset_reg = {kGasSystemIo, 8, 0, kGasByteAccess, base::kI8042CommandPort};
  fadt.reset_value = kI8042ResetCommand;
  fadt.fadt_minor_version = kFadtMinorVersion;
  std::vector<uint8_t> out;
  Put(out, fadt);
  out[offsetof(Header, checksum)] = Checksum(out);
  return out;
}

uint64_t Align16(uint64_t value) { return (value + 15) & ~uint64_t{15}; }

}  // namespace

base::Result<AcpiTables> BuildAcpiTables(const AcpiMachine& machine) {
  TRY(Validate(machine));
  const std::vector<uint8_t> madt = BuildMadt(machine.cpus);
  const std::vector<uint8_t> dsdt = TRY(BuildDsdt(machine));
  constexpr uint64_t kPointerTables = 2;  // FADT, MADT

  const uint64_t rsdp_at = base::kAcpiTables;
  const uint64_t rsdt_at = Align16(rsdp_at + sizeof(Rsdp));
  const uint64_t xsdt_at = Align16(rsdt_at + sizeof(Header) + 4 * kPointerTables);
  const uint64_t fadt_at = Align16(xsdt_at + sizeof(Header) + 8 * kPointerTables);
  const uint64_t madt_at = Align16(fadt_at + sizeof(Fadt));
  const uint64_t dsdt_at = Align16(madt_at + madt.size());
  const uint64_t end = dsdt_at + dsdt.size();
  if (end > base::kAcpiTables + base::kAcpiTablesSize) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "ACPI tables for {} vCPUs and {} virtio-mmio devices need {} bytes; the "
                           "region at {:#x} holds {}",
                           machine.cpus, machine.virtio_mmio.size(), end - base::kAcpiTables,
                           base::kAcpiTables, base::kAcpiTablesSize);
  }

  std::vector<uint8_t> rsdt_body;
  Put(rsdt_body, static_cast<uint32_t>(fadt_at));
  Put(rsdt_body, static_cast<uint32_t>(madt_at));
  std::vector<uint8_t> xsdt_body;
  Put(xsdt_body, fadt_at);
  Put(xsdt_body, madt_at);

  Rsdp rsdp{};
  std::memcpy(rsdp.signature, "RSD PTR ", 8);
  CopyText(rsdp.oem_id, kOemId);
  rsdp.revision = 2;  // ACPI 2.0+: XSDT and length valid
  rsdp.rsdt_address = static_cast<uint32_t>(rsdt_at);
  rsdp.length = sizeof(Rsdp);
  rsdp.xsdt_address = xsdt_at;
  rsdp.checksum = Checksum(BytesOf(rsdp).first(kRsdpV1Size));
  rsdp.extended_checksum = Checksum(BytesOf(rsdp));
  std::vector<uint8_t> rsdp_bytes;
  Put(rsdp_bytes, rsdp);

  AcpiTables out;
  out.rsdp_address = rsdp_at;
  out.tables.push_back({"RSD PTR ", rsdp_at, std::move(rsdp_bytes)});
  out.tables.push_back({"RSDT", rsdt_at, Finish(MakeHeader("RSDT", kRsdtRevision), rsdt_body)});
  out.tables.push_back({"XSDT", xsdt_at, Finish(MakeHeader("XSDT", kXsdtRevision), xsdt_body)});
  out.tables.push_back({"FACP", fadt_at, BuildFadt(dsdt_at)});
  out.tables.push_back({"APIC", madt_at, madt});
  out.tables.push_back({"DSDT", dsdt_at, dsdt});
  out.used = end - base::kAcpiTables;
  return out;
}

base::Result<uint64_t> WriteAcpiTables(const base::GuestMemory& memory,
                                       const AcpiMachine& machine) {
  const AcpiTables tables = TRY(BuildAcpiTables(machine));
  TRY_CTX(memory.Fill(base::kAcpiTables, 0, base::kAcpiTablesSize),
          fmt::format("ACPI tables: region [{:#x}, {:#x})", base::kAcpiTables,
                      base::kAcpiTables + base::kAcpiTablesSize));
  for (const AcpiTable& table : tables.tables) {
    TRY_CTX(memory.Write(table.address, table.bytes),
            fmt::format("ACPI table {} at {:#x}", table.signature, table.address));
  }
  return tables.rsdp_address;
}

}  // namespace firmware
