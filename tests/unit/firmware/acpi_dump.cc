// Test tool: writes the ACPI tables firmware::BuildAcpiTables makes for a
// machine to one file per table (rsdp.dat, rsdt.dat, xsdt.dat, facp.dat,
// apic.dat, dsdt.dat), for tests/unit/firmware/check_acpi_iasl.sh to hand to
// `iasl -d` (docs/acpi.md, "Inspecting the tables").
//
//   acpi_dump OUT_DIR CPUS [BASE:SIZE:IRQ]...   (numbers in C notation)
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "firmware/acpi.h"

namespace {

bool ParseNumber(const std::string& text, uint64_t& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  out = std::strtoull(text.c_str(), &end, 0);
  return *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR CPUS [BASE:SIZE:IRQ]...\n", argv[0]);
    return 64;
  }
  const std::string dir = argv[1];
  firmware::AcpiMachine machine;
  uint64_t cpus = 0;
  if (!ParseNumber(argv[2], cpus) || cpus > UINT32_MAX) {
    std::fprintf(stderr, "acpi_dump: bad CPU count \"%s\"\n", argv[2]);
    return 64;
  }
  machine.cpus = static_cast<uint32_t>(cpus);
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t a = arg.find(':');
    const size_t b = a == std::string::npos ? a : arg.find(':', a + 1);
    uint64_t base = 0, size = 0, irq = 0;
    if (b == std::string::npos || !ParseNumber(arg.substr(0, a), base) ||
        !ParseNumber(arg.substr(a + 1, b - a - 1), size) || !ParseNumber(arg.substr(b + 1), irq) ||
        irq > UINT32_MAX) {
      std::fprintf(stderr, "acpi_dump: bad device \"%s\" (want BASE:SIZE:IRQ)\n", argv[i]);
      return 64;
    }
    machine.virtio_mmio.push_back({base, size, static_cast<uint32_t>(irq)});
  }
  auto tables = firmware::BuildAcpiTables(machine);
  if (!tables) {
    std::fprintf(stderr, "acpi_dump: %s\n", tables.error().ToString().c_str());
    return tables.error().exit_status();
  }
  for (const firmware::AcpiTable& table : tables->tables) {
    std::string name = table.signature == "RSD PTR " ? "rsdp" : table.signature;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string path = dir + "/" + name + ".dat";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(table.bytes.data()),
              static_cast<std::streamsize>(table.bytes.size()));
    if (!out) {
      std::fprintf(stderr, "acpi_dump: cannot write %s\n", path.c_str());
      return 73;
    }
    std::printf("%s %#llx %zu %s\n", table.signature.c_str(),
                static_cast<unsigned long long>(table.address), table.bytes.size(), path.c_str());
  }
  return 0;
}
